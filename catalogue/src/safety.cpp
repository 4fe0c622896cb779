// Ownership and permission checks on job roots and on the path that leads to them.
#include "chrootctl/catalogue/safety.hpp"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>

#include <cerrno>
#include <memory>

#include "chrootctl/catalogue/access.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"

namespace chrootctl::catalogue {

namespace {

std::string mode_of(const struct stat& st) { return mode_octal(st.st_mode & 07777); }

// One directory on the way to a root. `final` is the directory itself (no sticky exception).
// `owner` is the one user besides root who may own it (root itself for anything handed to jobs).
Status check_component(const struct stat& st, bool final, const std::string& label, uid_t owner = 0) {
  if (S_ISLNK(st.st_mode)) return fail(Errc::permission, str(label, " is a symbolic link"));
  if (!S_ISDIR(st.st_mode)) return fail(Errc::permission, str(label, " is not a directory"));
  if (st.st_uid != 0 && st.st_uid != owner)
    return fail(Errc::permission,
                str(label, " is owned by uid ", st.st_uid, owner == 0 ? std::string(", not root") : str(", not root or uid ", owner)));
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    // In a sticky directory nobody but the owner of an entry (root, checked one level down)
    // can rename, remove or replace it, so other users' write access cannot swap our path.
    if (!final && (st.st_mode & S_ISVTX)) return {};
    return fail(Errc::permission, str(label, " is writable by ", (st.st_mode & S_IWOTH) ? "others" : "group", " (mode ", mode_of(st),
                                      (final ? "" : ", no sticky bit"), ")"));
  }
  return {};
}

}  // namespace

Result<std::string> canonical_path(const std::string& path) {
  if (path.empty()) return fail(Errc::invalid_argument, "empty path");
  return sys::realpath(path);
}

Status check_plain_path(const std::string& path) {
  for (unsigned char c : path)
    if (c < 0x20 || c == 0x7f) return fail(Errc::invalid_argument, str(quote(path), " holds a control character; roots must have printable paths"));
  return {};
}

Status check_owned_dir(const std::string& path, uid_t owner) {
  if (path.empty() || path[0] != '/') return fail(Errc::invalid_argument, str(quote(path), " is not an absolute path"));
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (path[i] != '/' || i + 1 == path.size()) continue;
    const std::string ancestor = i == 0 ? std::string("/") : path.substr(0, i);
    auto st = TRY(sys::lstat_path(ancestor));
    TRY(check_component(st, false, str(quote(ancestor), " (above ", quote(path), ")"), owner));
  }
  auto st = TRY(sys::lstat_path(path));
  return check_component(st, true, quote(path), owner);
}

Status check_trusted_ancestors(const std::string& path) {
  if (path.empty() || path[0] != '/') return fail(Errc::invalid_argument, str(quote(path), " is not an absolute path"));
  // Every '/' in the path ends an ancestor: "/a/b/c" has "/", "/a" and "/a/b".
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (path[i] != '/' || i + 1 == path.size()) continue;
    const std::string ancestor = i == 0 ? std::string("/") : path.substr(0, i);
    auto st = TRY(sys::lstat_path(ancestor));
    TRY(check_component(st, false, str(quote(ancestor), " (above ", quote(path), ")")));
  }
  return {};
}

Result<struct stat> check_trusted_dir(const std::string& path, const std::string& what) {
  if (path.empty() || path[0] != '/') return fail(Errc::invalid_argument, str(what, " ", quote(path), " is not an absolute path"));
  if (path.find("/./") != std::string::npos || path.find("/../") != std::string::npos || path.find("//") != std::string::npos ||
      path.ends_with("/.") || path.ends_with("/..") || (path.size() > 1 && path.back() == '/'))
    return fail(Errc::invalid_argument, str(what, " ", quote(path), " is not a canonical path"));
  if (path != "/") TRY(check_trusted_ancestors(path));
  auto st = TRY(sys::lstat_path(path));
  TRY(check_component(st, true, str(what, " ", quote(path))));
  return st;
}

RootIdentity identity_of(const struct stat& st) {
  return {static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino), st.st_uid, st.st_gid,
          static_cast<std::uint32_t>(st.st_mode & 07777)};
}

Result<RootIdentity> check_root(const std::string& root) {
  if (root == "/") return fail(Errc::permission, "the host's root directory '/' is never a job root");
  auto st = TRY(check_trusted_dir(root, "root"));
  return identity_of(st);
}

bool only_root_can_change(const std::string& root) {
  const auto st = sys::lstat_path(root);
  if (!st) return false;
  // A directory on the way to the tree that only root may pass through (the store's rule,
  // access.hpp: a build directory not in readable_images is one).
  if (auto by = root_only_dir(root); by && *by) return true;
  // A read-only superblock: "MAJ:MIN" is the third field of a mountinfo line, the super options
  // the third after the " - " separator.
  const auto table = sys::read_file("/proc/self/mountinfo", 16u << 20);
  if (!table) return false;
  const std::string dev = str(major(st->st_dev), ":", minor(st->st_dev));
  for (const auto& line : split(*table, '\n')) {
    const auto fields = split(line, ' ');
    if (fields.size() < 3 || fields[2] != dev) continue;
    const auto sep = line.find(" - ");
    if (sep == std::string::npos) continue;
    const auto tail = split(std::string_view(line).substr(sep + 3), ' ');
    if (tail.size() < 3) continue;
    const auto options = split(tail[2], ',');
    return std::find(options.begin(), options.end(), "ro") != options.end();
  }
  return false;
}

Status check_trusted_file(const struct stat& st, const std::string& path) {
  if (!S_ISREG(st.st_mode)) return fail(Errc::permission, str(quote(path), " is not a regular file"));
  if (st.st_uid != 0) return fail(Errc::permission, str(quote(path), " is owned by uid ", st.st_uid, ", not root"));
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    return fail(Errc::permission, str(quote(path), " is writable by ", (st.st_mode & S_IWOTH) ? "others" : "group", " (mode ", mode_of(st), ")"));
  return {};
}

}  // namespace chrootctl::catalogue
