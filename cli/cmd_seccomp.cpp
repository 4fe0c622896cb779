// chrootctl seccomp compile|check|show: system-call policies (chrootctl-full only: libseccomp).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>

#include "chrootctl/common/json.hpp"
#include "chrootctl/common/settings.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/launcher/seccomp_program.hpp"
#include "chrootctl/seccomp/compile.hpp"
#include "chrootctl/seccomp/policy.hpp"
#include "chrootctl/seccomp/source.hpp"
#include "cli.hpp"

namespace chrootctl::cli {
namespace {

namespace sc = chrootctl::seccomp;

Option policy_option() {
  return {"policy",
          0,
          true,
          false,
          "NAME|FILE",
          "a built-in policy (default: jobs; build: build commands; build-host: a build's host tools), or a "
          "policy file (default: the one jobs run with, from the configuration)"};
}

// The policy --policy names (or the site's), with the site's additions; nullopt for none.
Result<std::optional<sc::PolicySource>> chosen_source(const Args& a, const Settings& settings) {
  const std::string choice = sc::choose_job_policy(a.value("policy"), {}, settings);
  if (sc::builtin_policy_text(choice).empty() && choice != "none" && (choice.empty() || choice[0] != '/'))
    return fail(Errc::invalid_argument,
                str("--policy ", quote(choice), ": expected default, build, build-host, none or the absolute path of a policy file"));
  return sc::load_source(choice, settings);
}

std::string rule_text(const sc::ArgRule& r, const sc::Policy& p) {
  auto hexes = [](const std::vector<std::uint64_t>& v) {
    std::vector<std::string> out;
    for (auto x : v) out.push_back("0x" + hex_number(x));
    return join(out, ", ");
  };
  const std::string refused = sc::errno_label(r.errno_value.value_or(p.errno_value));
  std::string s = str("argument ", r.arg, r.width == 32 ? " (low 32 bits)" : "", ": ");
  switch (r.kind) {
    case sc::ArgRule::Kind::allow_values:
      s += str("only ", hexes(r.values), " allowed; other values ", refused);
      break;
    case sc::ArgRule::Kind::deny_values:
      s += str(hexes(r.values), " denied (", refused, "); other values allowed");
      break;
    case sc::ArgRule::Kind::allow_if_clear:
      s += str("allowed only with none of the bits 0x", hex_number(r.mask), " set; otherwise ", refused);
      break;
  }
  return s;
}

// Names in lines of at most ~100 columns, indented.
std::string wrapped(const std::vector<std::string>& names) {
  std::string out, line = "   ";
  for (const auto& n : names) {
    if (line.size() + n.size() + 1 > 100) {
      out += line + "\n";
      line = "   ";
    }
    line += " " + n;
  }
  if (line.size() > 3) out += line + "\n";
  return out;
}

void show_text(const sc::Policy& p, const std::string& digest, const std::string& program, std::size_t instructions) {
  std::vector<std::string> allowed;
  std::map<int, std::vector<std::string>> denied;
  std::vector<std::string> rules;
  for (const auto& [name, d] : p.calls) {
    switch (d.kind) {
      case sc::Disposition::Kind::allow:
        allowed.push_back(name);
        break;
      case sc::Disposition::Kind::deny:
        denied[d.errno_value.value_or(p.errno_value)].push_back(name);
        break;
      case sc::Disposition::Kind::rule:
        rules.push_back(str("  ", name, ": ", rule_text(d.rule, p),
                            sc::is_i386_multiplexed(name) ? " (through i386's socketcall or ipc: not checked)" : "", "\n"));
        break;
    }
  }
  std::string s = str("policy:           ", p.name, p.description.empty() ? std::string() : str(" (", p.description, ")"), "\n");
  s += str("digest:           sha256:", digest, "\n");
  s += str("program:          ", program.empty() ? std::string("not compiled yet") : str(program, " (", instructions, " instructions)"), "\n");
  s += str("denied calls:     ", sc::errno_label(p.errno_value), "\n");
  s += str("other calls:      ", sc::errno_label(p.unknown_errno), " (every call the policy does not name)\n");
  s += str("ABIs:             x86-64 and i386 filtered alike; x32 and other architectures denied (", sc::errno_label(p.errno_value), ")\n");
  s += str("user namespaces:  ", p.allow_user_namespaces ? "allowed (with the mount family and setns)" : "not allowed", "\n");
  s += str("\nallowed (", allowed.size(), "):\n", wrapped(allowed));
  for (const auto& [e, names] : denied) s += str("\ndenied with ", sc::errno_label(e), " (", names.size(), "):\n", wrapped(names));
  s += str("\nargument checks (", rules.size(), "):\n");
  for (const auto& r : rules) s += r;
  out(s);
}

void show_json(const sc::Policy& p, const std::string& digest, const std::string& program, std::size_t instructions) {
  JsonWriter w;
  w.begin_object();
  w.field("policy", p.name);
  w.field("description", p.description);
  w.field("digest", digest);
  w.key("program");
  if (program.empty()) w.null();
  else w.value(program);
  w.key("instructions");
  if (program.empty()) w.null();
  else w.value(static_cast<std::uint64_t>(instructions));
  w.field("errno", sc::errno_label(p.errno_value));
  w.field("unknown_errno", sc::errno_label(p.unknown_errno));
  w.field("allow_user_namespaces", p.allow_user_namespaces);
  w.key("calls").begin_object();
  for (const auto& [name, d] : p.calls) {
    w.key(name).begin_object();
    switch (d.kind) {
      case sc::Disposition::Kind::allow:
        w.field("action", "allow");
        break;
      case sc::Disposition::Kind::deny:
        w.field("action", "deny");
        w.field("errno", sc::errno_label(d.errno_value.value_or(p.errno_value)));
        break;
      case sc::Disposition::Kind::rule: {
        const auto& r = d.rule;
        w.field("action", "rule");
        w.field("arg", static_cast<std::uint64_t>(r.arg));
        w.field("width", static_cast<std::uint64_t>(r.width));
        const char* kind = r.kind == sc::ArgRule::Kind::allow_values  ? "allow_values"
                           : r.kind == sc::ArgRule::Kind::deny_values ? "deny_values"
                                                                      : "allow_if_clear";
        w.field("kind", kind);
        if (r.kind == sc::ArgRule::Kind::allow_if_clear) {
          w.field("mask", r.mask);
        } else {
          w.key("values").begin_array();
          for (auto v : r.values) w.value(v);
          w.end_array();
        }
        w.field("errno", sc::errno_label(r.errno_value.value_or(p.errno_value)));
        break;
      }
    }
    w.field("origin", d.origin);
    w.end_object();
  }
  w.end_object();
  w.end_object();
  out(w.str());
}

int compile_main(std::span<char* const> argv) {
  const Spec spec{"seccomp compile",
                  "[--policy NAME|FILE] [--cache-dir DIR] [--expect-digest HEX] [--quiet] [--json]",
                  "Compile a system-call policy into the cache that job launches load.",
                  "The program is written to DIR/DIGEST.bpf (default DIR: STATE_DIR/seccomp, such as\n"
                  "/run/chrootctl/seccomp for root) atomically, mode 0644; DIGEST is the SHA-256 of the\n"
                  "policy's source. A policy already compiled is left as it is. 'chrootctl run' runs this\n"
                  "itself when a job's policy is not compiled yet; running it beforehand (at boot, or after\n"
                  "changing a policy) spares the first job the compilation.\n\n"
                  "Exit status: 0 compiled or already compiled, 1 the policy has errors (each at\n"
                  "FILE:LINE:COL), 2 error.",
                  {policy_option(),
                   {"cache-dir", 0, true, false, "DIR", "where to write the program (default: STATE_DIR/seccomp)"},
                   {"expect-digest", 0, true, false, "HEX", "fail unless the policy's digest is HEX (used by 'run')"},
                   quiet_option(),
                   json_option()},
                  0,
                  0};
  Args a;
  if (auto rc = parse(spec, argv, a)) return *rc;
  auto settings = load_settings();
  if (!settings) return report(settings.error());
  auto source = chosen_source(a, *settings);
  if (!source) return report(source.error());
  if (!*source) return report("the policy is 'none': there is nothing to compile");
  const std::string digest = sc::policy_digest(**source);
  if (auto expected = a.value("expect-digest"); expected && *expected != digest)
    return report(str("the policy ", quote((*source)->policy), " changed while the launch was prepared (its digest is now ", digest, ", not ",
                      *expected, "); start it again"));
  const std::string dir = a.value("cache-dir").value_or(sc::cache_dir());
  if (dir.empty()) return report("there is no state directory ($XDG_RUNTIME_DIR is not set): give --cache-dir DIR");
  auto cached = sc::compile_to_cache(**source, dir);
  if (!cached) {
    report(cached.error());
    return cached.error().code() == Errc::parse ? k_failed_check : k_error;
  }
  if (a.flag("json")) {
    JsonWriter w;
    w.begin_object();
    w.field("policy", (*source)->policy);
    w.field("digest", cached->digest);
    w.field("program", cached->path);
    w.field("instructions", static_cast<std::uint64_t>(cached->instructions));
    w.field("compiled", cached->compiled);
    w.end_object();
    out(w.str());
  } else if (!a.flag("quiet")) {
    out(str("sha256:", cached->digest, " ", cached->path, " (", cached->instructions, " instructions, ",
            cached->compiled ? "compiled" : "already compiled", ")\n"));
  }
  return k_ok;
}

int check_main(std::span<char* const> argv) {
  const Spec spec{"seccomp check",
                  "[--policy NAME|FILE | FILE] [--json]",
                  "Check a system-call policy (and the site's additions to it) without installing it.",
                  "Parses the policy and compiles it in memory: every mistake is reported at FILE:LINE:COL\n"
                  "with the line and a caret, and a misspelt system call, group, errno or key gets a\n"
                  "suggestion.\n\n"
                  "Exit status: 0 the policy is valid, 1 it has errors, 2 error.",
                  {policy_option(), json_option()},
                  0,
                  1};
  Args a;
  if (auto rc = parse(spec, argv, a)) return *rc;
  if (!a.positional.empty() && a.value("policy")) return usage_error(spec, "give the policy either as FILE or as --policy, not both");
  auto settings = load_settings();
  if (!settings) return report(settings.error());
  std::string choice = a.positional.empty() ? sc::choose_job_policy(a.value("policy"), {}, *settings) : a.positional[0];
  if (!a.positional.empty() && !choice.empty() && choice[0] != '/') {
    char cwd[4096];
    if (!::getcwd(cwd, sizeof cwd)) return report(Error(Errc::io, "getcwd() failed"));
    choice = str(cwd, std::string_view(cwd) == "/" ? "" : "/", choice);
  }
  auto source = sc::load_source(choice, *settings);
  if (!source) return report(source.error());
  if (!*source) {
    out(a.flag("json") ? "{\"policy\": \"none\", \"valid\": true}\n" : "none: no filter\n");
    return k_ok;
  }
  auto policy = sc::parse_policy(**source);
  if (!policy) {
    report(policy.error());
    return policy.error().code() == Errc::parse ? k_failed_check : k_error;
  }
  auto program = sc::compile_policy(*policy);
  if (!program) {
    report(program.error());
    return k_failed_check;
  }
  std::size_t allowed = 0, denied = 0, checked = 0;
  for (const auto& [n, d] : policy->calls) {
    allowed += d.kind == sc::Disposition::Kind::allow;
    denied += d.kind == sc::Disposition::Kind::deny;
    checked += d.kind == sc::Disposition::Kind::rule;
  }
  if (a.flag("json")) {
    JsonWriter w;
    w.begin_object();
    w.field("policy", (*source)->policy);
    w.field("valid", true);
    w.field("digest", sc::policy_digest(**source));
    w.field("allowed", static_cast<std::uint64_t>(allowed));
    w.field("denied", static_cast<std::uint64_t>(denied));
    w.field("argument_checks", static_cast<std::uint64_t>(checked));
    w.field("instructions", static_cast<std::uint64_t>(program->size()));
    w.end_object();
    out(w.str());
    return k_ok;
  }
  out(str((*source)->policy, ": valid; ", allowed, " calls allowed, ", denied, " denied, ", checked, " with argument checks; ", program->size(),
          " instructions; sha256:", sc::policy_digest(**source), "\n"));
  return k_ok;
}

int show_main(std::span<char* const> argv) {
  const Spec spec{"seccomp show",
                  "[--policy NAME|FILE] [--json]",
                  "Show a system-call policy as jobs get it: every call allowed or denied, and each argument check.",
                  "Without --policy, the policy jobs run with by default (the site's, with its additions).\n\n"
                  "Exit status: 0, 1 the policy has errors, 2 error.",
                  {policy_option(), json_option()},
                  0,
                  0};
  Args a;
  if (auto rc = parse(spec, argv, a)) return *rc;
  auto settings = load_settings();
  if (!settings) return report(settings.error());
  auto source = chosen_source(a, *settings);
  if (!source) return report(source.error());
  if (!*source) {
    if (a.flag("json")) out("{\"policy\": \"none\"}\n");
    else out("policy:           none (jobs run without a system-call filter)\n");
    return k_ok;
  }
  auto policy = sc::parse_policy(**source);
  if (!policy) {
    report(policy.error());
    return policy.error().code() == Errc::parse ? k_failed_check : k_error;
  }
  const std::string digest = sc::policy_digest(**source);
  std::string program;
  std::size_t instructions = 0;
  if (auto found = sc::find_cached_program(sc::cache_dir(), digest)) {
    if (auto p = launcher::read_seccomp_program(*found, (*source)->policy, digest)) {
      program = *found;
      instructions = p->instructions.size();
    }
  }
  if (a.flag("json")) show_json(*policy, digest, program, instructions);
  else show_text(*policy, digest, program, instructions);
  return k_ok;
}

int seccomp_main(std::span<char* const> argv) {
  return dispatch(argv, "seccomp",
                  "Usage: chrootctl seccomp compile|check|show [OPTIONS]\n\n"
                  "System-call policies for jobs and build commands (docs/seccomp.md):\n"
                  "  compile   compile a policy into the cache that job launches load\n"
                  "  check     check a policy file (or the site's) and report every mistake\n"
                  "  show      show a policy as jobs get it\n\n"
                  "Run 'chrootctl seccomp SUBCOMMAND --help' for its options.\n",
                  {{"compile", compile_main}, {"check", check_main}, {"show", show_main}});
}

}  // namespace

CHROOTCTL_VERB("seccomp", "compile, check and show system-call policies", seccomp_main);

}  // namespace chrootctl::cli
