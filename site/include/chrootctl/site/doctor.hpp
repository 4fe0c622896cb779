#pragma once
/// `chrootctl doctor`: what this host can do for chrootctl, in the style of `podman info`. Each
/// item of the host (kernel, cgroups, user namespaces, idmapped mounts, system calls, the
/// system-call filter, loop and dm-verity, the store, trusted keys, the job id range, the
/// accounting log, Slurm's and HTCondor's configuration) gets a verdict and, when it is not ok,
/// what that means for jobs. The launcher's own probes and rules are used (launcher/host.hpp,
/// cgroup::base_parents, decide_ids), so what doctor says is what a launch would do.
/// docs/doctor.md describes every check; docs/doctor.schema.json the JSON report.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chrootctl/common/error.hpp"
#include "chrootctl/common/settings.hpp"

namespace chrootctl::site {

enum class Verdict {
  ok,        ///< available as chrootctl uses it
  degraded,  ///< works, with less (a fallback, a limit that cannot be enforced); `meaning` says what
  missing,   ///< not available on this host
  error,     ///< present but misconfigured or unsafe as configured
};
std::string_view verdict_name(Verdict v);

/// A fact in a check's JSON report: null, a boolean, an integer, a string, a list or an object.
class Fact {
 public:
  enum class Kind { null, boolean, integer, text, list, object };
  Fact() = default;
  Fact(std::nullptr_t) {}
  Fact(bool b) : m_kind(Kind::boolean), m_bool(b) {}
  Fact(int n) : m_kind(Kind::integer), m_int(n) {}
  Fact(unsigned n) : m_kind(Kind::integer), m_int(n) {}
  Fact(long n) : m_kind(Kind::integer), m_int(n) {}
  Fact(unsigned long n) : m_kind(Kind::integer), m_int(static_cast<std::int64_t>(n)) {}
  Fact(long long n) : m_kind(Kind::integer), m_int(n) {}
  Fact(unsigned long long n) : m_kind(Kind::integer), m_int(static_cast<std::int64_t>(n)) {}
  Fact(std::string s) : m_kind(Kind::text), m_text(std::move(s)) {}
  Fact(const char* s) : m_kind(Kind::text), m_text(s) {}
  template <class T>
  Fact(const std::optional<T>& v) {
    if (v) *this = Fact(*v);
  }
  static Fact list(std::vector<Fact> items);
  static Fact object(std::vector<std::pair<std::string, Fact>> fields);

  [[nodiscard]] Kind kind() const { return m_kind; }
  [[nodiscard]] bool boolean() const { return m_bool; }
  [[nodiscard]] std::int64_t integer() const { return m_int; }
  [[nodiscard]] const std::string& text() const { return m_text; }
  [[nodiscard]] const std::vector<Fact>& items() const { return m_items; }
  [[nodiscard]] const std::vector<std::pair<std::string, Fact>>& fields() const { return m_fields; }
  /// The field `key` of an object, or nullptr.
  [[nodiscard]] const Fact* get(std::string_view key) const;

 private:
  Kind m_kind = Kind::null;
  bool m_bool = false;
  std::int64_t m_int = 0;
  std::string m_text;
  std::vector<Fact> m_items;
  std::vector<std::pair<std::string, Fact>> m_fields;
};

struct Check {
  std::string id;  ///< stable: "kernel", "cgroups", "user-namespaces", ... (docs/doctor.md)
  Verdict verdict = Verdict::ok;
  /// The configuration asks for this: any verdict but ok makes doctor exit 1.
  bool required = false;
  std::string summary;  ///< one line: what was found
  std::string meaning;  ///< when not ok: what it means for jobs, and what to do
  Fact facts = Fact::object({});
};

struct Report {
  std::string config_file;  ///< the configuration read ("" for none)
  std::vector<Check> checks;
  /// The checks the configuration asks for whose verdict is not ok.
  [[nodiscard]] std::vector<std::string> failed_required() const;
};

struct DoctorOptions {
  std::optional<std::string> sandbox;  ///< also judge idmapped mounts for a job sandbox here
  /// Where Slurm's and HTCondor's configuration are looked for.
  std::string slurm_plugstack = "/etc/slurm/plugstack.conf";
  std::string condor_config_dir = "/etc/condor";
  std::string passwd_file = "/etc/passwd";  ///< for the job id range: users, groups, subordinate ids
  std::string group_file = "/etc/group";
  std::string subuid_file = "/etc/subuid";
  std::string subgid_file = "/etc/subgid";
};

/// Examines the host. `settings` is the configuration as read; `config_error`, if set, is why
/// it could not be read (the report then says so, and judges the rest with the defaults).
Report run_doctor(const Settings& settings, const std::optional<Error>& config_error, const DoctorOptions& options);

/// The report as JSON (docs/doctor.schema.json) and as text: one line per check (verdict, id,
/// summary), its meaning indented below when not ok, and a final line.
std::string report_json(const Report& report, std::string_view version);
std::string report_text(const Report& report);

// ---- pure parts, unit-tested ----

/// Host ids someone already has: a user or group, or a subordinate id range.
struct IdHolder {
  std::string what;  ///< "user alice (uid 1000), /etc/passwd:12", "/etc/subuid:3: alice:100000:65536"
  std::uint64_t first = 0;
  std::uint64_t count = 1;
};
/// The ids of a passwd or group text (NAME:x:ID:...); `kind` is "user" or "group".
std::vector<IdHolder> account_ids(std::string_view text, const std::string& file, std::string_view kind);
/// The ranges of a subuid or subgid text (NAME:FIRST:COUNT).
std::vector<IdHolder> subordinate_ids(std::string_view text, const std::string& file);
/// Which holders overlap [first, first + count), each described by its `what`.
std::vector<std::string> id_overlaps(std::uint64_t first, std::uint64_t count, const std::vector<IdHolder>& holders);

/// The chrootctl_spank.so line of a plugstack.conf text (comments and `include` lines aside).
struct PlugstackLine {
  std::string where;   ///< "FILE:LINE"
  std::string kind;    ///< "required" or "optional"
  std::string plugin;  ///< the plugin's path
  std::vector<std::string> arguments;
};
std::vector<PlugstackLine> find_plugstack_lines(std::string_view text, const std::string& file);

}  // namespace chrootctl::site
