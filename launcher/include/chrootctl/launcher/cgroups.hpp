#pragma once
/// cgroups for jobs, v1 and v2, detected at run time. Every job gets its own cgroup, named
/// after the launch (PID.STARTTIME.N, so a leftover can be told from a live job), under a base
/// directory `chrootctl`:
///   v1: MOUNT/OWN/chrootctl/NAME in each hierarchy used (freezer; memory with a memory limit or
///       accounting; pids with --pids; cpu with --cpus)
///   v2: OWN/chrootctl/NAME under the caller's own cgroup when controllers can be enabled
///       there, else ROOT/chrootctl/NAME (root only)
/// The kernel is reached through `Fs`, so the logic is unit-tested against a temporary
/// directory laid out like cgroupfs (tests/unit/launcher_cgroups_test.cpp).

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "chrootctl/common/error.hpp"
#include "chrootctl/common/fd.hpp"
#include "chrootctl/launcher/launch.hpp"

namespace chrootctl::launcher::cgroup {

enum class Version { none, v1, v2 };
std::string_view version_name(Version v);

/// The cgroup mounts of this machine and the caller's place in them.
struct Layout {
  std::string v2_mount;                          ///< cgroup2 mount point, empty if none
  std::string v2_own = "/";                      ///< the caller's v2 cgroup ("0::" line)
  std::map<std::string, std::string> v1_mounts;  ///< controller -> mount point
  std::map<std::string, std::string> v1_own;     ///< controller -> the caller's cgroup in it ("/" if absent)
};

/// Parses /proc/self/mountinfo and /proc/self/cgroup (pure).
Layout parse_layout(std::string_view mountinfo, std::string_view self_cgroup);
/// Reads them for the calling process.
Result<Layout> detect_layout();

class Fs;

/// The controllers the cgroup2 hierarchy offers at its root (empty without one).
std::set<std::string> v2_controllers(Fs& fs, const Layout& layout);
/// The version launches use here: v2 when the cgroup2 hierarchy offers the memory controller,
/// else v1 when a v1 controller hierarchy is mounted, else none.
Version launch_version(Fs& fs, const Layout& layout);
/// The directories below which launches put their `chrootctl` base, as JobCgroup::create
/// chooses them: on v1 one per controller hierarchy (the freezer's first), each the caller's
/// own cgroup in it; on v2 the caller's own cgroup and then, for root, the hierarchy's root
/// (create uses the first where it can enable the controllers). Nothing is created.
std::vector<std::string> base_parents(Fs& fs, const Layout& layout, bool privileged);

/// The kernel interface. The real one is cgroupfs; unit tests lay out a tree in a temporary
/// directory and override make_dir/remove_dir to create and remove the control files the
/// kernel would.
class Fs {
 public:
  virtual ~Fs() = default;
  /// mkdir(path, 0755). Errc::exists if it is already there.
  virtual Status make_dir(const std::string& path);
  /// rmdir(path); retried briefly while the kernel still counts exiting tasks (EBUSY).
  virtual Status remove_dir(const std::string& path);
  /// One rmdir(path), no retry: true if the directory is gone.
  virtual bool remove_dir_once(const std::string& path);
  /// Writes `value` to a control file (O_WRONLY|O_TRUNC, never O_CREAT).
  virtual Status write(const std::string& path, std::string_view value);
  virtual Result<std::string> read(const std::string& path);
  virtual bool exists(const std::string& path);
  /// Directory entries that are directories (child cgroups).
  virtual Result<std::vector<std::string>> subdirs(const std::string& path);
  /// The pid of the calling process, as cgroup.procs shows it.
  virtual pid_t self_pid();
};
Fs& real_fs();

/// What a job used, read from its cgroup after it ended.
struct Accounting {
  std::optional<std::uint64_t> peak_memory;  ///< v1 memory.max_usage_in_bytes / v2 memory.peak
  std::uint64_t oom_kills = 0;               ///< memory.oom_control / memory.events oom_kill
  bool memory_limit_hit = false;             ///< v1 memory.failcnt > 0 / v2 memory.events max > 0
};

/// One job's cgroup (one directory per v1 hierarchy, or one v2 directory).
class JobCgroup {
 public:
  /// Creates the job's cgroup `name` and writes `limits`. `privileged` allows the v2 fallback to
  /// the root cgroup. When no usable hierarchy exists the result has version none and a note
  /// says why; `notes` also collects limits that could not be applied (swap without memsw).
  static Result<JobCgroup> create(Fs& fs, const Layout& layout, const std::string& name, const Limits& limits, bool privileged,
                                  std::vector<std::string>& notes);
  /// Every directory a launch named `name` may create (for the state record, which is written
  /// before the cgroup exists so that a launcher killed at any point leaves a record behind).
  static std::vector<std::string> candidate_dirs(const Layout& layout, const Limits& limits, const std::string& name);

  JobCgroup(JobCgroup&&) noexcept = default;
  JobCgroup& operator=(JobCgroup&&) noexcept = default;
  JobCgroup(const JobCgroup&) = delete;
  JobCgroup& operator=(const JobCgroup&) = delete;
  ~JobCgroup();

  [[nodiscard]] Version version() const { return m_version; }
  [[nodiscard]] const std::vector<std::string>& dirs() const { return m_dirs; }
  /// True when every requested limit was written.
  [[nodiscard]] bool limits_applied() const { return m_limits_applied; }
  /// `tasks` (v1) or `cgroup.procs` of every directory, opened for writing: init writes "0" to
  /// each before anything else, so the job is born inside (unless init was born there itself,
  /// with CLONE_INTO_CGROUP).
  Result<std::vector<Fd>> open_procs() const;
  /// The v2 directory, for clone3(CLONE_INTO_CGROUP).
  Result<Fd> open_dir() const;
  Accounting read_accounting(Fs& fs) const;
  /// The limits the cgroup's files hold now.
  LimitValues read_limits(Fs& fs) const;
  /// The limits as they were right after they were written (what read_limits gave then).
  [[nodiscard]] const LimitValues& limits_set() const { return m_limits_set; }
  /// Kills every process left in the cgroup and removes its directories.
  Status destroy(Fs& fs);

 private:
  JobCgroup() = default;
  Version m_version = Version::none;
  std::vector<std::string> m_dirs;
  std::vector<std::string> m_nested_bases;  ///< bases inside another cgroup, removed when empty
  std::string m_v1_memory_dir;              ///< v1: the job's directory in the memory hierarchy, if mounted
  bool m_limits_applied = false;
  LimitValues m_limits_set;
  std::map<std::string, std::string> m_controller_dirs;  ///< v1: the job's directory of memory, cpu, pids
  bool m_live = false;
};

/// Kills every process in the cgroup directory `dir` (v1 or v2, told apart by its files) and
/// removes it. Used for a job's own cgroup and for leftovers of a launcher that was killed.
Status destroy_dir(Fs& fs, const std::string& dir);

/// True if `dir` is the root of one of the layout's hierarchies (a mount point).
bool is_hierarchy_root(const Layout& layout, const std::string& dir);

/// The base directories where job cgroups of this machine live (for cleanup scans).
std::vector<std::string> base_dirs(Fs& fs, const Layout& layout);

}  // namespace chrootctl::launcher::cgroup
