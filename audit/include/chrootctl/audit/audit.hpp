#pragma once
/// Site audits of image contents (`chrootctl audit`): what in an image could hurt the site, and
/// whether the image still matches its manifest. Every check has a stable id, a default
/// severity and a reason; the ids, the text report and the JSON report (with its JSON Schema)
/// are documented in docs/audit.md and docs/audit.schema.json.
///
/// An audit costs one `manifest check` of the tree plus reading a handful of files: the checks
/// run over the entries of the fresh walk (which has every path, type, mode, owner, size,
/// hash, xattr and link target), and only read the contents of files a check needs (setuid
/// files' first bytes, candidate private keys, account files, sudoers, ld.so.preload, the
/// package database).

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "chrootctl/audit/caps.hpp"
#include "chrootctl/audit/packages.hpp"
#include "chrootctl/common/error.hpp"
#include "chrootctl/common/json.hpp"
#include "chrootctl/common/manifest.hpp"

namespace chrootctl::audit {

struct Policy;

/// Ordered: a gate at `medium` fails on medium and high findings. `info` never fails a gate
/// other than `--severity info`.
enum class Severity : std::uint8_t { info = 0, low = 1, medium = 2, high = 3 };
std::string_view severity_name(Severity s);
/// "info", "low", "medium" or "high"; nullopt otherwise.
std::optional<Severity> parse_severity(std::string_view s);

/// One check of the catalogue of checks.
struct CheckInfo {
  std::string_view id;      ///< stable, e.g. "setuid.unexpected-location"
  Severity severity;        ///< default; the policy may change it
  std::string_view reason;  ///< why it matters, one sentence, shown with the findings
};
/// Every check, grouped as in docs/audit.md.
std::span<const CheckInfo> checks();
/// The check with this id, or nullptr.
const CheckInfo* find_check(std::string_view id);
std::vector<std::string> check_ids();

struct Finding {
  std::string check;  ///< a CheckInfo id
  Severity severity = Severity::info;
  std::string path;                      ///< raw bytes; the entry concerned (the account file for account checks)
  std::string account;                   ///< account or group name for account.* findings; empty otherwise
  std::string detail;                    ///< what was found (raw bytes; escaped when rendered)
  std::optional<FileCaps> capabilities;  ///< decoded, for capability.* findings
  std::string ignored_because;           ///< the policy's reason, for findings an ignore rule matched
};

/// What to audit. `root` is the tree; `manifest` the recorded manifest (empty: drift is not
/// checked and a note says so).
struct Target {
  std::string label;      ///< as the user named it (catalogue name or path)
  std::string name;       ///< catalogue name, if it came from the catalogue
  std::string build_dir;  ///< the build directory, if any
  std::string root;       ///< the tree walked; for a sealed image, its mount (set by the caller)
  std::string manifest;
  /// A sealed image (docs/sealed.md): its image file and #sealed line. `root` is empty until the
  /// caller has mounted it (the CLI does, through the launcher's shared mount).
  std::string sealed_file;
  std::optional<manifest::Sealed> sealed;
  /// The system-call policy the entry's jobs run with ("default", "none" or a policy file;
  /// empty when the target is not a catalogue entry), and where that was decided.
  std::string seccomp;
  std::string seccomp_origin;
};

/// A build directory BUILD: BUILD/root and BUILD/manifest must exist (root a directory,
/// manifest a regular file), or, for a sealed build, BUILD/image.erofs and a manifest with its
/// #sealed line. Errors name the missing part.
Result<Target> target_from_build_dir(const std::string& dir);

struct Options {
  unsigned threads = 0;           ///< hashing threads; 0 = one per CPU
  manifest::ProgressFn progress;  ///< progress of the walk
};

struct Report {
  Target target;
  std::string tree_digest;    ///< digest of the recorded manifest (empty without one)
  std::uint64_t entries = 0;  ///< entries in the tree as walked
  bool drift_checked = false;
  std::uint64_t drift_differences = 0;  ///< differences other than mtime-only
  std::vector<Finding> findings;        ///< by severity (high first), check, path, account
  std::vector<Finding> ignored;         ///< matched an ignore rule of the policy; same order
  PackageList packages;
  std::vector<std::string> notes;  ///< what could not be checked, and why

  [[nodiscard]] std::uint64_t count(Severity s) const;
  /// True when a finding is at or above `gate`.
  [[nodiscard]] bool fails(Severity gate) const;
};

/// Audits one image: walks and hashes the tree once (the drift check of its manifest), runs
/// every check over the fresh entries, reads the package database and applies `policy`.
Result<Report> audit(const Target& target, const Policy& policy, const Options& options = {});

/// The text report of one image: findings grouped by severity (high first), each check's reason
/// once, then packages and notes, ending with a one-line summary.
std::string render_text(const Report& r);
/// The summary line alone ("LABEL: 1 high, 2 medium, 0 low, 3 info; ...").
std::string summary_line(const Report& r);

/// One image of a JSON report: either a report or the error that stopped its audit.
struct ImageResult {
  std::string label;
  std::optional<Report> report;
  std::optional<Error> error;
};
/// The whole JSON document for `images` (schema: docs/audit.schema.json).
std::string render_json(const std::vector<ImageResult>& images, Severity gate, const std::string& policy_source);

/// Text escaping used in reports: printable ASCII (space included) is kept, every other byte
/// and the backslash become `\xHH`, so a hostile file name cannot forge report lines.
std::string printable(std::string_view raw);

}  // namespace chrootctl::audit
