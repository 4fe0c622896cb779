#pragma once
/// Launch accounting: one JSON line per launch, appended to the site's accounting log by
/// whoever called the launcher, once the outcome is known (`run`, `condor-wrapper`, the Slurm
/// plugin). docs/accounting.md describes the line and the files.
///
///   root          PATH (config `[accounting] path`, default /var/log/chrootctl/launches.jsonl),
///                 owned by root, mode 0640, in a directory only root can write
///   other users   DIR/users/UID.jsonl (DIR, the directory of PATH), owned by that user, in a
///                 root-owned sticky directory (mode 1733): what an unprivileged launcher
///                 reports is its own claim, kept apart from root's log
///
/// Each line is written with one write(2) on a descriptor opened with O_APPEND, so concurrent
/// launches never interleave their lines. A file that would grow past its size limit is first
/// renamed to PATH.1 (PATH.1 to PATH.2, ..., the oldest beyond `keep` dropped), under an flock
/// of the file, so that two launchers never rotate the same file twice. Writing the line never
/// stops or changes a job: the caller reports a failure on stderr and goes on.
///
/// The launcher reads no configuration: the caller passes the log's settings.

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "chrootctl/common/error.hpp"
#include "chrootctl/launcher/launch.hpp"

namespace chrootctl::launcher {

/// Where and how lines are written (the caller copies them from the configuration).
struct AccountingLog {
  std::string path;                       ///< root's log (absolute)
  std::uint64_t max_bytes = 64ull << 20;  ///< rotate before a line would pass this size
  unsigned keep = 4;                      ///< rotated files kept
};

/// The file a launcher running with effective uid `euid` appends to: `log.path` for root,
/// DIR/users/UID.jsonl for anyone else.
std::string accounting_file(const AccountingLog& log, uid_t euid);

/// What one launch did. The outcome comes from the launcher; the rest from its caller, which
/// knows the image and the batch job.
struct AccountingRecord {
  std::string via;               ///< "run", "condor-wrapper" or "slurm"
  std::int64_t start_ns = 0;     ///< CLOCK_REALTIME, when the caller began the launch
  std::int64_t end_ns = 0;       ///< ... and when it knew the outcome
  uid_t invoking_uid = 0;        ///< the real uid of the launcher's caller
  std::optional<uid_t> job_uid;  ///< the job's user on the host, once resolved
  std::string job_user;          ///< its name ("" if unknown)
  std::string image;             ///< the name asked for ("" for `run --root`)
  std::string entry;             ///< the catalogue entry it resolved to
  std::string build_id;
  std::string tree_digest;
  std::string signer;        ///< "" when the image is not signed
  std::string root;          ///< the root directory the job ran in ("" if not resolved)
  std::string batch_system;  ///< "slurm", "htcondor" or ""
  std::string batch_job_id;  ///< Slurm "JOB.STEP", HTCondor "CLUSTER.PROC", or ""
  std::uint32_t tasks = 0;   ///< Slurm: the step's tasks on this node (0: not counted)
  Outcome outcome;
};

/// The record as one line of JSON (a flat object, '\n'-terminated; docs/accounting.md lists
/// the fields). `host` and the user names are looked up here (the host's user database).
std::string accounting_line(const AccountingRecord& record);

/// Appends `line` to accounting_file(log, geteuid()), rotating first if it would pass
/// `log.max_bytes`. Root creates the log's directory (0755) and DIR/users (1733) if missing.
/// Refuses a file that is not a regular file of the writer's own (or a hard link, or one
/// others may write), and a directory that someone other than root may write (for users/: one
/// without the sticky bit). The error names the file and the problem.
Status append_accounting_line(const AccountingLog& log, const std::string& line);

/// Nanoseconds since the epoch (CLOCK_REALTIME).
std::int64_t wall_clock_ns();

}  // namespace chrootctl::launcher
