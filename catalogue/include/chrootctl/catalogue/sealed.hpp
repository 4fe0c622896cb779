#pragma once
/// Sealed images in the catalogue (docs/sealed.md): a version whose root is one image file,
/// checked as a whole instead of entry by entry.

#include <functional>
#include <string>

#include "chrootctl/catalogue/catalogue.hpp"
#include "chrootctl/common/error.hpp"
#include "chrootctl/common/manifest.hpp"

namespace chrootctl::catalogue {

/// A sealed image file may be used only if nobody but root can change it or swap it: a regular
/// file (not a symlink) owned by root and unwritable by group and others, every directory above
/// it trusted as a root's (safety.hpp). Returns its identity for the catalogue.
Result<RootIdentity> check_sealed_file(const std::string& file);

/// check_sealed_file for a sealed version, check_root for a directory one.
Result<RootIdentity> check_version_root(const Version& v);

/// The full check of a sealed image file: its SHA-256 is the recorded one, and its dm-verity hash
/// tree matches the recorded root hash (libcryptsetup, in userspace). The two run side by side on
/// two threads, so the file is read from the disk once. Errc::mismatch names what differs.
Status check_sealed_contents(const std::string& file, const manifest::Sealed& sealed);

/// Checks the filesystem in a sealed image file, entry by entry, against the manifest `m`
/// whose #sealed line describes the file (which check_sealed_contents has just checked): a
/// signature's tree digest, and what audit, diff and show read, are the manifest's, so it
/// must be the image's. Mounting is the launcher's, so the caller supplies the check (the CLI:
/// a read-only mount, then manifest::check); unset, only the file is checked.
using SealedTreeCheck = std::function<Status(const std::string& file, const manifest::Sealed& sealed, const manifest::Manifest& m)>;

}  // namespace chrootctl::catalogue
