// System-call policies (seccomp/): the input parsed as a policy file and, on top of the default
// policy, as the [seccomp] table of a site configuration. What parses is compiled, and the
// program must do what the policy says for each call it names on x86-64, run by
// seccomp::run_program as the kernel would run it.
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <seccomp.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "chrootctl/seccomp/compile.hpp"
#include "chrootctl/seccomp/policy.hpp"
#include "chrootctl/seccomp/source.hpp"
#include "fuzz.hpp"

namespace {

using namespace chrootctl;
using namespace chrootctl::seccomp;
using fuzz::require;

std::uint32_t errno_ret(int e) { return SECCOMP_RET_ERRNO | (static_cast<std::uint32_t>(e) & SECCOMP_RET_DATA); }

std::uint32_t run(const std::vector<sock_filter>& program, int nr, unsigned arg, std::uint64_t value) {
  struct seccomp_data d {};
  d.nr = nr;
  d.arch = AUDIT_ARCH_X86_64;
  d.args[arg] = value;
  return run_program(program, d);
}

// Argument values and what the rule says each gets: allowed (true) or refused.
std::vector<std::pair<std::uint64_t, bool>> probes(const ArgRule& r) {
  const std::uint64_t high = r.width == 32 ? 0xdead'beef'0000'0000 : 0;  // ignored by a 32-bit rule
  std::vector<std::pair<std::uint64_t, bool>> out;
  switch (r.kind) {
    case ArgRule::Kind::allow_if_clear:
      out.emplace_back(0, true);
      out.emplace_back(high, true);
      for (unsigned b = 0; b < r.width; ++b)
        if ((r.mask >> b) & 1) out.emplace_back(high | (std::uint64_t{1} << b), false);
      break;
    case ArgRule::Kind::allow_values:
    case ArgRule::Kind::deny_values: {
      const bool listed = r.kind == ArgRule::Kind::allow_values;
      for (auto v : r.values) out.emplace_back(v | high, listed);
      const std::set<std::uint64_t> values(r.values.begin(), r.values.end());
      std::uint64_t other = 0;
      while (values.count(other)) ++other;
      out.emplace_back(other | high, !listed);
      break;
    }
  }
  return out;
}

void check_program(const Policy& p, const std::vector<sock_filter>& program) {
  // Names libseccomp gives one x86-64 number; a number with two names is left out.
  std::map<int, const std::string*> by_nr;
  std::map<int, int> names_of;
  for (const auto& [name, d] : p.calls) {
    const int nr = seccomp_syscall_resolve_name_arch(SCMP_ARCH_X86_64, name.c_str());
    if (nr < 0) continue;
    by_nr[nr] = &name;
    ++names_of[nr];
  }
  for (const auto& [nr, name] : by_nr) {
    if (names_of[nr] != 1) continue;
    const Disposition& d = p.calls.at(*name);
    switch (d.kind) {
      case Disposition::Kind::allow:
        require(run(program, nr, 0, 0) == SECCOMP_RET_ALLOW, "an allowed call is allowed");
        break;
      case Disposition::Kind::deny:
        require(run(program, nr, 0, 0) == errno_ret(d.errno_value.value_or(p.errno_value)), "a denied call gets its errno");
        break;
      case Disposition::Kind::rule:
        for (const auto& [value, allowed] : probes(d.rule))
          require(run(program, nr, d.rule.arg, value) == (allowed ? SECCOMP_RET_ALLOW : errno_ret(d.rule.errno_value.value_or(p.errno_value))),
                  "an argument rule allows and refuses what it says");
        break;
    }
  }
  require(run(program, 1000, 0, 0) == errno_ret(p.unknown_errno), "a call the policy does not name gets unknown_errno");
}

void check(const PolicySource& source) {
  auto p = parse_policy(source);
  if (!p) return;
  auto program = compile_policy(*p);
  if (!program) return;  // too many instructions for the kernel, say
  check_program(*p, *program);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(fuzz::text_of(data, size));
  check(PolicySource{"fuzz.toml", {{"fuzz.toml", text, "", false}}});
  // A site's additions ([seccomp] in config.toml): only an input that has the table, since
  // without one this is the default policy, compiled again.
  if (text.find("seccomp") != std::string::npos)
    check(PolicySource{"default",
                       {{builtin_display_name("default"), std::string(builtin_policy_text("default")), "", false}, {"config.toml", text, "", true}}});
  return 0;
}
