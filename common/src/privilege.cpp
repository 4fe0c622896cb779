#include "chrootctl/common/privilege.hpp"

#include <sys/stat.h>

#include <algorithm>

#include "chrootctl/common/strings.hpp"

namespace chrootctl {

std::string_view setuid_policy_name(SetuidPolicy p) {
  switch (p) {
    case SetuidPolicy::remove:
      return "remove";
    case SetuidPolicy::clear_bit:
      return "clear-bit";
    case SetuidPolicy::keep:
      return "keep";
  }
  return "?";
}

std::optional<SetuidPolicy> parse_setuid_policy(std::string_view name) {
  if (name == "remove") return SetuidPolicy::remove;
  if (name == "clear-bit") return SetuidPolicy::clear_bit;
  if (name == "keep") return SetuidPolicy::keep;
  return std::nullopt;
}

namespace {
bool listed(const std::vector<std::string>& list, std::string_view path) { return std::find(list.begin(), list.end(), path) != list.end(); }
}  // namespace

PrivilegeActions privilege_actions(std::string_view path, mode_t st_mode, bool has_capability, const PrivilegePolicy& p) {
  PrivilegeActions a;
  if (S_ISREG(st_mode)) {
    if (st_mode & (S_ISUID | S_ISGID)) {
      if (listed(p.allow_setuid, path)) a.setuid_kept = PrivilegeActions::Kept::allow_list;
      else if (p.setuid == SetuidPolicy::keep) a.setuid_kept = PrivilegeActions::Kept::policy;
      else if (p.setuid == SetuidPolicy::remove) a.remove = true;
      else a.clear_setuid = true;
    }
    // A file that goes away keeps nothing to drop.
    if (has_capability && !a.remove) {
      if (!p.capabilities) a.capability_kept = PrivilegeActions::Kept::policy;
      else if (listed(p.allow_capabilities, path)) a.capability_kept = PrivilegeActions::Kept::allow_list;
      else a.drop_capability = true;
    }
  } else if (S_ISCHR(st_mode) || S_ISBLK(st_mode)) {
    // Everywhere, /dev included: the launcher gives every job its own minimal /dev, and a
    // device node left in the store is a live device on the host to whoever can reach it.
    if (p.devices) a.remove = true;
  }
  return a;
}

PrivilegeActions privilege_actions(const manifest::Entry& e, const PrivilegePolicy& policy) {
  mode_t type = 0;
  switch (e.type) {
    case manifest::Type::file:
      type = S_IFREG;
      break;
    case manifest::Type::dir:
      type = S_IFDIR;
      break;
    case manifest::Type::symlink:
      type = S_IFLNK;
      break;
    case manifest::Type::chardev:
      type = S_IFCHR;
      break;
    case manifest::Type::blockdev:
      type = S_IFBLK;
      break;
    case manifest::Type::fifo:
      type = S_IFIFO;
      break;
    case manifest::Type::socket:
      type = S_IFSOCK;
      break;
  }
  const bool cap = std::any_of(e.xattrs.begin(), e.xattrs.end(), [](const sys::Xattr& x) { return x.name == "security.capability"; });
  return privilege_actions(e.path, type | (e.mode & 07777), cap, policy);
}

std::string strip_action_name(const PrivilegeActions& a, const manifest::Entry& e) {
  if (a.remove) return e.type == manifest::Type::file ? "setuid-removed" : "device-removed";
  if (a.clear_setuid && a.drop_capability) return "setuid-cleared,capability-dropped";
  if (a.clear_setuid) return "setuid-cleared";
  if (a.drop_capability) return "capability-dropped";
  return {};
}

std::optional<std::string> allow_path_problem(std::string_view path) {
  if (path.empty() || path[0] != '/') return std::string("it is not an absolute path");
  if (path == "/") return std::string("it names the root directory");
  if (path.back() == '/') return std::string("it ends in '/'");
  for (const auto& part : split(path.substr(1), '/'))
    if (part.empty() || part == "." || part == "..") return std::string("it is not a canonical path (empty, '.' or '..' components)");
  return std::nullopt;
}

}  // namespace chrootctl
