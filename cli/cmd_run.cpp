// chrootctl run NAME|--root DIR --sandbox DIR [options] -- CMD ARGS...
#include <cmath>
#include <cstdio>
#include <optional>

#include "chrootctl/catalogue/resolve.hpp"
#include "chrootctl/common/settings.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/launcher/launch.hpp"
#include "cli.hpp"
#include "seccomp_choice.hpp"

namespace chrootctl::cli {
namespace {

namespace ln = chrootctl::launcher;

// Exit statuses of `run` (the job's own statuses pass through unchanged).
constexpr int k_setup_failed = 125;

/// Turns an image NAME into its verified root through the catalogue: refused unless the image
/// passed a full verification recently, nothing has failed since, the root is still the
/// directory recorded and (with `fast`, the default) its metadata matches its stat record.
Result<catalogue::ResolvedRoot> resolve_root(const Settings& settings, const std::string& name, bool fast) {
  catalogue::ResolveOptions ro;
  ro.fast = fast;
  return catalogue::resolve(settings, name, ro);
}

Result<std::uint32_t> parse_cpus(const std::string& text) {
  // "2", "0.5", "1.25": hundredths of a CPU.
  std::size_t dot = text.find('.');
  const std::string whole = text.substr(0, dot);
  const std::string frac = dot == std::string::npos ? "" : text.substr(dot + 1);
  auto w = whole.empty() ? std::optional<std::uint64_t>(0) : parse_u64(whole);
  if (!w || (whole.empty() && frac.empty()) || frac.size() > 2 || (!frac.empty() && !parse_u64(frac)) || *w > 100000)
    return fail(Errc::invalid_argument, str("--cpus: ", quote(text), " is not a number of CPUs (like 2 or 0.5)"));
  std::uint64_t centi = *w * 100;
  if (!frac.empty()) centi += *parse_u64(frac) * (frac.size() == 1 ? 10 : 1);
  return static_cast<std::uint32_t>(centi);
}

Result<std::uint64_t> parse_size_option(const std::string& name, const std::string& text) {
  auto v = parse_size(text);
  if (!v) return fail(Errc::invalid_argument, str("--", name, ": ", quote(text), " is not a size (like 512M or 2G)"));
  return *v;
}

int run_main(std::span<char* const> argv) {
  const Spec spec{
      "run",
      "NAME|--root DIR --sandbox DIR [OPTIONS] -- CMD [ARGS...]",
      "Run CMD inside a job root: isolated, limited, leaving nothing behind.",
      "The root is mounted read-only, nosuid and nodev (submounts included) in private mount,\n"
      "PID, IPC and UTS namespaces; the sandbox appears at its own path (the job's working\n"
      "directory) and backs the MOUNT_UNDER_SCRATCH directories; /proc is fresh and /dev\n"
      "minimal. The job runs with no capabilities and no_new_privs, in its own cgroup, under a\n"
      "system-call filter: the image's policy (add --seccomp), else the site's ([seccomp] in the\n"
      "configuration), else the built-in default (docs/seccomp.md).\n\n"
      "Exit status: the job's own status, or 128+N when it was killed by signal N;\n"
      "125 chrootctl failed before the job started (the reason is on stderr), 126 the command\n"
      "could not be executed, 127 the command was not found in the root.",
      {{"root", 0, true, false, "DIR", "the job root (a directory), instead of an image NAME"},
       store_option(),
       {"skip-metadata-check", 0, false, false, "",
        "do not compare the image's metadata with its stat record before the launch (images on read-only filesystems)"},
       {"sandbox", 0, true, false, "DIR", "the job's sandbox; appears at the same path inside"},
       {"user", 0, true, false, "USER", "run as USER (name or uid, resolved on the host); root needs --user root"},
       {"scratch-path", 0, true, false, "PATH", "also bind the sandbox at PATH inside the root"},
       {"mount-under-scratch", 0, true, false, "DIRS", "comma-separated dirs backed by SANDBOX/DIR (default /tmp,/var/tmp)"},
       {"bind", 0, true, true, "SRC:DST[:ro]", "bind a host path (nosuid, nodev; read-only with :ro)"},
       {"memory", 0, true, false, "SIZE", "memory hard limit (like 2G)"},
       {"memory-low", 0, true, false, "SIZE", "memory protection (v2 memory.low; v1 soft limit)"},
       {"swap", 0, true, false, "SIZE", "swap allowed on top of --memory (default 0)"},
       {"cpus", 0, true, false, "N", "CPU weight: 100 per CPU (v2 cpu.weight, v1 cpu.shares)"},
       {"pids", 0, true, false, "N", "maximum number of processes and threads"},
       {"net", 0, true, false, "host|none", "share the host's network (default) or only a loopback"},
       {"env", 0, true, true, "K=V", "set an environment variable"},
       {"keep-env", 0, true, true, "K", "pass the caller's variable K through"},
       {"status-json", 0, true, false, "FILE", "write the outcome and accounting to FILE (atomically)"},
       {"seccomp", 0, true, false, "FILE|default|none",
        "the system-call policy: a policy file, the built-in default, or none (root only)"},
       {"unprivileged", 0, false, false, "", "use a user namespace even when run as root"},
       {"require-limits", 0, false, false, "", "fail (125) rather than run without the cgroup limits"}},
      0,
      1,
      true};
  Args a;
  if (auto rc = parse(spec, argv, a)) return *rc == k_ok ? k_ok : k_setup_failed;
  auto usage = [&](const std::string& m) {
    usage_error(spec, m);
    return k_setup_failed;
  };

  ln::RunOptions o;
  std::string image_policy;  // the catalogue entry's system-call policy
  if (a.value("root") && !a.positional.empty()) return usage("give either an image NAME or --root DIR, not both");
  if (a.value("root") && (a.value("store") || a.flag("skip-metadata-check")))
    return usage("--store and --skip-metadata-check apply to an image NAME, not to --root");
  auto settings = load_settings(a.value("store"));
  if (!settings) {
    report(settings.error());
    return k_setup_failed;
  }
  if (auto given = a.value("root")) {
    o.root = *given;
  } else if (!a.positional.empty()) {
    // By default every file's type, mode, owner, size, inode and ctime are compared with the
    // stat record (resolve --fast): an image whose files some host user can change (its uid
    // owns them on the host too) is refused as soon as they change, not at the next full verify.
    auto resolved = resolve_root(*settings, a.positional[0], !a.flag("skip-metadata-check"));
    if (!resolved) {
      report(resolved.error());
      return k_setup_failed;
    }
    o.root = resolved->root;
    o.root_id = ln::RootId{resolved->version.identity.dev, resolved->version.identity.ino};
    image_policy = resolved->seccomp;
  } else {
    return usage("no root: give an image NAME or --root DIR");
  }
  if (!a.value("sandbox")) return usage("--sandbox DIR is required");
  o.sandbox = *a.value("sandbox");
  o.user = a.value("user");
  o.scratch_path = a.value("scratch-path");
  if (auto m = a.value("mount-under-scratch")) {
    o.mount_under_scratch.clear();
    for (const auto& d : split(*m, ','))
      if (!trim(d).empty()) o.mount_under_scratch.emplace_back(trim(d));
  }
  for (const auto& b : a.values("bind")) {
    const auto parts = split(b, ':');
    if (parts.size() < 2 || parts.size() > 3 || (parts.size() == 3 && parts[2] != "ro" && parts[2] != "rw"))
      return usage(str("--bind ", quote(b), ": expected SRC:DST or SRC:DST:ro"));
    o.binds.push_back({parts[0], parts[1], parts.size() == 3 && parts[2] == "ro"});
  }
  for (const char* name : {"memory", "memory-low", "swap"}) {
    if (auto v = a.value(name)) {
      auto s = parse_size_option(name, *v);
      if (!s) return usage(s.error().message());
      (std::string_view(name) == "memory" ? o.memory : std::string_view(name) == "swap" ? o.swap : o.memory_low) = *s;
    }
  }
  if (auto v = a.value("cpus")) {
    auto c = parse_cpus(*v);
    if (!c) return usage(c.error().message());
    o.cpus_centi = *c;
  }
  if (auto v = a.value("pids")) {
    auto n = parse_u64(*v);
    if (!n) return usage(str("--pids: ", quote(*v), " is not a number"));
    o.pids = *n;
  }
  if (auto v = a.value("net")) {
    if (*v == "host") o.net = ln::NetMode::host;
    else if (*v == "none") o.net = ln::NetMode::none;
    else return usage(str("--net: ", quote(*v), " (host or none)"));
  }
  for (const auto& e : a.values("env")) {
    const auto eq = e.find('=');
    if (eq == std::string::npos || eq == 0) return usage(str("--env ", quote(e), ": expected K=V"));
    o.env.emplace_back(e.substr(0, eq), e.substr(eq + 1));
  }
  o.keep_env = a.values("keep-env");
  o.status_json = a.value("status-json");
  o.unprivileged = a.flag("unprivileged");
  o.require_limits = a.flag("require-limits");
  o.argv = a.rest;
  if (o.argv.empty()) return usage("no command: put it after '--'");
  if (auto s = a.value("seccomp"); s && s->empty()) return usage("--seccomp: expected FILE, default or none");

  // The system-call filter: chosen, and compiled if it is not cached yet, before the launch.
  auto seccomp = prepare_job_seccomp(*settings, a.value("seccomp"), image_policy);
  if (!seccomp) {
    std::fprintf(stderr, "chrootctl run: %s\n", seccomp.error().what().c_str());
    return k_setup_failed;
  }
  o.seccomp = seccomp->plan;

  const ln::Outcome outcome = ln::run_job(o);
  if (!outcome.error.empty()) std::fprintf(stderr, "chrootctl run: %s\n", outcome.error.c_str());
  return outcome.exit_status();
}

}  // namespace

CHROOTCTL_VERB("run", "run a job inside a job root, isolated and limited", run_main);

}  // namespace chrootctl::cli
