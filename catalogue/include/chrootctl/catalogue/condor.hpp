#pragma once
/// HTCondor compatibility (25.0 LTS rules): NAMED_CHROOT export and import, and finding the
/// root a job asks for in a submit file or a job ClassAd.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chrootctl/catalogue/registry.hpp"
#include "chrootctl/catalogue/resolve.hpp"
#include "chrootctl/common/error.hpp"
#include "chrootctl/common/settings.hpp"

namespace chrootctl::catalogue {

// ---- condor-config ----

struct NamedChroot {
  std::string name;
  std::string path;
};

struct CondorConfig {
  std::string text;                   ///< "# ...\nNAMED_CHROOT = A=/x/root, B=/y/root\n"
  std::vector<NamedChroot> included;  ///< verified entries and their aliases
  struct Skipped {
    std::string name;
    std::string reason;
  };
  std::vector<Skipped> skipped;  ///< not verified, or a path NAMED_CHROOT cannot hold
};

/// The NAMED_CHROOT line for every entry (and alias) whose current version is usable
/// (evaluate), from the trusted catalogue. A root whose path holds white space, a comma or
/// '=' cannot be written in NAMED_CHROOT and is skipped with the reason.
Result<CondorConfig> condor_config(const Settings& s, std::int64_t now = 0);

// ---- condor-config --wrapper (HTCondor 25.5 and later, which have no NAMED_CHROOT) ----

struct WrapperConfig {
  /// "USER_JOB_WRAPPER = SCRIPT", "NamedChroot = \"EL9, RHEL5\"" and
  /// "STARTD_ATTRS = $(STARTD_ATTRS) NamedChroot", with comments.
  std::string text;
  /// The USER_JOB_WRAPPER script: HTCondor runs one executable with the job's command line and
  /// cannot pass it arguments, so the script execs `CHROOTCTL condor-wrapper --store STORE --`.
  std::string script;
  std::string named_chroot;           ///< the value of NamedChroot, without quotes: "EL9, RHEL5"
  std::vector<NamedChroot> included;  ///< verified entries and their aliases
  std::vector<CondorConfig::Skipped> skipped;
};

/// The configuration that replaces NAMED_CHROOT on HTCondor 25.5+: every job starts through
/// `chrootctl condor-wrapper` (the script at `script_path`, which runs the chrootctl binary at
/// `chrootctl` with the store and configuration file of `s`), and the machine advertises the
/// names that resolve now, so that jobs match with `stringListMember("EL9", NamedChroot)`.
/// Both paths must be absolute and free of white space, quotes, '#', '$' and '\' (which a
/// configuration line or the script would change).
Result<WrapperConfig> condor_wrapper_config(const Settings& s, const std::string& chrootctl, const std::string& script_path, std::int64_t now = 0);

// ---- import-condor-config ----

/// Logical lines of an HTCondor config, submit or ClassAd file: a line ending in a backslash
/// continues on the next one; `line` is where each logical line starts.
struct LogicalLine {
  std::uint32_t line = 0;
  std::string text;
};
std::vector<LogicalLine> logical_lines(std::string_view text);

struct NamedChrootValue {
  std::vector<NamedChroot> entries;
  std::vector<std::string> warnings;  ///< one per skipped token, naming it
};
/// Splits a NAMED_CHROOT value as HTCondor does: tokens separated by commas and white space,
/// each `name=path`; a token with no '=' or no path is skipped with a warning naming it.
NamedChrootValue parse_named_chroot(std::string_view value);

struct NamedChrootSetting {
  bool found = false;
  std::string value;
  std::string where;  ///< "FILE:LINE" of the assignment used
};
/// The NAMED_CHROOT assignment in effect in a condor configuration file's text: macro names are
/// case-insensitive and the last assignment wins; a STARTER.NAMED_CHROOT overrides plain
/// NAMED_CHROOT for the starter, which is what uses it.
NamedChrootSetting find_named_chroot(std::string_view text, const std::string& filename);

struct ImportOptions {
  bool dry_run = false;  ///< only parse and report what would be imported
  unsigned threads = 0;
  manifest::ProgressFn progress;
  std::int64_t now = 0;
};

struct ImportItem {
  std::string name;
  std::string path;
  bool imported = false;
  std::string message;  ///< what happened (the digest, or why it failed)
};

struct ImportReport {
  std::string where;                  ///< the assignment used ("FILE:LINE"), empty if none
  std::vector<std::string> warnings;  ///< skipped tokens
  std::vector<ImportItem> items;
};

/// Reads FILE's NAMED_CHROOT, and for each `name=path` (except the implicit `root`): records a
/// manifest of the tree at `path` in a new build directory STORE/NAME/import-TIME (the tree is
/// not copied), then registers it with `add` and `AddOptions::root = path`, so the same checks
/// apply (root-owned, unwritable by others along the whole path). One root that fails does not
/// stop the others; its item says why.
Result<ImportReport> import_condor_config(const Settings& s, const std::string& file, const ImportOptions& options = {});

// ---- lookup ----

/// What a submit file or job ClassAd asks for.
struct ChrootRequest {
  bool present = false;    ///< an assignment to RequestedChroot was found
  std::string name;        ///< the requested name (when `problem` is empty)
  std::string problem;     ///< why the request cannot be honoured (not a plain string literal, ...)
  std::string attribute;   ///< as written: "+RequestedChroot", "My.RequestedChroot", "RequestedChroot"
  std::uint32_t line = 0;  ///< where the assignment in effect starts
};

/// Finds the assignment in effect (the last one) of `+RequestedChroot`, `My.RequestedChroot`
/// (`MY.`, any case) or, as in a job ClassAd such as $_CONDOR_JOB_AD, `RequestedChroot`.
/// Attribute names are case-insensitive; the value must be a ClassAd string literal and is used
/// exactly. Comments (#), blank lines and continuation lines are handled. A value that is not a
/// plain string literal (an expression, a submit macro $(...), an empty string) is a request
/// with a `problem`, never "no request": such a job must not fall back to the host's root.
ChrootRequest find_request(std::string_view text);

/// Finds RequestedChroot in a job ClassAd file ($_CONDOR_JOB_AD, what the HTCondor wrapper
/// reads) by the ClassAd file rules: one `Name = value` per line, attribute names matched in any
/// case, no continuation lines; blank lines and `#` comment lines are skipped. It fails closed,
/// for a job must never run on the host because its request was not understood:
///  * a line that mentions RequestedChroot (its letters, in any case, whatever lies between
///    them) but is not a `Name = value` line is a request with a `problem`;
///  * RequestedChroot assigned twice with different values is a request with a `problem`;
///  * a value that is not a plain string literal is a request with a `problem` (as in
///    find_request).
/// `present` is false only when no line mentions RequestedChroot except in the value of another
/// attribute (HTCondor's own ads list attribute names in values, as AutoClusterAttrs does).
ChrootRequest find_request_in_ad(std::string_view text);
/// Reads FILE (a regular file of at most 16 MiB) and applies find_request_in_ad; the text read
/// goes to `text_out` if given.
Result<ChrootRequest> find_request_in_ad_file(const std::string& file, std::string* text_out = nullptr);

/// The job's id, "CLUSTER.PROC", from the ClusterId and ProcId lines of a job ClassAd (by the
/// ClassAd file rules, as find_request_in_ad); empty unless both are there once, as plain
/// non-negative integers. For the accounting log: the ad is the job owner's, so it names what
/// the job claims to be, which HTCondor set when it wrote the ad.
std::string job_id_in_ad(std::string_view text);

struct LookupResult {
  ChrootRequest request;
  std::optional<ResolvedRoot> resolved;  ///< set when the request resolves to a verified root
  std::string reason;                    ///< why it did not (request present, not resolved)
};

/// Reads FILE (a regular file of at most 16 MiB; a symlink is followed) and finds its request.
Result<ChrootRequest> find_request_in(const std::string& file);

/// "FILE:LINE: ATTRIBUTE: " followed by `what`, for messages about a request.
std::string describe_request(const std::string& file, const ChrootRequest& request, const std::string& what);

/// Reads FILE, finds the request and resolves it (resolve). Errors only when FILE or the
/// catalogue cannot be read; a missing request, an invalid one and one that does not resolve are
/// all reported in the result.
Result<LookupResult> lookup(const Settings& s, const std::string& file, const ResolveOptions& options = {});
/// lookup of a job ClassAd file, read by find_request_in_ad.
Result<LookupResult> lookup_ad(const Settings& s, const std::string& file, const ResolveOptions& options = {});

}  // namespace chrootctl::catalogue
