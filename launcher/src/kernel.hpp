#pragma once
// The launcher's system-call layer: the mount, namespace, credential and process calls that the
// common sys:: layer does not cover. Like sys::, every function retries EINTR, captures errno and
// names the call with its arguments in the error. Paths in messages are the ones a human knows
// (the host path, or the path inside the image), never /proc/self/fd/N.
//
// Kernel features used, each with the fallback taken when the kernel lacks it:
//   openat2 (5.6)        -> component-by-component O_PATH|O_NOFOLLOW walk (see mounts.cpp)
//   mount_setattr (5.12) -> MS_REMOUNT|MS_BIND of every submount listed in /proc/self/mountinfo
//   clone3 + CLONE_INTO_CGROUP (5.7, v2 only) -> clone(2); the child writes itself into cgroup.procs
//   close_range (5.9)    -> closing every fd listed in /proc/self/fd
//   cgroup.kill (5.14)   -> freeze, SIGKILL every pid, thaw, repeat

#include <sched.h>
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
Status mount(const char* source, const std::string& target, const char* fstype, unsigned long flags,
             const char* data, std::string_view source_label, std::string_view target_label);

/// Mount attributes for mount_setattr(2) (values from linux/mount.h).
inline constexpr std::uint64_t k_attr_rdonly = 0x1;
inline constexpr std::uint64_t k_attr_nosuid = 0x2;
inline constexpr std::uint64_t k_attr_nodev = 0x4;
inline constexpr std::uint64_t k_attr_noexec = 0x8;

/// mount_setattr(fd, "", AT_EMPTY_PATH [| AT_RECURSIVE], attr_set). Errc::unsupported on ENOSYS.
Status mount_setattr(int fd, bool recursive, std::uint64_t attr_set, std::string_view label);

/// unshare(2); `label` names the flags in errors ("CLONE_NEWNS").
Status unshare(int flags, std::string_view label);

Status umount_detach(const std::string& target, std::string_view label);
Status pivot_root_here();

/// A stack for a child that shares the caller's memory: mapped with a guard page below it,
/// unmapped when this is destroyed, which must be after the child has exited (or exec'd).
class ChildStack {
public:
  static Result<ChildStack> make(std::size_t size);
  ChildStack(ChildStack&& other) noexcept;
  ChildStack& operator=(ChildStack&&) = delete;
  ~ChildStack();
  [[nodiscard]] char* base() const { return m_base; }
  [[nodiscard]] std::size_t size() const { return m_size; }

private:
  ChildStack() = default;
  void* m_area = nullptr;
  std::size_t m_length = 0;
  char* m_base = nullptr;
  std::size_t m_size = 0;
};

struct Started {
  pid_t pid;
  bool shares_memory;  ///< the child runs in the caller's memory (CLONE_VM)
};

/// Starts a child in the namespaces `flags` asks for, born in the cgroup `cgroup_fd` names when
/// it is >= 0 (clone3 with CLONE_INTO_CGROUP), that runs fn(arg), which must end in _exit.
/// With `share_memory`, on x86-64, the child shares the caller's memory (CLONE_VM) and runs on
/// `stack`: nothing of the caller's address space is copied at the clone, nor torn down when
/// the child exits. The caller must then leave the heap alone while the child lives (see
/// executor.cpp). Otherwise the child is a fork-like copy. Errc::unsupported when clone3 is
/// missing and `cgroup_fd` was given (the caller retries without it; the child joins its
/// cgroup itself).
Result<Started> start_child(std::uint64_t flags, int cgroup_fd, const ChildStack& stack, int (*fn)(void*), void* arg,
                            bool share_memory);

/// Pins the calling process to the CPU it runs on, for as long as this lives, when its CPU set
/// has more than one CPU and fits a cpu_set_t.
class CpuPin {
public:
  CpuPin();
  CpuPin(const CpuPin&) = delete;
  CpuPin& operator=(const CpuPin&) = delete;
  ~CpuPin();
  /// The CPU set to give back, or null when nothing was pinned.
  [[nodiscard]] const cpu_set_t* original() const { return m_pinned ? &m_original : nullptr; }

private:
  cpu_set_t m_original{};
  bool m_pinned = false;
};

/// True if the calling process has capability `cap` in its effective set.
bool has_effective_capability(int cap);

/// Starts `fn(arg)` in a child that shares the caller's memory, on a stack of its own, with
/// the caller suspended until the child execs or exits (clone with CLONE_VM|CLONE_VFORK, as
/// posix_spawn does): no copy of the caller's page tables, nothing to tear down at the child's
/// exec. `fn` must end in execve or _exit; the caller must be single-threaded (with no other
/// thread, nothing else runs in the shared memory meanwhile).
Result<pid_t> spawn_sharing_memory(int (*fn)(void*), void* arg);

/// The start time of `pid` (field 22 of /proc/PID/stat, clock ticks since boot), or nullopt if
/// the process does not exist. Together with the pid it names one process for its whole life.
std::optional<std::uint64_t> process_start_time(pid_t pid);

/// What the launcher needs of /proc/self/stat, read once.
struct SelfStat {
  long threads;                  ///< field 20
  std::uint64_t start_time;      ///< field 22, clock ticks since boot
  std::uint64_t ignored_signals; ///< field 33: bit N-1 set when signal N (1-31 only) is ignored
};
Result<SelfStat> self_stat();

/// Number of threads of the calling process (field 20 of /proc/self/stat).
Result<long> thread_count();

/// Closes every descriptor above 2 except those in `keep` (close_range, else /proc/self/fd).
void close_fds_except(std::vector<int> keep);

/// Writes a short message to `fd` in one write(2); used between processes of one launch.
void write_message(int fd, const void* data, std::size_t size);

}  // namespace chrootctl::launcher::kernel
