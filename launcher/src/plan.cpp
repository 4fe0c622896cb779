// The planner: options in, a plain LaunchPlan out. Pure: no system call, so every rule here is
// unit-tested (tests/unit/launcher_plan_test.cpp).
#include <algorithm>
#include <set>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/launcher/enter.hpp"
#include "chrootctl/launcher/launch.hpp"

namespace chrootctl::launcher {

namespace {

constexpr const char* k_default_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

std::size_t depth(const std::string& p) { return p == "/" ? 0 : static_cast<std::size_t>(std::count(p.begin(), p.end(), '/')); }

bool is_under(const std::string& path, const std::string& dir) {
  return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 && path[dir.size()] == '/');
}

// Host paths: made absolute against the caller's cwd, kept as given otherwise (the kernel
// resolves them, on the host, when the launcher opens them).
std::string absolute(const std::string& p, const std::string& cwd) {
  if (!p.empty() && p[0] == '/') return p;
  return (cwd == "/" ? std::string() : cwd) + "/" + p;
}

bool valid_env_key(const std::string& k) {
  if (k.empty()) return false;
  return std::all_of(k.begin(), k.end(), [](char c) { return c != '=' && c != '\0'; });
}

// Mount targets of one plan: /proc and /dev are chrootctl's, "/" is the image, and no target is
// mounted twice. Failures are collected in `errors`.
struct Targets {
  std::vector<std::string>& errors;
  std::set<std::string> seen{"/proc", "/dev"};

  bool add(const std::string& t, const std::string& what) {
    if (t == "/") {
      errors.push_back(str(what, " must not be '/'"));
      return false;
    }
    if (is_under(t, "/proc") || is_under(t, "/dev")) {
      errors.push_back(str(what, " ", t, " is inside /proc or /dev, which chrootctl provides"));
      return false;
    }
    return add_unchecked(t, what);
  }
  // For the few targets inside /dev that chrootctl itself places (/dev/shm of enter_root).
  bool add_unchecked(const std::string& t, const std::string& what) {
    if (!seen.insert(t).second) {
      errors.push_back(str(what, " ", t, " is mounted twice"));
      return false;
    }
    return true;
  }
};

template <class R>
R check_into(std::vector<std::string>& errors, R&& r) {
  if (!r) errors.push_back(r.error().what());
  return std::forward<R>(r);
}

// The MOUNT_UNDER_SCRATCH directories: each DIR backed by SANDBOX/DIR (made by the launcher).
void plan_scratch_dirs(LaunchPlan& p, Targets& targets, const std::string& sandbox, const std::vector<std::string>& dirs, const std::string& what) {
  for (const auto& d : dirs) {
    auto t = check_into(targets.errors, normalize_inner_path(d, what));
    if (!t || !targets.add(*t, what)) continue;
    p.sources.push_back({sandbox, false, t->substr(1)});
    p.mounts.push_back({MountOp::Kind::bind, *t, p.sources.size() - 1, false, false});
  }
}

// Host paths bound into the root: recursive, nosuid, nodev, read-only on request.
void plan_binds(LaunchPlan& p, Targets& targets, const std::vector<BindSpec>& binds, const std::string& cwd) {
  for (const auto& b : binds) {
    if (b.source.empty()) {
      targets.errors.push_back("--bind: empty source");
      continue;
    }
    auto t = check_into(targets.errors, normalize_inner_path(b.target, "--bind target"));
    if (!t || !targets.add(*t, "--bind target")) continue;
    p.sources.push_back({absolute(b.source, cwd), false, {}, b.identity});
    p.mounts.push_back({MountOp::Kind::bind, *t, p.sources.size() - 1, b.read_only, true});
  }
}

// Parents before children: a mount below another target lands inside it, not under it.
void parents_first(std::vector<MountOp>& mounts) {
  std::stable_sort(mounts.begin(), mounts.end(), [](const MountOp& a, const MountOp& b) { return depth(a.target) < depth(b.target); });
}

}  // namespace

Result<std::string> normalize_inner_path(const std::string& path, const std::string& what) {
  if (path.find('\0') != std::string::npos) return fail(Errc::invalid_argument, str(what, " contains a NUL byte"));
  if (path.empty() || path[0] != '/') return fail(Errc::invalid_argument, str(what, " ", quote(path), " must be an absolute path"));
  std::string out;
  for (const auto& c : split(path, '/')) {
    if (c.empty() || c == ".") continue;
    if (c == "..") return fail(Errc::invalid_argument, str(what, " ", quote(path), " must not contain '..'"));
    out += "/" + c;
  }
  return out.empty() ? std::string("/") : out;
}

