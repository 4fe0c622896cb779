#pragma once
// Helpers shared by the catalogue's sources; not part of the public API.

#include <optional>
#include <string>

#include "chrootctl/catalogue/registry.hpp"
#include "chrootctl/common/error.hpp"
#include "chrootctl/common/manifest.hpp"

namespace chrootctl::catalogue::detail {

std::string basename_of(const std::string& path);
/// IMAGE/manifest, after checking that it is a root-owned regular file nobody else can write.
Result<manifest::Manifest> load_trusted_manifest(const std::string& image);
/// Rewrites IMAGE/manifest.stat from a fresh walk that matched the manifest with `digest`.
Status write_stat_record(const std::string& image, const manifest::Manifest& fresh, const std::string& digest);
/// Records the verified version `v` as the current version of `name` under the lock, after
/// re-checking that its root is still the directory with `v.identity`. `seccomp`, if set, is
/// recorded as the entry's system-call policy.
Status record_version(const Settings& s, const std::string& name, Version v, AddResult& result,
                      const std::optional<std::string>& seccomp = std::nullopt);
/// "2 differences" (mtime-only changes are not differences).
std::string count_differences(const manifest::DiffResult& d);
/// One line per difference that is more than an mtime change, no trailing newline.
std::string listing(const manifest::DiffResult& d);
/// "2 differences: changed /etc/hosts sha256 ...; removed /bin/sh" (at most `max_lines` listed).
std::string summarize(const manifest::DiffResult& d, std::size_t max_lines);

}  // namespace chrootctl::catalogue::detail
