#pragma once
// The pure parts of the Slurm plugin, kept apart from the SPANK hooks so that unit tests
// (tests/unit/batch_spank_config_test.cpp) check them without a Slurm: the plugstack.conf
// arguments, the values of --chroot and --chroot-scratch, the output of `chrootctl resolve
// --json`, and the name of a job step's directory. Header-only: the plugin and the unit tests
// compile it, both linking chrootctl::common.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chrootctl/common/error.hpp"
#include "chrootctl/common/json.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/launcher/accounting.hpp"
#include "chrootctl/launcher/launch.hpp"

namespace chrootctl::batch {

/// What plugstack.conf says after the plugin's path:
///   required /usr/lib/chrootctl/chrootctl_spank.so chrootctl=/usr/bin/chrootctl [store=DIR]
///       [config=FILE] [jobdirs=DIR] [scratch=DIRS] [bind=SRC[:DST][:ro]]... [fast] [timeout=SECONDS]
struct SpankConfig {
  std::string chrootctl;                                 ///< the chrootctl binary (absolute); never searched in PATH
  std::optional<std::string> store;                      ///< passed as --store
  std::optional<std::string> config;                     ///< passed as $CHROOTCTL_CONFIG
  std::string jobdirs = "/var/spool/chrootctl/slurm";    ///< per-step directories (private /tmp, ...)
  std::vector<std::string> scratch{"/tmp", "/var/tmp"};  ///< default of --chroot-scratch
  std::vector<launcher::BindSpec> binds;                 ///< site binds into every root (/cvmfs, /home, ...)
  bool fast = false;                                     ///< resolve --fast: also the metadata check of the image
  unsigned timeout_seconds = 60;                         ///< for the resolver
};

inline bool is_absolute_clean(std::string_view p) {
  if (p.empty() || p[0] != '/' || p.find('\0') != std::string_view::npos) return false;
  for (const auto& c : split(p, '/'))
    if (c == "." || c == "..") return false;
  return true;
}

/// Why `name` cannot be a catalogue name (the catalogue's rules: 1 to 64 bytes of letters,
/// digits, '_', '-', '.', '+', starting with a letter or digit; 'root' is reserved), or nullopt.
/// Checked in srun already, so a typo fails at once, and before the name becomes an argument
/// of the resolver (it can never look like an option).
inline std::optional<std::string> invalid_chroot_name(std::string_view name) {
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); };
  if (name.empty()) return std::string("the name is empty");
  if (name.size() > 64) return str("the name ", quote(name), " is longer than 64 bytes");
  if (!alnum(name[0])) return str("the name ", quote(name), " does not start with a letter or a digit");
  for (char c : name)
    if (!alnum(c) && c != '_' && c != '-' && c != '.' && c != '+')
      return str("the name ", quote(name), " holds ", quote(std::string(1, c)), " (allowed: letters, digits, _ - . +)");
  std::string lower(name);
  for (char& c : lower)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  if (lower == "root") return str(quote(name), " is reserved: it means the host's own root, where chrootctl never runs a job");
  return std::nullopt;
}

/// "/tmp,/var/tmp" -> its directories: absolute, without '.' or '..', not '/', at most 16.
/// An empty value means none (only /dev/shm is then private).
inline Result<std::vector<std::string>> parse_scratch_list(std::string_view text, std::string_view what) {
  std::vector<std::string> out;
  for (const auto& raw : split(text, ',')) {
    const std::string d(trim(raw));
    if (d.empty()) continue;
    if (!is_absolute_clean(d)) return fail(Errc::invalid_argument, str(what, ": ", quote(d), " is not an absolute path without '.' or '..'"));
    if (d.find_first_not_of('/') == std::string::npos) return fail(Errc::invalid_argument, str(what, ": '/' cannot be a scratch directory"));
    out.push_back(d);
  }
  if (out.size() > 16) return fail(Errc::invalid_argument, str(what, ": more than 16 directories"));
  return out;
}

/// "SRC[:DST][:ro]" of a bind= argument.
inline Result<launcher::BindSpec> parse_bind(std::string_view text) {
  auto parts = split(text, ':');
  launcher::BindSpec b;
  if (parts.size() > 1 && parts.back() == "ro") {
    b.read_only = true;
    parts.pop_back();
  }
  if (parts.empty() || parts.size() > 2) return fail(Errc::invalid_argument, str("bind=", text, ": expected SRC, SRC:DST or SRC:DST:ro"));
  b.source = parts[0];
  b.target = parts.size() == 2 ? parts[1] : parts[0];
  if (!is_absolute_clean(b.source) || !is_absolute_clean(b.target))
    return fail(Errc::invalid_argument, str("bind=", text, ": SRC and DST must be absolute paths without '.' or '..'"));
  return b;
}

