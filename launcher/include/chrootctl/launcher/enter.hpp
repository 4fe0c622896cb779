#pragma once
/// Entering a job root in the calling process, for batch systems that start the job's process
/// themselves: Slurm's slurmstepd, through the SPANK plugin (batch/slurm/). The layout is the one
/// of `chrootctl run`, built by the same code (mounts.cpp): the image read-only, nosuid and nodev
/// (submounts too), a fresh /proc, a minimal /dev, the MOUNT_UNDER_SCRATCH directories and
/// /dev/shm backed by a directory of the job, host directories (the job's working directory)
/// bound at their own paths, every target resolved inside the image without following a
/// symlink. It is assembled in a new mount namespace of the caller, which then continues inside
/// the new root; the host's mount table is never changed.
///
/// What `chrootctl run` does and this does not: no PID, IPC, UTS or user namespace, no cgroup,
/// no init process, no privilege drop and no exec. The caller must be root and single-threaded
/// (a process just forked for one task), and must drop its privileges and exec the job itself;
/// slurmstepd does both right after the plugin's task_init_privileged hook. The batch system's
/// own cgroups do the limits.
///
/// Sequence: plan_enter (pure) -> prepare_enter once per job on the node, before its tasks
/// start (checks the root, makes the scratch directories) -> enter_root in each task.

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "chrootctl/common/error.hpp"
#include "chrootctl/launcher/launch.hpp"

namespace chrootctl::launcher {

struct EnterOptions {
  std::string root;               ///< host path of the verified root (absolute)
  std::optional<RootId> root_id;  ///< if set, the opened root must be this directory
  /// Host directory of this job on this node, root-owned and writable by nobody else: each
  /// scratch directory D is backed by JOB_DIR/D and /dev/shm by JOB_DIR/dev/shm, all made mode
  /// 0700 and owned by the job user. JOB_DIR itself is not visible inside the root.
  std::string job_dir;
  std::vector<std::string> mount_under_scratch{"/tmp", "/var/tmp"};
  /// Host paths bound into the root (recursive, nosuid, nodev; read-only on request). Sources
  /// must be absolute. The job's working directory is one, bound at its own path.
  std::vector<BindSpec> binds;
  std::string cwd;  ///< working directory inside the root after entering ("/" when empty)
  uid_t uid = 0;    ///< the job user, owner of the scratch directories
  gid_t gid = 0;
};

/// The pure planner: the same mount targets and the same checks as plan_launch ("/" and
/// targets inside /proc and /dev refused, no target twice, parents first). No system call.
Result<LaunchPlan> plan_enter(const EnterOptions& opts);

/// Opens and checks the root (a directory, not the host's "/", owned by root, unwritable by
/// group and others, the recorded directory) and every source, and makes the scratch
/// directories in JOB_DIR, without entering anything. Run once per job and node before the
/// tasks start, so that concurrent tasks find their directories made and owned.
Status prepare_enter(const LaunchPlan& plan);

/// Builds the new root in a new mount namespace of the calling process and moves the process
/// into it (pivot_root, the old root detached), then changes to plan.cwd. The process must be
/// root and single-threaded. On failure the process may be left in a half-built private mount
/// namespace: it must not run the job then (the host's mounts are unaffected either way).
Status enter_root(const LaunchPlan& plan);

}  // namespace chrootctl::launcher
