#pragma once
/// What a launch leaves while it runs, and what removes it if the launcher is killed.
///
/// Each launch writes a small record, STATE_DIR/launches/NAME, before it creates its cgroup,
/// and removes it last. NAME is PID.STARTTIME.N: the launcher's pid, its start time (clock ticks
/// since boot, field 22 of /proc/PID/stat) and a counter, so a record or a cgroup directory of
/// that name belongs to a live launch exactly when that pid exists with that start time. The
/// record lists every cgroup directory the launch may create. `chrootctl cleanup`, and every
/// `chrootctl run` before it starts, remove records and job cgroups whose launcher is gone
/// (their processes are killed first); a live launch's are never touched.

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "chrootctl/common/error.hpp"
#include "chrootctl/launcher/cgroups.hpp"

namespace chrootctl::launcher {

/// The state directory: /run/chrootctl for root, $XDG_RUNTIME_DIR/chrootctl otherwise (empty
/// if there is none). $CHROOTCTL_STATE_DIR overrides both (tests).
std::string default_state_dir();

/// A launch name's owner, parsed from "PID.STARTTIME.N" (nullopt if the name is not one).
struct LaunchOwner {
  pid_t pid = 0;
  std::uint64_t start_time = 0;
};
std::optional<LaunchOwner> parse_launch_name(std::string_view name);

/// A unique name for a launch of this process: PID.STARTTIME.N, given this process's start
/// time (field 22 of /proc/self/stat).
std::string new_launch_name(std::uint64_t start_time);

/// True if the launcher that owns `name` is still running (same pid, same start time).
bool launch_is_live(const LaunchOwner& owner);

/// The record of one launch; removed on destruction.
class StateRecord {
public:
  /// Writes STATE_DIR/launches/NAME listing `cgroup_dirs` (creating the directories, mode
  /// 0755, refusing a state directory that is a symlink or not owned by the caller).
  static Result<StateRecord> create(const std::string& state_dir, const std::string& name,
                                    const std::vector<std::string>& cgroup_dirs);
  StateRecord(StateRecord&& o) noexcept : m_path(std::move(o.m_path)) { o.m_path.clear(); }
  StateRecord& operator=(StateRecord&&) = delete;
  StateRecord(const StateRecord&) = delete;
  ~StateRecord();
  [[nodiscard]] const std::string& path() const { return m_path; }
  /// Keeps the record on disk (the launch could not remove its cgroup; cleanup will).
  void release() { m_path.clear(); }

private:
  explicit StateRecord(std::string path) : m_path(std::move(path)) {}
  std::string m_path;
};

/// The cgroup directories a record lists (nullopt if it is not a record).
std::optional<std::vector<std::string>> parse_state_record(std::string_view text);

struct CleanupReport {
  std::vector<std::string> removed_records;
  std::vector<std::string> removed_cgroups;
  std::vector<std::string> live;      ///< launches still running, left alone
  std::vector<std::string> errors;    ///< what could not be removed, and why
};

/// Removes what dead launches left: records in `state_dir` (may be empty: none) with the
/// cgroups they list, then, with `scan_bases`, job cgroups found in the base directories of
/// `layout` that have no record. `is_live` decides about an owner (default: launch_is_live).
/// `chrootctl run` scans records only (a launch writes its record before its cgroup exists);
/// `chrootctl cleanup` scans both.
CleanupReport cleanup_stale(cgroup::Fs& fs, const cgroup::Layout& layout, const std::string& state_dir,
                            bool (*is_live)(const LaunchOwner&) = nullptr, bool scan_bases = true);

/// cleanup_stale for this machine: the detected layout and the default state directory.
Result<CleanupReport> cleanup_stale_here();

}  // namespace chrootctl::launcher
