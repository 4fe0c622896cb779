#pragma once
// Pieces of the launch that the executor calls and that live in their subsystem's file:
// sources.cpp (what the launcher opens), mounts.cpp (the new root), init.cpp (PID 1 and the
// job), credentials.cpp (privilege drop), namespaces.cpp (id mapping, loopback); and the status
// file that run_job (run.cpp) writes (status.cpp).

#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "chrootctl/common/error.hpp"
#include "chrootctl/common/fd.hpp"
#include "chrootctl/launcher/idmap.hpp"
#include "chrootctl/launcher/launch.hpp"
#include "chrootctl/launcher/seccomp_program.hpp"

namespace chrootctl::launcher::detail {

/// The signals the launcher forwards to init, and init to the job.
// SIGCONT too: a stopped job acts on a forwarded SIGTERM only once continued, and `timeout`,
// for one, follows its SIGTERM with a SIGCONT for that reason.
inline constexpr int k_forwarded_signals[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGCONT};

// ---- reports from the child to the launcher (one pipe, one message per write) ----

/// Header of a message on the report pipe (init -> launcher) and on the exec pipe
/// (job -> init); `length` bytes of text follow. Each message fits in PIPE_BUF, so it arrives
/// whole or not at all.
struct ReportHeader {
  std::uint32_t kind;
  std::int32_t value;    ///< wait status (job_ended), errno (exec_failed), 0 otherwise
  std::uint32_t length;  ///< bytes of message text that follow
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

// ---- the status record (status.cpp) ----

/// Writes `text` to the --status-json file `path`, atomically (a fresh name, then rename) and
/// through no symlink on the way: the file often lands in the job's own sandbox.
Status write_status_file(const std::string& path, const std::string& text);

// ---- the launcher side (sources.cpp) ----

/// The image root and every LaunchPlan::sources entry, opened on the host before any namespace
/// exists. The root must be a directory other than the host's "/", match `plan.root_id` if set
/// and, for a job, be owned by root (or the caller of an unprivileged launch) and unwritable by
/// group and others. The sandbox (and the sandbox of each scratch source) is opened with
/// O_NOFOLLOW and must belong to the job user or root (a job as root: to anyone).
struct OpenedSources {
  Fd image;                      ///< O_PATH of the root
  std::vector<Fd> sources;       ///< same order as plan.sources; a scratch source is its sandbox
                                 ///< until make_scratch_dirs
  struct stat sandbox_owner {};  ///< the sandbox's stat (LaunchPlan sources marked `sandbox`)
};
Result<OpenedSources> open_sources(const LaunchPlan& plan);

/// Makes each MOUNT_UNDER_SCRATCH directory (SANDBOX/tmp, ...) component by component with
/// O_NOFOLLOW, mode 0700, owned by `uid`:`gid` (an existing one must already belong to `uid`),
/// and puts its descriptor in place of the sandbox's.
Status make_scratch_dirs(const LaunchPlan& plan, OpenedSources& opened, uid_t uid, gid_t gid);

/// The user namespaces whose mappings idmapped mounts go through (-1: none).
struct DetachedIds {
  int job_userns = -1;    ///< the job's own: the image
  int owner_userns = -1;  ///< the sandbox owner's ids as the job's: writable sources
};
/// The image and every bind operation's source as detached mounts (open_tree clones), with
/// their attributes set (read-only image; nosuid, nodev; private; idmapped as `ids` says):
/// the image first, then one per MountOp::Kind::bind of plan.mounts, in order.
Result<std::vector<Fd>> detach_mounts(const LaunchPlan& plan, const OpenedSources& opened, const DetachedIds& ids);

// ---- the child side ----

/// How init takes on its ids once the launcher has mapped them.
enum class InitIds {
  keep,      ///< as cloned (an unprivileged launcher: the caller, mapped to itself; a build)
  root,      ///< uid and gid 0 of the job's user namespace (mapped mode)
  job_user,  ///< the job's uid and gid, keeping the namespace's capabilities (identity mode)
};

/// What the launcher prepared for the child (descriptors are O_CLOEXEC).
struct ChildHandles {
  int image = -1;                                  ///< O_PATH of the image root (reopened by path when not detached)
  std::vector<int> sources;                        ///< O_PATH of each LaunchPlan::sources entry (likewise)
  bool detached = false;                           ///< the image and bind sources arrive as detached mounts
  std::size_t detached_count = 0;                  ///< how many (1 + the bind operations)
  int channel = -1;                                ///< the child's end of a socket pair: the go-ahead (and mounts)
  int report = -1;                                 ///< write end of the report pipe
  int lifeline = -1;                               ///< read end of a pipe whose write end only the launcher holds
  int stdin_fd = 0, stdout_fd = 1, stderr_fd = 2;  ///< -1 for stdin: /dev/null of the new root
  /// Which standard stream (0-2) is the job's own pseudo-terminal, to make it the job's
  /// controlling terminal; -1: none.
  int controlling_tty = -1;
  std::vector<int> parent_only;  ///< the launcher's ends of the pipes, closed first by the child
  InitIds init_ids = InitIds::keep;
  std::vector<int> cgroup_procs;  ///< the job cgroup's tasks/cgroup.procs, to write "0" to (empty: born there)
  bool cgroup_namespace = false;  ///< unshare a cgroup namespace (rooted at the job's cgroup)
  /// The job's system-call filter, read and checked by the launcher; null: none.
  const SeccompProgram* seccomp = nullptr;
};

/// The image and sources in init's mount namespace: detached mounts to attach, or the objects
/// the launcher opened, found again by path (and checked to be the same) where init binds them.
struct RootSources {
  bool detached = false;
  Fd image;
  std::vector<Fd> binds;    ///< detached: one per bind operation of plan.mounts, in order
  std::vector<Fd> sources;  ///< by path: one per plan.sources entry
};

/// PID 1 of the new PID namespace. Never returns.
[[noreturn]] void init_main(const LaunchPlan& plan, const ChildHandles& h);

/// Makes "/" of this (new) mount namespace a slave, so nothing mounted from here on reaches
/// the host's namespace.
Status isolate_mounts();
/// Finds the launcher's objects again by path in this mount namespace (same device and inode).
Result<RootSources> reopen_sources(const LaunchPlan& plan, const ChildHandles& h);

/// Builds the new root in the calling process's (new, private) mount namespace and pivots into
/// it. Every target inside the image is resolved with openat2(RESOLVE_IN_ROOT|...) and mounted
/// through the resolved fd.
Status build_new_root(const LaunchPlan& plan, RootSources& sources);

/// Brings the loopback interface of a new network namespace up.
Status loopback_up();

/// Writes the id maps of `pid`'s user namespace (and "deny" to its setgroups first when
/// `deny_setgroups`: an unprivileged writer must).
Status write_id_maps(pid_t pid, const IdMaps& maps, bool deny_setgroups);

/// Bounding set, ambient set, (uid/gid change), capabilities, no_new_privs.
Status drop_privileges(const Credentials& creds, bool change_ids);
/// Build mode: root keeps only the capabilities package managers need (see credentials.cpp).
Status restrict_build_capabilities();
/// A new anonymous session keyring, so the job shares no keys with whoever started chrootctl.
Status join_new_session_keyring();
/// Init takes on ids of its user namespace (see InitIds).
Status become(InitIds how, uid_t uid, gid_t gid);
/// Init keeps only CAP_KILL once the job has started: to signal and kill the job's processes.
Status keep_only_kill_capability();

/// Makes the directory `name` in `at`, owned by `uid`:`gid` with `mode`, as one step a
/// concurrent launch can observe: made under a name of this launch's own, handed to the job
/// user there, and renamed into place only if nothing is there yet (sources.cpp). Losing the
/// race is not an error: the winner's directory is used. `shown` names it in errors.
Status make_owned_dir(int at, const std::string& name, const std::string& shown, mode_t mode, uid_t uid, gid_t gid);

}  // namespace chrootctl::launcher::detail
