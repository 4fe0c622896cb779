#pragma once
// The launcher's system-call layer: the mount, namespace, credential and process calls that the
// common sys:: layer does not cover. Like sys::, every function retries EINTR, captures errno and
// names the call with its arguments in the error. Paths in messages are the ones a human knows
// (the host path, or the path inside the image), never /proc/self/fd/N.
//
// Kernel features used, each with the fallback taken when the kernel lacks it:
//   open_tree, move_mount (5.2) and mount_setattr (5.12) -> the image and sources are bound by
//                          init from their paths, and the job gets only its own uid mapped
//   MOUNT_ATTR_IDMAP (5.12, per filesystem) -> as above; a root job is refused
//   openat2 (5.6)        -> component-by-component O_PATH|O_NOFOLLOW walk (see mounts.cpp)
//   clone3 + CLONE_INTO_CGROUP (5.7, v2 only) -> clone(2); the launcher writes init's pid into
//                          the job cgroup before init goes on
//   close_range (5.9)    -> closing every fd listed in /proc/self/fd
//   cgroup.kill (5.14)   -> freeze, SIGKILL every pid, thaw, repeat

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chrootctl/common/error.hpp"
#include "chrootctl/common/fd.hpp"

namespace chrootctl::launcher::kernel {

/// "/proc/self/fd/N": the path through which mount(2) reaches the object an fd pins.
std::string fd_path(int fd);

/// "MS_BIND|MS_REC" for messages.
std::string mount_flags_label(unsigned long flags);

/// mount(2). `source_label` and `target_label` name the paths in errors.
Status mount(const char* source, const std::string& target, const char* fstype, unsigned long flags, const char* data, std::string_view source_label,
             std::string_view target_label);

/// Mount attributes for mount_setattr(2) (values from linux/mount.h).
inline constexpr std::uint64_t k_attr_rdonly = 0x1;
inline constexpr std::uint64_t k_attr_nosuid = 0x2;
inline constexpr std::uint64_t k_attr_nodev = 0x4;
inline constexpr std::uint64_t k_attr_noexec = 0x8;
inline constexpr std::uint64_t k_attr_idmap = 0x100000;

/// What mount_setattr sets on a mount (and, with `recursive`, on every mount below it).
struct MountAttrs {
  std::uint64_t set = 0;      ///< k_attr_* bits
  bool make_private = false;  ///< propagation MS_PRIVATE
  int userns_fd = -1;         ///< with k_attr_idmap: the user namespace whose mapping ids go through
};

/// mount_setattr(fd, "", AT_EMPTY_PATH [| AT_RECURSIVE], attrs). Errc::unsupported on ENOSYS.
Status mount_setattr(int fd, bool recursive, const MountAttrs& attrs, std::string_view label);

/// open_tree(dirfd, "", AT_EMPTY_PATH | OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC [| AT_RECURSIVE]):
/// a detached copy of the mount (tree) at `dirfd`, attached nowhere until move_mount.
/// Errc::unsupported on ENOSYS.
Result<Fd> open_tree_clone(int dirfd, bool recursive, std::string_view label);

/// move_mount(from, "", to, "", MOVE_MOUNT_F_EMPTY_PATH|MOVE_MOUNT_T_EMPTY_PATH): attaches the
/// detached mount `from` on the directory or file `to` (an O_PATH descriptor).
Status move_mount(int from, int to, std::string_view source_label, std::string_view target_label);

/// True when this kernel has open_tree, move_mount and mount_setattr (Linux 5.12 or later),
/// found by calling mount_setattr with an invalid descriptor.
bool has_mount_api();

/// True when this kernel has openat2 (5.6), clone3 (5.3), close_range (5.9): probed with
/// arguments it refuses, so nothing is opened, started or closed.
bool has_openat2();
bool has_clone3();
bool has_close_range();

/// unshare(2); `label` names the flags in errors ("CLONE_NEWNS").
Status unshare(int flags, std::string_view label);

Status umount_detach(const std::string& target, std::string_view label);
Status pivot_root_here();

/// Starts a child in the namespaces `flags` asks for, as fork(2) does: the call returns 0 in
/// the child, which goes on with a copy of the caller's memory, and the child's pid in the
/// caller. With `cgroup_fd` >= 0 the child is born in that (v2) cgroup (clone3 with
/// CLONE_INTO_CGROUP); Errc::unsupported when the kernel lacks that (before 5.7), and the
/// caller retries without it. The caller must be single-threaded (no fork handlers run).
Result<pid_t> start_child(std::uint64_t flags, int cgroup_fd);

/// fork(2).
Result<pid_t> fork_process();

/// The start time of `pid` (field 22 of /proc/PID/stat, clock ticks since boot), or nullopt if
/// the process does not exist. Together with the pid it names one process for its whole life.
std::optional<std::uint64_t> process_start_time(pid_t pid);

/// What the launcher needs of /proc/self/stat, read once.
struct SelfStat {
  long threads;              ///< field 20
  std::uint64_t start_time;  ///< field 22, clock ticks since boot
};
Result<SelfStat> self_stat();

/// Number of threads of the calling process (field 20 of /proc/self/stat).
Result<long> thread_count();

/// Closes every descriptor above 2 except those in `keep` (close_range, else /proc/self/fd).
void close_fds_except(std::vector<int> keep);

/// Writes a short message to `fd` in one write(2); used between processes of one launch.
void write_message(int fd, const void* data, std::size_t size);

/// Sends one byte and the descriptors `fds` over the unix socket `sock` (SCM_RIGHTS).
Status send_fds(int sock, const std::vector<int>& fds);
/// Receives what send_fds sent: exactly `count` descriptors (O_CLOEXEC); nullopt when the other
/// end closed the socket without sending.
Result<std::optional<std::vector<Fd>>> receive_fds(int sock, std::size_t count);

/// The filesystem type (statfs f_type) of the object `fd` refers to.
Result<std::uint64_t> filesystem_type(int fd);

/// The running kernel's version, from uname(2) ("6.1.0-27-amd64" -> {6, 1}).
struct KernelVersion {
  int major = 0;
  int minor = 0;
  friend auto operator<=>(const KernelVersion&, const KernelVersion&) = default;
};
KernelVersion kernel_version();

/// Writes `text` to /proc/PID/FILE (uid_map, gid_map, setgroups).
Status write_proc_file(pid_t pid, const char* file, std::string_view text);

/// A user namespace with the given uid_map and gid_map, for an idmapped mount: made by a short
/// child that only waits, whose namespace stays alive through the returned descriptor.
Result<Fd> make_user_namespace(std::string_view uid_map, std::string_view gid_map);

}  // namespace chrootctl::launcher::kernel
