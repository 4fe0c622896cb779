#pragma once
/// What this host offers a launch, found by the probes and rules the launcher itself uses, for
/// `chrootctl doctor` (site/doctor.hpp). Nothing here changes the host: system calls are probed
/// with arguments the kernel refuses before doing anything, and namespaces and filters are
/// tried in short-lived children.

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "chrootctl/common/error.hpp"
#include "chrootctl/launcher/idmap.hpp"

namespace chrootctl::launcher::host {

/// The running kernel: uname's release ("6.1.0-27-amd64") and the version the launcher's rules
/// read from it.
struct Kernel {
  std::string release;
  std::string machine;  ///< "x86_64"
  int major = 0;
  int minor = 0;
};
Kernel kernel();

/// The system calls whose absence sends the launcher down a fallback (docs/launcher.md,
/// "Kernel features"). Each is called with arguments the kernel rejects before acting: present
/// unless it answers ENOSYS.
struct Syscalls {
  bool openat2 = false;
  bool mount_api = false;  ///< open_tree, move_mount and mount_setattr (what kernel::has_mount_api checks)
  bool clone3 = false;
  bool close_range = false;
};
Syscalls syscalls();

/// User namespaces: the sysctls that limit them, and whether root and an ordinary user
/// (uid 65534, tried only when the caller is root) can make one now.
struct UserNamespaces {
  std::optional<std::uint64_t> max_user_namespaces;  ///< /proc/sys/user/max_user_namespaces
  std::optional<std::uint64_t> unprivileged_clone;   ///< /proc/sys/kernel/unprivileged_userns_clone (Debian)
  std::optional<std::uint64_t> apparmor_restricted;  ///< /proc/sys/kernel/apparmor_restrict_unprivileged_userns (Ubuntu)
  bool as_caller = false;                            ///< unshare(CLONE_NEWUSER) worked for this process's uid
  std::string caller_error;                          ///< why not
  std::optional<bool> as_user;                       ///< ... for uid 65534 (nullopt: not tried, the caller is not root)
  std::string user_error;
};
UserNamespaces user_namespaces();

/// The system-call filter: whether a process here can install one (tried in a child with
/// no_new_privs and a filter that allows everything).
struct Seccomp {
  bool usable = false;
  std::string error;  ///< why not
};
Seccomp seccomp();

/// The filesystem type (statfs f_type) of `path` and of every mount below it, as this mount
/// namespace's table lists them: what decides whether an image there can be idmapped (the
/// launcher asks the same of each image before a launch). `fd` is `path` opened (O_PATH).
Result<std::vector<std::pair<std::string, std::uint64_t>>> filesystems_below(int fd, const std::string& path);

/// How a launch by root would map a job's ids with its image under `image` and its sandbox
/// `sandbox` (if given): decide_ids with the facts the launcher would gather, for a job as a
/// user and for a job as root.
struct IdPlan {
  std::vector<std::pair<std::string, std::uint64_t>> image_filesystems;
  std::optional<std::pair<std::string, std::uint64_t>> sandbox_filesystem;
  Result<IdDecision> user_job = IdDecision{};
  Result<IdDecision> root_job = IdDecision{};
};
Result<IdPlan> id_plan(const std::string& image, const std::optional<std::string>& sandbox);

}  // namespace chrootctl::launcher::host
