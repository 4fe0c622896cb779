// run_job: `chrootctl run` from options to an outcome, with the status file written last.
#include <cstdio>
#include <functional>
#include <string>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/launcher/launch.hpp"
#include "internal.hpp"

namespace chrootctl::launcher {

namespace {
void default_warn(const std::string& m) { (void)std::fprintf(stderr, "chrootctl: warning: %s\n", m.c_str()); }
}  // namespace

Outcome run_job(const RunOptions& opts) {
  const auto& warn = opts.warn ? opts.warn : std::function<void(const std::string&)>(default_warn);
  Outcome out;
  out.cgroup = "none";
  out.seccomp_policy = opts.seccomp.program.empty() ? "none" : opts.seccomp.policy;
  out.seccomp_digest = opts.seccomp.program.empty() ? std::string() : opts.seccomp.digest;
  const HostFacts facts = gather_host_facts();
  auto creds = resolve_job_user(opts.user, facts, facts.euid != 0);
  if (!creds) {
    out.error = creds.error().what();
  } else if (auto plan = plan_launch(opts, facts, *creds); !plan) {
    out.error = plan.error().what();
  } else {
    out = execute(*plan, warn);
  }
  if (opts.after_job) opts.after_job(out);
  if (opts.status_json) {
    if (auto r = detail::write_status_file(*opts.status_json, status_json(out)); !r) warn(str("cannot write the status file: ", r.error().what()));
  }
  return out;
}

}  // namespace chrootctl::launcher