Result<LaunchPlan> plan_launch(const RunOptions& opts, const HostFacts& facts, const Credentials& creds) {
  std::vector<std::string> errors;
  auto check = [&](auto&& r) {
    if (!r) errors.push_back(r.error().what());
    return std::forward<decltype(r)>(r);
  };

  LaunchPlan p;
  p.mode = LaunchMode::job;
  p.user_namespace = true;
  p.unprivileged = facts.euid != 0;
  p.job_ids = opts.job_ids;
  p.caller_uid = facts.uid;
  p.caller_gid = facts.gid;
  p.new_net = opts.net == NetMode::none;
  p.root_read_only = true;
  p.drop_privileges = true;
  p.creds = creds;
  p.use_cgroup = true;
  p.require_limits = opts.require_limits;
  p.pty = facts.on_terminal && !opts.no_pty;

  if (opts.root.empty()) errors.push_back("no root given (--root DIR or an image name)");
  else p.root = absolute(opts.root, facts.cwd);
  p.root_id = opts.root_id;
  if (opts.argv.empty() || opts.argv.front().empty()) errors.push_back("no command given (put it after '--')");
  p.argv = opts.argv;

  // The sandbox: bound at its own path (so $_CONDOR_SCRATCH_DIR and friends stay valid), the
  // job's working directory, and the home of the MOUNT_UNDER_SCRATCH directories.
  std::string sandbox;
  if (opts.sandbox.empty()) {
    errors.push_back("no sandbox given (--sandbox DIR)");
  } else if (auto s = check(normalize_inner_path(absolute(opts.sandbox, facts.cwd), "--sandbox"))) {
    if (*s == "/") errors.push_back("--sandbox must not be '/'");
    else sandbox = *s;
  }
  p.sources.push_back({sandbox, true, {}});
  p.cwd = sandbox.empty() ? "/" : sandbox;

  p.mounts.push_back({MountOp::Kind::proc, "/proc", 0, false, false});
  p.mounts.push_back({MountOp::Kind::dev, "/dev", 0, false, false});
  Targets targets{errors};
  plan_scratch_dirs(p, targets, sandbox, opts.mount_under_scratch, "--mount-under-scratch directory");
  if (!sandbox.empty() && targets.add(sandbox, "--sandbox")) p.mounts.push_back({MountOp::Kind::bind, sandbox, 0, false, false});
  if (opts.scratch_path) {
    auto t = check(normalize_inner_path(*opts.scratch_path, "--scratch-path"));
    if (t && targets.add(*t, "--scratch-path")) p.mounts.push_back({MountOp::Kind::bind, *t, 0, false, false});
  }
  plan_binds(p, targets, opts.binds, facts.cwd);
  parents_first(p.mounts);

  // A clean environment: the basics, then --keep-env from the caller, then --env.
  std::vector<std::pair<std::string, std::string>> env{{"PATH", k_default_path}, {"HOME", creds.home.empty() ? "/" : creds.home},
                                                       {"USER", creds.name},     {"LOGNAME", creds.name},
                                                       {"TMPDIR", "/tmp"},       {"TMP", "/tmp"},
                                                       {"TEMP", "/tmp"}};
  auto set_env = [&](const std::string& k, const std::string& v) {
    for (auto& kv : env)
      if (kv.first == k) {
        kv.second = v;
        return;
      }
    env.emplace_back(k, v);
  };
  for (const auto& k : opts.keep_env) {
    if (!valid_env_key(k)) {
      errors.push_back(str("--keep-env: invalid variable name ", quote(k)));
      continue;
    }
    for (const auto& e : facts.environ)
      if (e.size() > k.size() && e.compare(0, k.size(), k) == 0 && e[k.size()] == '=') set_env(k, e.substr(k.size() + 1));
  }
  for (const auto& [k, v] : opts.env) {
    if (!valid_env_key(k)) {
      errors.push_back(str("--env: invalid variable name ", quote(k)));
      continue;
    }
    if (v.find('\0') != std::string::npos) {
      errors.push_back(str("--env ", k, ": the value contains a NUL byte"));
      continue;
    }
    set_env(k, v);
  }
  for (const auto& [k, v] : env) p.env.push_back(k + "=" + v);

  // Limits. Swap defaults to none when memory is limited (a job must not page its way past it).
  Limits& l = p.limits;
  l.memory_max = opts.memory;
  l.memory_low = opts.memory_low;
  if (opts.memory && *opts.memory == 0) errors.push_back("--memory must be more than 0");
  if (opts.memory && opts.memory_low && *opts.memory_low > *opts.memory) errors.push_back("--memory-low must not exceed --memory");
  if (opts.swap && !opts.memory) errors.push_back("--swap needs --memory (swap is limited on top of memory)");
  l.swap_max = opts.swap ? opts.swap : (opts.memory ? std::optional<std::uint64_t>(0) : std::nullopt);
  if (opts.cpus_centi) {
    if (*opts.cpus_centi == 0) {
      errors.push_back("--cpus must be more than 0");
    } else {
      // 100 per CPU, as HTCondor does: v2 cpu.weight (1..10000), v1 cpu.shares (2..).
      l.cpu_weight = std::clamp<std::uint64_t>(*opts.cpus_centi, 1, 10000);
      l.cpu_shares = std::max<std::uint64_t>(*opts.cpus_centi, 2);
    }
  }
  if (opts.pids && *opts.pids == 0) errors.push_back("--pids must be more than 0");
  // /dev/shm counts against the job's memory limit, but without one two jobs could fill the
  // host's memory through it: bounded either way.
  if (opts.shm && *opts.shm == 0) errors.push_back("--shm must be more than 0");
  p.shm_bytes = opts.shm.value_or(opts.memory ? std::min(*opts.memory, opts.shm_default) : opts.shm_default);
  l.pids_max = opts.pids;
  l.memory_accounting = opts.status_json.has_value();

  // The system-call filter, as the caller chose and compiled it.
  p.seccomp = opts.seccomp;
  if (!p.seccomp.program.empty()) {
    if (!is_sha256_hex(p.seccomp.digest)) errors.push_back(str("system-call policy digest ", quote(p.seccomp.digest), " is not 64 hex digits"));
    if (p.seccomp.policy.empty() || p.seccomp.policy == "none") errors.push_back("a system-call filter without a policy name");
    if (p.seccomp.program[0] != '/') errors.push_back(str("system-call filter ", quote(p.seccomp.program), " is not an absolute path"));
  } else if (p.seccomp.policy != "none" || !p.seccomp.digest.empty()) {
    errors.push_back(str("system-call policy ", quote(p.seccomp.policy), " has no compiled program"));
  }

  if (!errors.empty()) return fail(Errc::invalid_argument, join(errors, "; "));
  return p;
}

