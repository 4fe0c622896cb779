#pragma once
/// Changing the catalogue: add, remove, alias, rollback, verify and gc. Every change goes
/// through catalogue::edit (exclusive lock, atomic replace); slow work (hashing a tree, removing
/// a build) happens outside the lock, and what it found is re-checked under the lock before it
/// is recorded.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "chrootctl/catalogue/catalogue.hpp"
#include "chrootctl/catalogue/resolve.hpp"
#include "chrootctl/catalogue/sealed.hpp"
#include "chrootctl/common/error.hpp"
#include "chrootctl/common/manifest.hpp"
#include "chrootctl/common/settings.hpp"

namespace chrootctl::catalogue {

// ---- add ----

struct AddOptions {
  /// The root directory. Empty: BUILD-DIR/root (a builder's build directory). Set for roots
  /// that live elsewhere (import-condor-config), whose BUILD-DIR holds only the manifest.
  std::string root;
  /// The build id to record (and to find in the signature). Empty: the build directory's name.
  /// Set by add_from, whose local copy of a published build is STORE/NAME/from-BUILD-ID.
  std::string build_id;
  unsigned threads = 0;           ///< hashing threads; 0 = one per CPU
  manifest::ProgressFn progress;  ///< progress of the verification walk
  std::int64_t now = 0;           ///< unix seconds; 0 = the current time
  /// The system-call policy to record for the entry ("default", "none" or a policy file's
  /// absolute path; empty: back to the site's policy). Unset: an existing entry keeps its own.
  std::optional<std::string> seccomp;
  /// Refuse to replace the current version by an older build or one of another recipe
  /// (record_version); add_from sets it unless --allow-downgrade is given.
  bool refuse_downgrade = false;
  SealedTreeCheck sealed_tree;  ///< a sealed build's filesystem against its manifest (sealed.hpp)
};

struct AddResult {
  Entry entry;                      ///< as recorded
  std::optional<Version> replaced;  ///< the version that became previous[0]
  bool refreshed = false;           ///< BUILD-DIR was current already: only the verification was recorded
  std::size_t entries = 0;          ///< manifest entries verified
  std::vector<std::string> notes;   ///< e.g. why an image was registered without a signer
};

/// Registers the build directory `build_dir` (holding `manifest`, and `root/` unless
/// options.root is set) as the current version of `name`. First checks that the root and every
/// directory above it are owned by root and not writable by anyone else (safety.hpp), that the
/// build directory and its manifest are too, then verifies the whole tree against the manifest
/// (a mismatch is Errc::mismatch with every difference listed) and rewrites the stat record
/// from that walk. Under the lock it re-checks that the root is still the directory it
/// verified, then records it; an existing entry keeps its older version for `rollback`.
/// BUILD-DIR/signature is judged before the tree is hashed (sign.hpp): a valid signature by a
/// trusted key records its key id as the signer; a revoked key or a signature that does not
/// verify or does not describe this build refuses the image (Errc::permission), and so does a
/// missing or untrusted signature when require_signature is set.
Result<AddResult> add(const Settings& s, const std::string& name, const std::string& build_dir, const AddOptions& options = {});

// ---- remove, alias, rollback ----

struct RemoveResult {
  std::string removed;               ///< the name removed
  std::string alias_of;              ///< set when `removed` was an alias of this entry
  std::vector<std::string> aliases;  ///< aliases removed with the entry
  std::vector<std::string> images;   ///< build directories no longer referenced (left for gc)
};
/// Removes an entry with its aliases and previous versions, or just an alias. Never deletes
/// anything on disk (that is `gc`).
Result<RemoveResult> remove(const Settings& s, const std::string& name);

/// Makes `alias` another name for the entry `target` (an entry or an alias of one). An
/// existing alias of another entry is moved only with `force`.
Result<std::string> alias(const Settings& s, const std::string& alias, const std::string& target, bool force = false);

struct RollbackResult {
  std::string name;
  std::vector<std::string> aliases;
  Version current;               ///< the version now current
  std::vector<Version> dropped;  ///< versions newer than it, no longer in the catalogue
};
/// Makes the newest previous version of `name` current (or the one whose build id is `to`) and
/// drops the newer ones from the catalogue; their build directories stay until `gc`.
Result<RollbackResult> rollback(const Settings& s, const std::string& name, const std::optional<std::string>& to = std::nullopt);

// ---- verify ----

struct VerifyOptions {
  bool fast = false;  ///< metadata only, against the stat record
  /// A full verification of a sealed image whose manifest bytes are not the ones that passed
  /// before: its filesystem against the manifest (sealed.hpp).
  SealedTreeCheck sealed_tree;
  unsigned threads = 0;
  manifest::ProgressFn progress;
  std::int64_t now = 0;
};

struct VerifyReport {
  std::string name;  ///< the entry
  Version version;   ///< as it was when verification started
  bool fast = false;
  bool passed = false;
  std::string error;  ///< set when the verification could not complete (counts as a failure)
  manifest::DiffResult differences;
  std::size_t entries = 0;         ///< entries checked
  bool recorded = false;           ///< the result was written to the catalogue
  std::vector<std::string> notes;  ///< things the administrator should know
};

/// Verifies the current version of each named entry (all entries when `names` is empty; an
/// alias verifies its entry, each image once). A full verification re-hashes the whole tree;
/// when it passes it records the time it started, clears an earlier failure, rewrites the stat
/// record and re-records the root's identity. Any failure (a difference, a root that is no
/// longer trusted, a manifest whose digest changed) is recorded and makes the image unusable
/// until a full verification passes. A fast verification that passes records nothing.
/// Both judge the signature as resolve does (sign.hpp); a full pass records the signer (a
/// signature added since registration is picked up, one that is gone or no longer trusted is a
/// failure when the version recorded a signer or require_signature is set).
/// Errors only for a catalogue that cannot be read or written, or an unknown name.
Result<std::vector<VerifyReport>> verify(const Settings& s, const std::vector<std::string>& names, const VerifyOptions& options = {});

// ---- gc ----

struct GcOptions {
  bool dry_run = false;
  std::optional<std::size_t> keep;  ///< keep at most this many previous versions per entry
  std::int64_t min_age = 3600;      ///< never remove a build directory modified less than this long ago
  std::int64_t now = 0;
};

struct GcReport {
  struct Trimmed {
    std::string name;
    std::string build_id;
    std::string image;
  };
  std::vector<Trimmed> trimmed;      ///< previous versions dropped by `keep`
  std::vector<std::string> removed;  ///< build directories removed (or that would be, dry run)
  std::vector<std::string> too_new;  ///< unreferenced but younger than min_age: kept
  std::vector<std::string> errors;   ///< removals that failed
};

/// Removes the build directories STORE/NAME/BUILD-ID (those holding a `manifest`) that no
/// catalogue version refers to and that STORE/NAME/latest (the builder's newest build) does not
/// name, after dropping previous versions beyond `keep`. Directories are
/// renamed out of the way under the lock (so a concurrent `add` of one fails cleanly) and
/// deleted after it, never crossing a mount point. Nothing outside the store is touched.
Result<GcReport> gc(const Settings& s, const GcOptions& options = {});

}  // namespace chrootctl::catalogue