/// Parses the arguments after the plugin's path in plugstack.conf. Unknown arguments are
/// errors (a misspelt store= must not silently fall back to the default store).
inline Result<SpankConfig> parse_plugstack_args(const std::vector<std::string>& args) {
  SpankConfig c;
  std::vector<std::string> errors;
  bool have_binary = false;
  for (const auto& a : args) {
    const auto eq = a.find('=');
    const std::string key = a.substr(0, eq);
    const std::string value = eq == std::string::npos ? std::string() : a.substr(eq + 1);
    const bool has_value = eq != std::string::npos;
    auto need_path = [&](std::string& dst) {
      if (!has_value || !is_absolute_clean(value)) errors.push_back(str(key, "= needs an absolute path (got ", quote(a), ")"));
      else dst = value;
    };
    if (key == "chrootctl") {
      need_path(c.chrootctl);
      have_binary = true;
    } else if (key == "store") {
      std::string v;
      need_path(v);
      c.store = v;
    } else if (key == "config") {
      std::string v;
      need_path(v);
      c.config = v;
    } else if (key == "jobdirs") {
      need_path(c.jobdirs);
    } else if (key == "scratch" && has_value) {
      auto s = parse_scratch_list(value, "scratch=");
      if (s) c.scratch = *s;
      else errors.push_back(s.error().message());
    } else if (key == "bind" && has_value) {
      auto b = parse_bind(value);
      if (b) c.binds.push_back(*b);
      else errors.push_back(b.error().message());
    } else if (key == "fast" && !has_value) {
      c.fast = true;
    } else if (key == "timeout" && has_value) {
      auto n = parse_u64(value);
      if (!n || *n == 0 || *n > 3600) errors.push_back(str("timeout=", value, ": expected seconds, 1 to 3600"));
      else c.timeout_seconds = static_cast<unsigned>(*n);
    } else {
      errors.push_back(str("unknown argument ", quote(a), " (known: chrootctl= store= config= jobdirs= scratch= bind= fast timeout=)"));
    }
  }
  if (!have_binary) errors.push_back("chrootctl=PATH is required (the chrootctl binary; it is never searched in PATH)");
  if (!errors.empty()) return fail(Errc::invalid_argument, join(errors, "; "));
  return c;
}

/// What `chrootctl resolve --json NAME` printed, the fields the plugin uses.
struct ResolvedName {
  std::string entry;     ///< the entry's name (NAME may be an alias)
  std::string root;      ///< the verified root (unescaped bytes); a sealed image's file
  std::string digest;    ///< tree digest, for the job's log
  std::string build_id;  ///< for the accounting log ("" if not printed)
  std::string signer;    ///< "" when unsigned
  bool sealed = false;   ///< a sealed image: the step mounts it (`chrootctl mount --hold-for`)
  /// The job's system-call filter (`resolve --with-seccomp`): the policy's name, the digest of
  /// its source and the compiled program's file; "none", "", "" when jobs of this image run
  /// without one.
  std::string seccomp_policy = "none";
  std::string seccomp_digest;
  std::string seccomp_program;
  /// The site's accounting log, as the configuration the resolver read says (unset: none, or
  /// accounting disabled).
  std::optional<launcher::AccountingLog> accounting;
};

/// What `chrootctl mount --json --hold-for PID NAME` printed: the mount's root and its identity.
struct MountedImage {
  std::string root;
  std::uint64_t dev = 0;
  std::uint64_t ino = 0;
};

