#pragma once
/// Who may change a job root. A root is trusted only if nobody but root can change it or swap it
/// for another directory: it and every directory above it are owned by root and not writable by
/// group or others. An ancestor with the sticky bit (like /tmp, mode 1777) is accepted, because
/// in such a directory other users cannot rename or replace entries they do not own, and the
/// entry below it is itself required to be owned by root.

#include <sys/stat.h>

#include <string>

#include "chrootctl/catalogue/catalogue.hpp"
#include "chrootctl/common/error.hpp"

namespace chrootctl::catalogue {

/// The canonical absolute form of an existing path (realpath(3)): symlinks resolved, no "." or
/// "..". Errors name the path.
Result<std::string> canonical_path(const std::string& path);

/// Refuses a path holding control bytes (newline, tab, ...): roots are printed one per line
/// by `resolve` and written into HTCondor configuration.
Status check_plain_path(const std::string& path);

/// Checks every ancestor of the absolute, canonical `path` (from "/" down to its parent): each
/// must be a directory (not a symlink), owned by root, and not writable by group or others
/// unless it has the sticky bit. Errc::permission names the first one that fails.
Status check_trusted_ancestors(const std::string& path);

/// Checks the directory `path` itself and its ancestors: it must be a directory (not a symlink),
/// owned by root and not writable by group or others (no sticky exception for `path` itself).
/// Returns its lstat. `what` names it in messages ("root", "store").
Result<struct stat> check_trusted_dir(const std::string& path, const std::string& what);

/// Like check_trusted_dir for a directory that may also belong to `owner` (and its ancestors
/// too): the store as seen by whoever edits the catalogue, so that root never rewrites, and so
/// launders, a catalogue another user could have planted.
Status check_owned_dir(const std::string& path, uid_t owner);

/// check_trusted_dir for an image root, returning its identity for the catalogue. The host's
/// "/" is always refused.
Result<RootIdentity> check_root(const std::string& root);

/// Whether nobody but root can change the files of the tree at `root` whoever owns them, so that
/// a site may rely on its periodic full verification instead of a metadata check before each
/// launch (Settings::launch_check = periodic): true when its filesystem is read-only (the
/// superblock itself, not only this mount: /proc/self/mountinfo's super options say "ro"), or
/// when a directory above it is root's and closed to everyone else (no search permission for
/// group or others), so no other user can reach the tree.
bool only_root_can_change(const std::string& root);

/// The identity of an lstat result.
RootIdentity identity_of(const struct stat& st);

/// A regular file (not a symlink) owned by root and not writable by group or others, e.g. a
/// manifest's stat record, which the fast check trusts. `st` is its fstat/lstat.
Status check_trusted_file(const struct stat& st, const std::string& path);

}  // namespace chrootctl::catalogue
