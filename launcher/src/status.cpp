// run_job (the `chrootctl run` entry point) and the --status-json record.
#include <signal.h>
#include <string.h>

#include <cstdio>

#include "chrootctl/common/files.hpp"
#include "chrootctl/common/json.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/launcher/launch.hpp"

namespace chrootctl::launcher {

namespace {
std::string_view kind_name(Outcome::Kind k) {
  switch (k) {
    case Outcome::Kind::exited: return "exited";
    case Outcome::Kind::signaled: return "signaled";
    case Outcome::Kind::setup_failed: return "setup_failed";
    case Outcome::Kind::not_executable: return "not_executable";
    case Outcome::Kind::not_found: return "not_found";
  }
  return "setup_failed";
}

void default_warn(const std::string& m) { std::fprintf(stderr, "chrootctl: warning: %s\n", m.c_str()); }
}  // namespace

std::string status_json(const Outcome& o) {
  JsonWriter w;
  w.begin_object();
  w.field("version", 1);
  w.field("outcome", kind_name(o.kind));
  w.field("exit_status", o.exit_status());
  w.key("exit_code");
  if (o.kind == Outcome::Kind::exited) w.value(o.code); else w.null();
  w.key("signal");
  if (o.kind == Outcome::Kind::signaled) w.value(o.code); else w.null();
  w.key("signal_name");
  if (o.kind == Outcome::Kind::signaled && sigabbrev_np(o.code)) w.value(str("SIG", sigabbrev_np(o.code))); else w.null();
  w.key("error");
  if (!o.error.empty()) w.value(o.error); else w.null();
  w.field("wall_seconds", o.wall_seconds);
  w.field("cpu_user_seconds", o.cpu_user_seconds);
  w.field("cpu_system_seconds", o.cpu_system_seconds);
  w.field("max_rss_bytes", o.max_rss_bytes);
  w.key("peak_memory_bytes");
  if (o.peak_memory_bytes) w.value(*o.peak_memory_bytes); else w.null();
  w.key("memory_limit_bytes");
  if (o.memory_limit_bytes) w.value(*o.memory_limit_bytes); else w.null();
  w.field("memory_limit_hit", o.memory_limit_hit);
  w.field("oom_kills", o.oom_kills);
  w.field("cgroup", o.cgroup);
  w.field("limits_applied", o.limits_applied);
  w.end_object();
  return w.str();
}

Outcome run_job(const RunOptions& opts) {
  const auto& warn = opts.warn ? opts.warn : std::function<void(const std::string&)>(default_warn);
  Outcome out;
  out.cgroup = "none";
  const HostFacts facts = gather_host_facts();
  const bool user_namespace = opts.unprivileged || facts.euid != 0;
  auto creds = resolve_job_user(opts.user, facts, user_namespace);
  if (!creds) {
    out.error = creds.error().what();
  } else if (auto plan = plan_launch(opts, facts, *creds); !plan) {
    out.error = plan.error().what();
  } else {
    out = execute(*plan, warn);
  }
  if (opts.status_json) {
    if (auto r = write_file_atomic(*opts.status_json, status_json(out)); !r)
      warn(str("cannot write the status file: ", r.error().what()));
  }
  return out;
}

}  // namespace chrootctl::launcher
