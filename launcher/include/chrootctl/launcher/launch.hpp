#pragma once
/// Launching a job inside a job root: `chrootctl run`. The options (`RunOptions`) are turned by a
/// pure planner into a plain `LaunchPlan`; the executor carries the plan out in one ordered
/// sequence of closed steps (see docs/launcher.md and executor.cpp):
///
///   host:  resolve the job user on the host, open every source, claim an id block, create the
///          job's cgroup in every hierarchy
///   clone: new user, mount, PID, IPC and UTS namespaces (+ network); the launcher maps the
///          ids and hands init the image and sources as detached (idmapped) mounts
///   init:  a cgroup namespace, the new root (read-only image, sandbox, scratch dirs, /proc,
///          /dev), pivot_root, fork the job, forward signals, reap, report
///   job:   setsid, drop every privilege, close every fd, clean environment, the system-call
///          filter last, exec
///   host:  wait, read the accounting and the limits, kill what is left, remove the cgroup

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "chrootctl/common/error.hpp"
#include "chrootctl/launcher/idmap.hpp"

namespace chrootctl::launcher {

enum class NetMode { host, none };

/// Device and inode a root must still have when the launcher opens it (recorded by the
/// catalogue), so that the directory cannot be swapped between resolving a name and mounting.
/// Also the object a bind source must be (BindSpec::identity).
struct RootId {
  std::uint64_t dev = 0;
  std::uint64_t ino = 0;
  friend bool operator==(const RootId&, const RootId&) = default;
};

/// `--bind SRC:DST[:ro]`: a host path bound into the root (nosuid, nodev, recursive).
struct BindSpec {
  std::string source;  ///< host path
  std::string target;  ///< absolute path inside the root
  bool read_only = false;
  /// If set, what opening `source` finds must be this object, or the launch is refused: a
  /// path a user can change, taken from a directory the user opened (the Slurm task's working
  /// directory), is never resolved again by root to something else.
  std::optional<RootId> identity = std::nullopt;
};

/// Everything `chrootctl run` accepts, already split into fields (no strings left to parse
/// except sizes, which the CLI parses). The root is a resolved host path: the CLI fills it from
/// `--root DIR` or, once the catalogue exists, from resolving NAME (see resolve_root in
/// cli/cmd_run.cpp).

/// The job's system-call filter: the policy chosen, its digest and the cached program compiled
/// from it (seccomp_program.hpp). An empty `program` means no filter (policy "none").
struct SeccompPlan {
  std::string policy = "none";  ///< "default", "build", a policy file's path, or "none"
  std::string digest;           ///< SHA-256 of the policy source, 64 hex digits (empty for none)
  std::string program;          ///< the compiled program's file (empty for none)
  friend bool operator==(const SeccompPlan&, const SeccompPlan&) = default;
};

/// /dev/shm of a job is a tmpfs of at most this many bytes unless --shm or the config says
/// otherwise, and never more than its memory limit (Docker's default is 64 MiB too).
inline constexpr std::uint64_t k_default_shm_bytes = 64ull << 20;

struct Outcome;

struct RunOptions {
  std::string root;                         ///< host path of the job root (verified by the caller)
  std::optional<RootId> root_id;            ///< if set, the opened root must be this directory
  std::string sandbox;                      ///< host path of the job's sandbox (scratch) directory
  std::optional<std::string> user;          ///< name or uid, resolved on the host; default: the caller
  std::optional<std::string> scratch_path;  ///< also bind the sandbox here
  std::vector<std::string> mount_under_scratch{"/tmp", "/var/tmp"};
  std::vector<BindSpec> binds;
  std::optional<std::uint64_t> memory;              ///< bytes, hard limit
  std::optional<std::uint64_t> memory_low;          ///< bytes, v2 memory.low / v1 soft limit
  std::optional<std::uint64_t> swap;                ///< bytes; 0 by default when `memory` is set
  std::optional<std::uint32_t> cpus_centi;          ///< --cpus times 100 (CPU weight/shares)
  std::optional<std::uint64_t> pids;                ///< pids.max
  std::optional<std::uint64_t> shm;                 ///< bytes of /dev/shm (--shm)
  std::uint64_t shm_default = k_default_shm_bytes;  ///< without --shm: this or --memory, the smaller (config `shm_size`)
  NetMode net = NetMode::host;
  std::vector<std::pair<std::string, std::string>> env;  ///< --env K=V, in order
  std::vector<std::string> keep_env;                     ///< --keep-env K
  std::optional<std::string> status_json;                ///< --status-json FILE
  bool require_limits = false;                           ///< fail instead of running without cgroup limits
  bool no_pty = false;                                   ///< --no-pty: the caller's terminal itself, not a new one
  IdRange job_ids;                                       ///< host ids for jobs' user namespaces (config `job_ids`)
  SeccompPlan seccomp;                                   ///< chosen and compiled by the caller (cli/seccomp_choice.cpp)
  std::vector<std::string> argv;
  /// Where warnings go ("running without limits"); default: stderr with a "chrootctl: warning:" prefix.
  std::function<void(const std::string&)> warn;
  /// Called by run_job once the job has ended (or failed to start), before --status-json is
  /// written: a sealed image's launch adds what dm-verity saw (Outcome::sealed).
  std::function<void(Outcome&)> after_job;
};

/// The job user, resolved on the host (never through the image's NSS).
struct Credentials {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  ///< supplementary groups
  std::string name;           ///< for USER and LOGNAME
  std::string home;           ///< for HOME
};

/// Facts about the calling process that the planner needs, gathered once (gather_host_facts).
struct HostFacts {
  uid_t uid = 0;  ///< real uid of the caller
  uid_t euid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;         ///< the caller's supplementary groups (getgroups)
  std::string cwd;                   ///< to make relative paths absolute
  bool on_terminal = false;          ///< one of the standard streams is a terminal
  std::vector<std::string> environ;  ///< the caller's environment, "K=V"
};

/// One operation of the new root, applied in order by the executor inside the child's private
/// mount namespace. Targets are absolute, normalized paths inside the new root.
struct MountOp {
  enum class Kind {
    proc,  ///< fresh procfs of the job's PID namespace
    dev,   ///< tmpfs with null, zero, full, random, urandom, tty, a new devpts and a private /dev/shm
    bind,  ///< a host source (LaunchPlan::sources[source]) bound at `target`
  };
  Kind kind = Kind::bind;
  std::string target;
  std::size_t source = 0;
  bool read_only = false;
  bool recursive = false;  ///< include the source's submounts
  friend bool operator==(const MountOp&, const MountOp&) = default;
};

/// A host path the child binds. Opened by the launcher before any namespace exists.
struct HostSource {
  std::string path;      ///< host path (absolute)
  bool sandbox = false;  ///< the job's sandbox itself (its owner is checked)
  /// Non-empty: a MOUNT_UNDER_SCRATCH directory "tmp", "var/tmp" created (mode 0700, owned by
  /// the job user) under `path`, which is the sandbox; it is the one that is bound.
  std::string scratch_subdir;
  std::optional<RootId> identity = std::nullopt;  ///< BindSpec::identity
  friend bool operator==(const HostSource&, const HostSource&) = default;
};

/// cgroup limits, computed by the planner; unset fields are not written.
struct Limits {
  std::optional<std::uint64_t> memory_max;
  std::optional<std::uint64_t> memory_low;
  std::optional<std::uint64_t> swap_max;
  std::optional<std::uint64_t> cpu_weight;  ///< v2 cpu.weight (1..10000)
  std::optional<std::uint64_t> cpu_shares;  ///< v1 cpu.shares (>= 2)
  std::optional<std::uint64_t> pids_max;
  /// Peak memory and OOM kills are wanted (--status-json): a v1 launch then uses the memory
  /// hierarchy even without a memory limit.
  bool memory_accounting = false;
  [[nodiscard]] bool any() const { return memory_max || memory_low || swap_max || cpu_weight || pids_max; }
  friend bool operator==(const Limits&, const Limits&) = default;
};

enum class LaunchMode {
  job,    ///< `chrootctl run`: read-only image, unprivileged job
  build,  ///< run_build_command: writable tree, root with capabilities
};

/// The whole launch, as plain data. Produced by plan_launch (or by run_build_command for build
/// mode); the executor does exactly what it says and nothing else.
struct LaunchPlan {
  LaunchMode mode = LaunchMode::job;
  /// The launcher runs without root (an ordinary caller): the job's user namespace can map
  /// only the caller's own ids, and init binds the sources from their paths. (Every job gets a
  /// user namespace; a build command gets none.)
  bool unprivileged = false;
  /// The job runs in a user namespace of its own: every `chrootctl run`; not a build command,
  /// nor the root the Slurm plugin enters (the batch system starts that job as its user).
  bool user_namespace = false;
  uid_t caller_uid = 0;
  gid_t caller_gid = 0;
  IdRange job_ids;                ///< where a job's id block comes from
  bool new_net = false;           ///< private network namespace with only loopback
  std::string root;               ///< host path of the new root
  std::optional<RootId> root_id;  ///< the opened root must be this directory
  bool root_read_only = true;     ///< image bound read-only, nosuid, nodev (job mode)
  std::vector<HostSource> sources;
  std::vector<MountOp> mounts;  ///< parents before children
  Credentials creds;
  bool drop_privileges = true;  ///< job mode; build mode keeps root's capabilities
  std::vector<std::string> argv;
  std::vector<std::string> env;  ///< "K=V"; PATH from here is used to find argv[0]
  std::string cwd;               ///< inside the new root
  bool use_cgroup = true;        ///< job mode; build mode runs in the caller's cgroup
  Limits limits;
  bool require_limits = false;
  std::uint64_t shm_bytes = k_default_shm_bytes;  ///< size of the private /dev/shm tmpfs
  /// The job gets a pseudo-terminal of its own, relayed to the caller's terminal, in place of
  /// each standard stream that is that terminal.
  bool pty = false;
  int stdin_fd = 0;  ///< -1: /dev/null inside the new root
  int stdout_fd = 1;
  int stderr_fd = 2;
  /// The system-call filter: read and checked by the launcher before the clone, installed in
  /// the job process last, just before its exec. Empty program: none.
  SeccompPlan seccomp;
};

/// Reads uid, gid, cwd and environment of the calling process.
HostFacts gather_host_facts();

/// Resolves the job user on the host with getpwnam/getpwuid and getgrouplist, before anything
/// of the image is touched. `spec` is a name or a numeric uid; without it the job runs as the
/// caller (refused when the caller is root, unless `spec` names root explicitly). A job that
/// runs as the caller (same uid and gid) keeps the caller's supplementary groups, as a plain
/// exec would; any other user gets its groups from the host's group database; a job as root
/// gets none (its ids are a block of its own, see idmap.hpp). `unprivileged`: the caller is
/// not root, and the job can only be the caller.
Result<Credentials> resolve_job_user(const std::optional<std::string>& spec, const HostFacts& facts, bool unprivileged);

/// The host's user `uid` (name, primary gid, home; no supplementary groups), or nullopt if the
/// host's user database has none.
Result<std::optional<Credentials>> host_user(uid_t uid);

/// The pure planner: validates the options and computes the mounts, environment, limits and
/// namespaces of the launch. No system call is made.
Result<LaunchPlan> plan_launch(const RunOptions& opts, const HostFacts& facts, const Credentials& creds);

/// Normalizes an absolute path inside a root: collapses "//" and ".", refuses "..", relative
/// paths and NUL bytes. `what` names the path in errors ("--bind target").
Result<std::string> normalize_inner_path(const std::string& path, const std::string& what);

/// The limits a job's cgroup holds, read back from its files: unset when there is no limit
/// ("max", or v1's unlimited value) or no such file. v1 swap is memsw minus memory.
struct LimitValues {
  std::optional<std::uint64_t> memory_max;
  std::optional<std::uint64_t> memory_low;
  std::optional<std::uint64_t> swap_max;
  std::optional<std::uint64_t> cpu_weight;  ///< v2 cpu.weight
  std::optional<std::uint64_t> cpu_shares;  ///< v1 cpu.shares
  std::optional<std::uint64_t> pids_max;
  friend bool operator==(const LimitValues&, const LimitValues&) = default;
};

/// What dm-verity says of a sealed image's blocks.
enum class VerityState {
  verified,   ///< dm-verity found no corrupted block so far
  corrupted,  ///< a block read since the image was mounted did not match its hash tree; the read failed with EIO
  none,       ///< no dm-verity (the file's SHA-256 was checked when it was mounted)
  unknown,    ///< the state could not be read
};
/// The state as the status JSON and `chrootctl mount --json` name it: "verified", "corrupted",
/// "none" or "unknown".
std::string_view verity_state_name(VerityState state);

/// A sealed image's part in a launch (docs/sealed.md).
struct SealedStatus {
  std::string image;  ///< the image file
  std::string mount;  ///< the shared mount the job's root came from
  VerityState verity = VerityState::unknown;
};

/// How a launch ended, with its accounting.
struct Outcome {
  enum class Kind {
    exited,          ///< the job exited with `code`
    signaled,        ///< the job was killed by signal `code`
    setup_failed,    ///< chrootctl could not set the job up (125)
    not_executable,  ///< the command exists but could not be executed (126)
    not_found,       ///< the command does not exist in the root (127)
  };
  Kind kind = Kind::setup_failed;
  int code = 0;
  std::string error;  ///< the reason, for setup_failed / not_executable / not_found
  double wall_seconds = 0;
  double cpu_user_seconds = 0;
  double cpu_system_seconds = 0;
  std::uint64_t max_rss_bytes = 0;                 ///< largest single process (getrusage)
  std::optional<std::uint64_t> peak_memory_bytes;  ///< whole job, from the cgroup
  std::optional<std::uint64_t> memory_limit_bytes;
  bool memory_limit_hit = false;           ///< the cgroup reached its memory limit
  std::uint64_t oom_kills = 0;             ///< processes killed by the OOM killer
  std::string cgroup;                      ///< "v1", "v2" or "none"
  std::optional<std::uint64_t> shm_bytes;  ///< size of the job's /dev/shm
  bool limits_applied = false;
  /// The limits the job's cgroup held when it ended, read back from its files, and whether
  /// they differ from what the launcher wrote (set only when the job had a cgroup).
  std::optional<LimitValues> effective_limits;
  bool limits_changed = false;
  /// The job's user namespace: "mapped" or "identity" (empty when there was none), its maps
  /// as written, and the first host id of the id block it held.
  std::string id_mode;
  std::string uid_map;
  std::string gid_map;
  std::optional<std::uint32_t> id_block;
  std::optional<SealedStatus> sealed;   ///< set for a sealed image (RunOptions::after_job)
  std::string seccomp_policy = "none";  ///< the system-call policy the job ran (or was to run) with
  std::string seccomp_digest;           ///< its digest; empty for none
  /// The job's user on the host and its name, once resolved (for the accounting log).
  std::optional<uid_t> job_uid;
  std::string job_user;

  /// The exit status chrootctl passes on: the job's code, 128+signal, or 125/126/127.
  [[nodiscard]] int exit_status() const;
};

/// Carries out a plan. Never throws; a failure before the job starts is an Outcome of kind
/// setup_failed (or not_found / not_executable for the exec itself). Must be called from a
/// single-threaded process (the child is created with a raw clone, without fork handlers).
Outcome execute(const LaunchPlan& plan, const std::function<void(const std::string&)>& warn = {});

/// `chrootctl run`: gathers the host facts, resolves the user, plans, executes, and writes
/// `--status-json` (atomically) if asked. The seam for the catalogue: `opts.root` is the
/// resolved, verified root path.
Outcome run_job(const RunOptions& opts);

/// The outcome kind as the status JSON and the accounting log name it ("exited", "signaled", ...).
std::string_view outcome_kind_name(Outcome::Kind kind);

/// The status record written by --status-json (one JSON object, documented in docs/launcher.md).
std::string status_json(const Outcome& outcome);

}  // namespace chrootctl::launcher
