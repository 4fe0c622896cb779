#pragma once
// Pieces of the launch that the executor calls and that live in their subsystem's file:
// mounts.cpp (the new root), init.cpp (PID 1 and the job), credentials.cpp (privilege drop),
// namespaces.cpp (user mapping, loopback).

#include <sched.h>
#include <signal.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "chrootctl/common/error.hpp"
#include "chrootctl/common/fd.hpp"
#include "chrootctl/launcher/launch.hpp"
#include "chrootctl/launcher/seccomp_program.hpp"

namespace chrootctl::launcher::detail {

// ---- reports from the child to the launcher (one pipe, one message per write) ----

/// Header of a message on the report pipe (init -> launcher) and on the exec pipe
/// (job -> init); `length` bytes of text follow. Each message fits in PIPE_BUF, so it arrives
/// whole or not at all.
struct ReportHeader {
  std::uint32_t kind;
  std::int32_t value;   ///< wait status (job_ended), errno (exec_failed), 0 otherwise
  std::uint32_t length; ///< bytes of message text that follow
};
enum ReportKind : std::uint32_t {
  k_setup_failed = 1,  ///< the new root or the job's credentials could not be set up (125)
  k_exec_failed = 2,   ///< execve failed; value is the errno (126 or 127)
  k_job_ended = 3,     ///< value is the job's wait status
  k_job_started = 4,   ///< exec succeeded (the job's code is running)
};
inline constexpr std::size_t k_max_report_text = 3800;
// The launcher reads the report pipe only once init has exited: everything init sends (a
// job_started report and one other) must fit in the least a pipe holds, one page.
static_assert(2 * sizeof(ReportHeader) + k_max_report_text <= 4096);

/// Sends a report (truncated to fit one atomic write).
void send_report(int fd, ReportKind kind, int value, const std::string& text);

// ---- the launcher side ----

/// The image root and every LaunchPlan::sources entry, opened on the host before any namespace
/// exists (sources.cpp). The root must be a directory other than the host's "/", match
/// `plan.root_id` if set and, for a job, be owned by root (or the caller in a user namespace)
/// and unwritable by group and others. A MOUNT_UNDER_SCRATCH source (SANDBOX/tmp) is made
/// component by component with O_NOFOLLOW, mode 0700, owned by the job user; an existing one
/// must already belong to that user.
struct OpenedSources {
  Fd image;                 ///< O_PATH of the root
  std::vector<Fd> sources;  ///< same order as plan.sources
};
Result<OpenedSources> open_sources(const LaunchPlan& plan);

// ---- the child side ----

/// Descriptors the launcher opened for the child (all O_CLOEXEC).
struct ChildHandles {
  int image = -1;               ///< O_PATH of the image root
  std::vector<int> sources;     ///< O_PATH of each LaunchPlan::sources entry
  std::vector<int> cgroup_procs;///< cgroup.procs to write "0" to (empty with CLONE_INTO_CGROUP)
  bool in_cgroup = false;       ///< born in the job's cgroup (CLONE_INTO_CGROUP)
  int report = -1;              ///< write end of the report pipe
  int sync = -1;                ///< the child's end of a socket pair: one byte once uid_map is set
  int lifeline = -1;            ///< read end of a pipe whose write end only the launcher holds
  int stdin_fd = 0, stdout_fd = 1, stderr_fd = 2;  ///< -1 for stdin: /dev/null of the new root
  std::vector<int> parent_only; ///< the launcher's ends of the pipes, closed first by the child
  /// Set by init while it stays off the heap (its supervision loop); the launcher, which shares
  /// init's memory, trusts its own heap after an abnormal end of init only if this was set.
  std::atomic<bool>* heap_quiet = nullptr;
  /// Init may lower its OOM score to -1000 (the launcher has CAP_SYS_RESOURCE, no user
  /// namespace), and the job then restores the caller's.
  bool spare_init_from_oom = false;
  /// The caller's CPU set, for the job, when the launch runs pinned to one CPU (else null).
  const cpu_set_t* job_cpus = nullptr;
  /// Which of signals 1-31 the launcher ignores (bit N-1 for signal N), which the job would
  /// inherit: the only dispositions an exec keeps besides the defaults.
  std::uint64_t ignored_signals = ~std::uint64_t{0};
  /// The job's system-call filter, read and checked by the launcher; null: none.
  const SeccompProgram* seccomp = nullptr;
};

/// PID 1 of the new PID namespace. Never returns.
[[noreturn]] void init_main(const LaunchPlan& plan, const ChildHandles& h);

/// Builds the new root in the calling process's (new, private) mount namespace and pivots into
/// it. Every target inside the image is resolved with openat2(RESOLVE_IN_ROOT|...) and mounted
/// through the resolved fd.
Status build_new_root(const LaunchPlan& plan, const ChildHandles& h);

/// Brings the loopback interface of a new network namespace up.
Status loopback_up();

/// Which write of map_caller failed (file empty: none did).
struct IdMapFailure {
  const char* file = nullptr;
  char text[64] = {};
  int err = 0;
  explicit operator bool() const { return file != nullptr; }
  /// The error, made only once init is gone (it allocates).
  [[nodiscard]] Error error(pid_t pid) const;
};
/// Writes setgroups ("deny"), uid_map and gid_map of `pid`, mapping the caller to itself.
/// Allocates nothing (the launcher calls it while init runs in its memory).
IdMapFailure map_caller(pid_t pid, uid_t uid, gid_t gid);

/// Bounding set, ambient set, (uid/gid change), capabilities, no_new_privs.
Status drop_privileges(const Credentials& creds, bool change_ids);
/// Build mode: root keeps only the capabilities package managers need (see credentials.cpp).
Status restrict_build_capabilities();
/// A new anonymous session keyring, so the job shares no keys with whoever started chrootctl.
Status join_new_session_keyring();

}  // namespace chrootctl::launcher::detail
