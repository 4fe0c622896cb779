#pragma once
/// The image store's files as the catalogue reads and records them, for the catalogue's own
/// sources and its sibling components (distribution: sign, export, import, publish). A file
/// that decides what runs (a manifest, a signature, a lock, a key) is read only when it is a
/// root-owned regular file nobody else can write.

#include <cstddef>
#include <optional>
#include <string>

#include "chrootctl/catalogue/registry.hpp"
#include "chrootctl/common/error.hpp"
#include "chrootctl/common/manifest.hpp"

namespace chrootctl::catalogue {

/// Reads a small file that decides what runs (a signature, a lock, a key): opened with
/// O_NOFOLLOW, it must be a regular file owned by root and unwritable by group and others.
/// nullopt when it does not exist.
Result<std::optional<std::string>> read_trusted_file(const std::string& path, std::size_t limit = 16u << 20);
/// Like read_trusted_file, but the file must exist.
Result<std::string> read_required_file(const std::string& path, std::size_t limit = 16u << 20);
/// IMAGE/manifest's bytes, read as read_required_file reads (a root-owned regular file nobody
/// else can write), and their SHA-256 (Version::manifest_sha256).
struct ManifestFile {
  std::string path;
  std::string text;
  std::string sha256;
};
Result<ManifestFile> read_trusted_manifest(const std::string& image);
/// IMAGE/manifest, read as read_trusted_manifest reads it (without the hash), then parsed.
/// `digest`, when given, receives its tree digest (manifest::parse).
Result<manifest::Manifest> load_trusted_manifest(const std::string& image, std::string* digest = nullptr);
/// The recipe name in a recipe.toml's text (`name = "..."`), or "" when there is none.
Result<std::string> recipe_name_of(const std::string& text, const std::string& label);

/// Rewrites IMAGE/manifest.stat from a fresh walk that matched the manifest with `digest`.
Status write_stat_record(const std::string& image, const manifest::Manifest& fresh, const std::string& digest);
/// Records the verified version `v` as the current version of `name` under the lock, after
/// re-checking that its root is still the directory with `v.identity`. `seccomp`, if set, is
/// recorded as the entry's system-call policy. With `refuse_downgrade` (builds that come from
/// elsewhere: import, add --from), replacing the entry's current version by a build of another
/// recipe, or by one whose lock records an older source_date_epoch, is refused: the name an
/// archive or a published fragment gives is not signed, and neither is which build it names.
Status record_version(const Settings& s, const std::string& name, Version v, AddResult& result,
                      const std::optional<std::string>& seccomp = std::nullopt, bool refuse_downgrade = false);

/// What record_version with `refuse_downgrade` would refuse, judged before anything is written
/// (import): `lock_text` is the new build's lock.
Status check_replacement(const Settings& s, const std::string& name, const std::string& recipe, const std::string& build_id,
                         const std::string& lock_text);

/// "2 differences" (mtime-only changes are not differences).
std::string count_differences(const manifest::DiffResult& d);
/// One line per difference that is more than an mtime change, no trailing newline.
std::string listing(const manifest::DiffResult& d);
/// "2 differences: changed /etc/hosts sha256 ...; removed /bin/sh" (at most `max_lines` listed).
std::string summarize(const manifest::DiffResult& d, std::size_t max_lines);

}  // namespace chrootctl::catalogue
