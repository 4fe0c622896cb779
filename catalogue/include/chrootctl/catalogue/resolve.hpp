#pragma once
/// From a friendly name to a verified root: what the launcher asks before every job.
///
/// A root is handed out only if (1) its last full verification passed, (2) within the
/// configured maximum age (Settings::max_verify_age, default 24 h), (3) no verification failed
/// since, (4) the root directory is still the one recorded (device, inode, owner, mode) and is
/// still owned by root and unwritable by anyone else along its whole path, (5) it is signed when
/// the site requires signatures, and (with `fast`) (6) the metadata check against the stat
/// record finds no change. Nothing here writes: resolving needs no lock.

#include <cstdint>
#include <string>

#include "chrootctl/catalogue/catalogue.hpp"
#include "chrootctl/common/error.hpp"
#include "chrootctl/common/settings.hpp"

namespace chrootctl::catalogue {

/// What list, show and resolve say about a version. `usable` is the only thing that matters to
/// a launcher; `state` is one word for people and scripts: verified, unverified, failed, expired,
/// changed, untrusted, unsigned, revoked, bad-signature, root-only (an unprivileged caller cannot
/// reach the tree: it is not in readable_images).
struct Evaluation {
  bool usable = false;
  std::string state;
  std::string reason;  ///< why it is not usable (empty when usable)
};

/// The cheap checks (1)-(5): a few lstat calls, no reading of the tree. `now` in unix seconds.
/// (5) applies when require_signature is set or the version records a signer: IMAGE/signature
/// must be a valid signature by a trusted key that is not revoked, over a statement naming the
/// recorded tree digest, build id and recipe and the digest of IMAGE/lock (sign.hpp).
/// For a caller without root, an image none of whose names (`name`, `aliases`) is in
/// readable_images is "root-only", whatever its tree's permissions say.
Evaluation evaluate(const Settings& s, const std::string& name, const std::vector<std::string>& aliases, const Version& v, std::int64_t now);

struct ResolveOptions {
  bool fast = false;     ///< also run the metadata check (manifest::check_fast) against the stat record
  std::int64_t now = 0;  ///< unix seconds; 0 = the current time
};

struct ResolvedRoot {
  std::string requested;  ///< the name asked for (may be an alias)
  std::string name;       ///< the entry's name
  std::string root;       ///< the verified root directory
  std::string image;      ///< its build directory (manifest, stat record)
  Version version;
  std::string seccomp;  ///< the entry's system-call policy (empty: the site's)
};

/// Resolves `name` (an entry or an alias) in the trusted catalogue (load_trusted). Errors:
/// Errc::invalid_argument for a malformed or reserved name, Errc::not_found for a name not in
/// the catalogue (with a did-you-mean), Errc::mismatch when the image is not verified (the
/// message says why); anything else means the catalogue could not be read.
Result<ResolvedRoot> resolve(const Settings& s, const std::string& name, const ResolveOptions& options = {});
/// The same against a catalogue already loaded.
Result<ResolvedRoot> resolve_in(const Settings& s, const Catalogue& c, const std::string& name, const ResolveOptions& options = {});

/// True for the errors of `resolve` that answer "no" (exit status 1) rather than "could not
/// find out" (exit status 2).
bool is_refusal(const Error& e);

/// The build directory of the current version of `name` (entry or alias), without verifying
/// it: for the builder, which derives images from catalogue images (`image = "rhel5"`) and
/// verifies the tree itself. Errc::not_found if there is no such name.
Result<std::string> image_dir(const Settings& s, const std::string& name);

/// "2026-11-23T12:05:30Z"; "never" for 0.
std::string format_time(std::int64_t unix_seconds);
/// "3d 4h", "2h 5m", "42s".
std::string format_duration(std::int64_t seconds);

}  // namespace chrootctl::catalogue
