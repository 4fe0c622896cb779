#pragma once
/// The catalogue file, STORE/catalogue.toml: friendly names mapped to verified image versions
/// (format in docs/catalogue.md). It is changed only through `edit`, which takes an exclusive
/// flock on STORE/catalogue.lock, reads the file, applies the change and replaces the file
/// atomically (temp file, fsync, rename, fsync of the directory). Readers never take the lock
/// and always see a whole file: the old one or the new one.

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chrootctl/common/error.hpp"
#include "chrootctl/common/manifest.hpp"
#include "chrootctl/common/settings.hpp"

namespace chrootctl::catalogue {

/// Who the root directory was when it was checked and recorded: a later resolve refuses a root
/// whose identity differs (the directory was replaced, re-owned or re-moded).
struct RootIdentity {
  std::uint64_t dev = 0;
  std::uint64_t ino = 0;
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::uint32_t mode = 0;  ///< the 12 permission bits
  friend bool operator==(const RootIdentity&, const RootIdentity&) = default;
};
/// "dev 8:1 ino 1234 uid 0 gid 0 mode 0755", for messages.
std::string describe(const RootIdentity& id);

/// One registered image version: a build directory (holding `manifest` and `manifest.stat`) and
/// the root it describes, with the outcome of its verifications. A sealed version's root is its
/// image file (IMAGE/image.erofs), mounted at launch (docs/sealed.md); `identity` is then the
/// file's.
struct Version {
  std::string image;   ///< absolute, canonical build directory (STORE/NAME/BUILD-ID)
  std::string root;    ///< absolute, canonical root directory (IMAGE/root for builds), or the sealed image file
  std::string digest;  ///< tree digest, 64 lowercase hex digits
  /// For a tree that `import --strip` changed: the tree digest of the manifest it was made
  /// from, which its signature covers (manifest::original_digest). Empty otherwise.
  std::string signed_digest;
  std::string build_id;          ///< the build directory's name
  std::string recipe;            ///< the recipe's `name`, or empty (imported roots)
  std::string signer;            ///< who signed the manifest, or empty
  std::int64_t added_at = 0;     ///< unix seconds
  std::int64_t verified_at = 0;  ///< last full verification that passed (unix seconds; 0 = never)
  std::int64_t failed_at = 0;    ///< last verification that failed (0 = never)
  std::string failure;           ///< why it failed (first lines of the differences)
  RootIdentity identity;
  std::optional<manifest::Sealed> sealed;  ///< a sealed image: its manifest's #sealed line
  /// A sealed image: the SHA-256 of its manifest file's bytes when they last passed every check
  /// of this version in full (add, import, a full verify), so that a full verify finding the same bytes
  /// need not parse them again. Empty: not recorded yet.
  std::string manifest_sha256;
  /// The tree digest a signature must name: signed_digest, or digest when there is none.
  [[nodiscard]] const std::string& statement_digest() const { return signed_digest.empty() ? digest : signed_digest; }
  friend bool operator==(const Version&, const Version&) = default;
};

struct Entry {
  std::string name;
  Version current;
  std::vector<Version> previous;     ///< newest first; `rollback` makes previous[0] current
  std::vector<std::string> aliases;  ///< other names for this entry, sorted
  /// The system-call policy its jobs run with (`add --seccomp`): "default", "none" or a policy
  /// file's absolute path; empty: the site's policy. Kept across new versions.
  std::string seccomp;
  friend bool operator==(const Entry&, const Entry&) = default;
};

struct Catalogue {
  std::vector<Entry> entries;  ///< sorted by name (bytes)

  /// The entry named `name`, or nullptr. Does not follow aliases.
  [[nodiscard]] Entry* find(std::string_view name);
  [[nodiscard]] const Entry* find(std::string_view name) const;
  /// The entry `name` names directly or as an alias, or nullptr.
  [[nodiscard]] const Entry* find_any(std::string_view name) const;
  [[nodiscard]] Entry* find_any(std::string_view name);
  /// The entry that has `alias` among its aliases, or nullptr.
  [[nodiscard]] const Entry* alias_target(std::string_view alias) const;
  /// Inserts keeping the order; the name must be free.
  Entry& insert(Entry e);
  /// Every name in use (entries and aliases), for did-you-mean suggestions.
  [[nodiscard]] std::vector<std::string> names() const;
  /// A name in use that `name` was probably meant to be: the same letters in another case
  /// first, else a close spelling. Never used to resolve, only to say "did you mean".
  [[nodiscard]] std::optional<std::string> suggest(std::string_view name) const;
  /// The not-found error for `name`: "'NAME' is not in the catalogue FILE", with a did-you-mean
  /// when a name in use is close (`hint` is added inside its parentheses).
  [[nodiscard]] Error not_found(std::string_view name, const std::string& file, std::string_view hint = {}) const;
};

/// Names: 1 to 64 bytes of letters, digits, '_', '-', '.' and '+', starting with a letter or a
/// digit, so that they survive NAMED_CHROOT (tokens split on commas, white space and '='),
/// ClassAd string literals and file names. `root`, in any letter case, is reserved: HTCondor
/// maps it to the host's /. Returns why the name is not valid, or nullopt.
std::optional<std::string> invalid_name(std::string_view name);
Status check_name(std::string_view name);

/// Parses catalogue text. Every problem is reported as `display_name:LINE:COL: error: ...`
/// with the source line, all at once (Errc::parse).
Result<Catalogue> parse(std::string text, const std::string& display_name);
/// The canonical text (entries sorted by name, fields in a fixed order).
std::string serialize(const Catalogue& c);

/// STORE/catalogue.toml and STORE/catalogue.lock.
std::string catalogue_path(const Settings& s);
std::string lock_path(const Settings& s);

/// Reads the catalogue without locking. A missing file is an empty catalogue.
Result<Catalogue> load(const Settings& s);

/// Like `load`, for code that hands out roots (resolve, lookup, condor-config): the catalogue
/// must be a regular file (not a symlink) owned by root and not writable by group or others,
/// in a directory that passes `check_trusted_dir`, since whoever can write it chooses which
/// directories jobs run in.
Result<Catalogue> load_trusted(const Settings& s);

/// Applies `change` to the catalogue under the exclusive lock and replaces the file atomically.
/// Nothing is written if the file cannot be read or parsed, or if `change` fails. Creates the
/// store directory (0755) when missing. Temporary files left by writers that were killed are
/// removed first (only the lock holder creates them).
Status edit(const Settings& s, const std::function<Status(Catalogue&)>& change);

}  // namespace chrootctl::catalogue
