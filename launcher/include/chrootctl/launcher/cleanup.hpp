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
#include "chrootctl/launcher/idmap.hpp"

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

/// Where id block claims live: /run/chrootctl/idblocks for root, whatever the state directory
/// (id blocks are the machine's); STATE_DIR/idblocks otherwise.
std::string id_claims_dir(const std::string& state_dir);

/// A block of host ids held by one launch for its user namespace: the file CLAIMS/BASE (BASE,
/// the block's first host id), holding the launch's name, made with O_EXCL under an flock of
/// CLAIMS/.lock, under which every claim is also looked at and removed. No two running launches
/// ever hold overlapping blocks, whatever ranges they were configured with. The launch record
/// names the block; `cleanup` frees the blocks of dead launches.
class IdBlockClaim {
 public:
  /// Claims the lowest free block of `range` for the launch `name`. When every block is taken,
  /// claims of dead launches that have no record in `state_dir` are freed first.
  static Result<IdBlockClaim> claim(const std::string& claims_dir, const std::string& state_dir, const IdRange& range, const std::string& name);
  IdBlockClaim(IdBlockClaim&& o) noexcept : m_dir(std::move(o.m_dir)), m_name(std::move(o.m_name)), m_base(o.m_base) { o.m_dir.clear(); }
  IdBlockClaim& operator=(IdBlockClaim&&) = delete;
  IdBlockClaim(const IdBlockClaim&) = delete;
  ~IdBlockClaim();
  /// The first host id of the block.
  [[nodiscard]] std::uint32_t base() const { return m_base; }
  /// Keeps the claim on disk (processes of the job may still run; cleanup frees it).
  void release() { m_dir.clear(); }

 private:
  IdBlockClaim(std::string dir, std::string name, std::uint32_t base) : m_dir(std::move(dir)), m_name(std::move(name)), m_base(base) {}
  std::string m_dir;
  std::string m_name;
  std::uint32_t m_base = 0;
};

/// The record of one launch; removed on destruction.
class StateRecord {
 public:
  /// Writes STATE_DIR/launches/NAME listing `cgroup_dirs` and the id block the launch holds
  /// (creating the directories, mode 0755, refusing a state directory that is a symlink or not
  /// owned by the caller).
  static Result<StateRecord> create(const std::string& state_dir, const std::string& name, const std::vector<std::string>& cgroup_dirs,
                                    std::optional<std::uint32_t> id_block = std::nullopt);
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

/// What a record lists.
struct RecordContents {
  std::vector<std::string> cgroup_dirs;
  std::optional<std::uint32_t> id_block;  ///< the first host id of the launch's id block
};
/// Parses a record (nullopt if it is not one).
std::optional<RecordContents> parse_state_record(std::string_view text);

struct CleanupReport {
  std::vector<std::string> removed_records;
  std::vector<std::string> removed_cgroups;
  std::vector<std::string> freed_id_blocks;  ///< claim files of dead launches
  std::vector<std::string> live;             ///< launches still running, left alone
  std::vector<std::string> errors;           ///< what could not be removed, and why
};

/// Removes what dead launches left: records in `state_dir` (may be empty: none) with the
/// cgroups and id blocks they list, then, with `scan_bases`, job cgroups found in the base
/// directories of `layout` that have no record, and id block claims of dead launches that have
/// no record. `is_live` decides about an owner (default: launch_is_live).
/// `chrootctl run` scans records only (a launch writes its record before its cgroup exists);
/// `chrootctl cleanup` scans both.
/// `claims_dir`: where id block claims are (default: id_claims_dir(state_dir)).
CleanupReport cleanup_stale(cgroup::Fs& fs, const cgroup::Layout& layout, const std::string& state_dir, bool (*is_live)(const LaunchOwner&) = nullptr,
                            bool scan_bases = true, const std::optional<std::string>& claims_dir = std::nullopt);

/// cleanup_stale for this machine: the detected layout and the default state directory.
Result<CleanupReport> cleanup_stale_here();

}  // namespace chrootctl::launcher