/// Reads the object printed by `chrootctl resolve --json --with-seccomp`: "entry", "root"
/// (escape_bytes form), "digest" and "seccomp_policy" must be there, with "seccomp_digest" and
/// "seccomp_program" unless the policy is "none"; "build_id", "signer" and the accounting log's
/// "accounting_log", "accounting_max_bytes" and "accounting_keep" are read when present.
inline Result<ResolvedName> parse_resolve_json(std::string_view text) {
  const FlatObject fields = TRY(parse_flat_json_object(text, "output of 'chrootctl resolve --json'"));
  auto get = [&](std::string_view k) -> std::optional<std::string> {
    const FlatValue* v = find_flat(fields, k);
    if (!v || v->kind == FlatValue::Kind::null) return std::nullopt;
    return v->text;
  };
  ResolvedName r;
  auto entry = get("entry");
  auto root = get("root");
  auto digest = get("digest");
  if (!entry || !root || !digest)
    return fail(Errc::parse, "unreadable output of 'chrootctl resolve --json': \"entry\", \"root\" or \"digest\" is missing");
  auto raw = unescape_bytes(*root);
  if (!raw || !is_absolute_clean(*raw))
    return fail(Errc::parse, str("'chrootctl resolve --json' printed a root that is not an absolute path: ", quote(*root)));
  r.entry = *entry;
  r.root = *raw;
  r.digest = *digest;
  r.build_id = get("build_id").value_or("");
  r.signer = get("signer").value_or("");
  if (auto log = get("accounting_log")) {
    const auto max_bytes = parse_u64(get("accounting_max_bytes").value_or(""));
    const auto keep = parse_u64(get("accounting_keep").value_or(""));
    if (!is_absolute_clean(*log) || !max_bytes || !keep || *keep > 1000)
      return fail(Errc::parse, str("'chrootctl resolve --json' printed an accounting log that cannot be used: ", quote(*log)));
    r.accounting = launcher::AccountingLog{*log, *max_bytes, static_cast<unsigned>(*keep)};
  }
  if (const FlatValue* v = find_flat(fields, "sealed")) r.sealed = v->kind == FlatValue::Kind::boolean && v->text == "true";
  // The filter: a policy other than "none" must come with its digest and program, and a
  // resolver that printed no policy at all is refused (the job would run unfiltered).
  auto policy = get("seccomp_policy");
  if (!policy)
    return fail(Errc::parse, "'chrootctl resolve --json --with-seccomp' printed no \"seccomp_policy\" (is chrootctl= an older chrootctl?)");
  r.seccomp_policy = *policy;
  if (r.seccomp_policy != "none") {
    auto seccomp_digest = get("seccomp_digest");
    auto program = get("seccomp_program");
    auto program_raw = program ? unescape_bytes(*program) : std::nullopt;
    if (!seccomp_digest || !is_sha256_hex(*seccomp_digest) || !program_raw || !is_absolute_clean(*program_raw))
      return fail(Errc::parse,
                  str("'chrootctl resolve --json --with-seccomp' printed a system-call filter that cannot be used (policy ", quote(*policy), ")"));
    r.seccomp_digest = *seccomp_digest;
    r.seccomp_program = *program_raw;
  }
  return r;
}

/// Reads the object printed by `chrootctl mount --json`: "root" (escape_bytes form), "dev" and
/// "ino" must be there.
inline Result<MountedImage> parse_mount_json(std::string_view text) {
  const FlatObject fields = TRY(parse_flat_json_object(text, "output of 'chrootctl mount --json'"));
  auto get = [&](std::string_view k) -> std::optional<std::string> {
    const FlatValue* v = find_flat(fields, k);
    if (!v || v->kind == FlatValue::Kind::null) return std::nullopt;
    return v->text;
  };
  auto root = get("root");
  auto dev = get("dev");
  auto ino = get("ino");
  if (!root || !dev || !ino) return fail(Errc::parse, "unreadable output of 'chrootctl mount --json': \"root\", \"dev\" or \"ino\" is missing");
  auto raw = unescape_bytes(*root);
  auto d = parse_u64(*dev);
  auto n = parse_u64(*ino);
  if (!raw || !is_absolute_clean(*raw) || !d || !n)
    return fail(Errc::parse, str("'chrootctl mount --json' printed an unreadable mount: ", quote(*root), " ", *dev, " ", *ino));
  return MountedImage{*raw, *d, *n};
}

/// The directory of one job step on a node, below jobdirs=: "JOBID.STEP", with Slurm's
/// special steps named (JOBID.batch, JOBID.interactive). Only digits, letters and one dot:
/// nothing a job can choose.
inline std::string step_dir_name(std::uint32_t job_id, std::uint32_t step_id) {
  switch (step_id) {
    case 0xfffffffbu:
      return str(job_id, ".batch");  // SLURM_BATCH_SCRIPT
    case 0xfffffffau:
      return str(job_id, ".interactive");  // SLURM_INTERACTIVE_STEP
    case 0xfffffffcu:
      return str(job_id, ".extern");  // SLURM_EXTERN_CONT
    default:
      return str(job_id, ".", step_id);
  }
}

/// True for a directory name that step_dir_name made for `job_id` (for the job epilog, which
/// removes what a killed slurmstepd left).
inline bool is_step_dir_of(std::string_view name, std::uint32_t job_id) {
  const std::string prefix = str(job_id, ".");
  if (name.size() <= prefix.size() || name.substr(0, prefix.size()) != prefix) return false;
  const std::string_view rest = name.substr(prefix.size());
  if (rest == "batch" || rest == "interactive" || rest == "extern") return true;
  return parse_u64(rest).has_value();
}

}  // namespace chrootctl::batch