Result<LaunchPlan> plan_enter(const EnterOptions& opts) {
  std::vector<std::string> errors;
  LaunchPlan p;
  p.mode = LaunchMode::job;
  p.user_namespace = false;
  p.root_read_only = true;
  p.drop_privileges = false;  // the caller drops them (slurmstepd does, right after)
  p.use_cgroup = false;       // the batch system's own cgroups do the limits
  p.creds.uid = opts.uid;
  p.creds.gid = opts.gid;
  if (opts.root.empty() || opts.root[0] != '/') errors.push_back(str("the root ", quote(opts.root), " must be an absolute path"));
  p.root = opts.root;
  p.root_id = opts.root_id;

  std::string job_dir;
  if (auto d = check_into(errors, normalize_inner_path(opts.job_dir, "the job directory"))) {
    if (*d == "/") errors.push_back("the job directory must not be '/'");
    else job_dir = *d;
  }

  p.mounts.push_back({MountOp::Kind::proc, "/proc", 0, false, false});
  p.mounts.push_back({MountOp::Kind::dev, "/dev", 0, false, false});
  Targets targets{errors};
  plan_scratch_dirs(p, targets, job_dir, opts.mount_under_scratch, "scratch directory");
  // /dev/shm: shared by the job's tasks on this node (MPI's shared memory), so it is a directory
  // of the job, bound over the tmpfs that the /dev operation makes.
  if (targets.add_unchecked("/dev/shm", "scratch directory")) {
    p.sources.push_back({job_dir, false, "dev/shm"});
    p.mounts.push_back({MountOp::Kind::bind, "/dev/shm", p.sources.size() - 1, false, false});
  }
  for (const auto& b : opts.binds)
    if (b.source.empty() || b.source[0] != '/') errors.push_back(str("bind source ", quote(b.source), " must be an absolute path"));
  plan_binds(p, targets, opts.binds, "/");
  parents_first(p.mounts);

  if (opts.cwd.empty()) {
    p.cwd = "/";
  } else if (auto c = check_into(errors, normalize_inner_path(opts.cwd, "the working directory"))) {
    p.cwd = *c;
  }
  if (!errors.empty()) return fail(Errc::invalid_argument, join(errors, "; "));
  return p;
}

}  // namespace chrootctl::launcher
