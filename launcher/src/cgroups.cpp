// cgroups v1 and v2 for jobs: detection, creation with limits, accounting, kill and removal.
#include "chrootctl/launcher/cgroups.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/launcher/mountinfo.hpp"

namespace chrootctl::launcher::cgroup {

namespace {

constexpr const char* k_base = "chrootctl";

void sleep_ms(long ms) {
  struct timespec ts {
    ms / 1000, (ms % 1000) * 1000000L
  };
  while (::nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

std::string join_path(const std::string& dir, std::string_view name) {
  if (dir.empty() || dir.back() == '/') return dir + std::string(name);
  return dir + "/" + std::string(name);
}

// "a b c" -> {a, b, c}
std::set<std::string> words(std::string_view text) {
  std::set<std::string> out;
  std::string cur;
  for (char c : text) {
    if (c == ' ' || c == '\n' || c == '\t') {
      if (!cur.empty()) out.insert(std::move(cur));
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) out.insert(std::move(cur));
  return out;
}

// "key value" lines (memory.events, cpu.stat, memory.oom_control) -> value of `key`.
std::optional<std::uint64_t> keyed_value(std::string_view text, std::string_view key) {
  for (const auto& line : split(text, '\n')) {
    const auto sp = line.find(' ');
    if (sp == std::string::npos) continue;
    if (std::string_view(line).substr(0, sp) == key) return parse_u64(trim(std::string_view(line).substr(sp + 1)));
  }
  return std::nullopt;
}

std::vector<pid_t> procs_of(Fs& fs, const std::string& dir) {
  std::vector<pid_t> out;
  auto text = fs.read(join_path(dir, "cgroup.procs"));
  if (!text) return out;
  for (const auto& line : split(*text, '\n'))
    if (auto n = parse_u64(trim(line))) out.push_back(static_cast<pid_t>(*n));
  return out;
}

bool is_v2_dir(Fs& fs, const std::string& dir) { return fs.exists(join_path(dir, "cgroup.controllers")); }

// Where job cgroups of a v1 hierarchy go: the caller's own cgroup in it (so the job stays inside
// whatever the batch system set up for the caller), or the hierarchy's root. Empty if the
// controller has no hierarchy.
std::string v1_parent(const Layout& layout, const std::string& controller) {
  auto it = layout.v1_mounts.find(controller);
  if (it == layout.v1_mounts.end()) return {};
  auto own = layout.v1_own.find(controller);
  if (own == layout.v1_own.end() || own->second.empty() || own->second == "/") return it->second;
  return it->second + own->second;
}

// The v1 hierarchies a job uses: every mounted controller hierarchy, with or without limits, so
// that the job stays in none of the caller's cgroups and its cgroup namespace is rooted at its
// own cgroup in each (named hierarchies without a controller, like systemd's, limit nothing and
// are left alone). The freezer comes first: destroy() kills through it before the other
// directories are removed. Each is given as the directory below which the base `chrootctl` lives.
std::vector<std::string> v1_mounts_for(const Layout& layout) {
  std::vector<std::string> out;
  auto add = [&](const std::string& controller) {
    const std::string parent = v1_parent(layout, controller);
    if (!parent.empty() && std::find(out.begin(), out.end(), parent) == out.end()) out.push_back(parent);
  };
  add("freezer");
  for (const auto& [controller, mount] : layout.v1_mounts) add(controller);
  return out;
}

// A new cpuset cgroup starts with no CPUs and no memory nodes, and no task can join it until it
// has both: it gets its parent's (cgroup.clone_children would do the same, for every cgroup
// below the parent, which is not ours to change).
Status init_cpuset(Fs& fs, const std::string& dir) {
  const std::string parent = dir.substr(0, dir.find_last_of('/'));
  for (const char* file : {"cpuset.cpus", "cpuset.mems"}) {
    const std::string mine = join_path(dir, file);
    if (!fs.exists(mine)) return {};  // not the cpuset hierarchy
    auto current = TRY(fs.read(mine));
    if (!trim(current).empty()) continue;
    const std::string from_parent = TRY(fs.read(join_path(parent, file)));
    TRY(fs.write(mine, trim(from_parent)));
  }
  return {};
}

std::string v2_dir(const Layout& layout, const std::string& rel) {
  if (rel == "/" || rel.empty()) return layout.v2_mount;
  return layout.v2_mount + rel;
}

Status write_limit(Fs& fs, const std::string& dir, const char* file, std::uint64_t value) {
  return fs.write(join_path(dir, file), std::to_string(value));
}

// Enables `wanted` controllers in dir/cgroup.subtree_control (only those not enabled yet).
Status enable_controllers(Fs& fs, const std::string& dir, const std::set<std::string>& wanted) {
  auto enabled = words(TRY(fs.read(join_path(dir, "cgroup.subtree_control"))));
  std::string change;
  for (const auto& c : wanted)
    if (!enabled.count(c)) change += (change.empty() ? "+" : " +") + c;
  if (change.empty()) return {};
  return fs.write(join_path(dir, "cgroup.subtree_control"), change);
}

Status make_dir_ok_if_exists(Fs& fs, const std::string& dir) {
  auto r = fs.make_dir(dir);
  if (!r && r.error().code() != Errc::exists) return r;
  return {};
}

// Makes BASE (if missing, then `prepare` it) and BASE/NAME. `chrootctl cleanup` removes an empty
// base, so one that vanishes between the two steps is made again, once.
template <class Prepare>
Status make_job_dir(Fs& fs, const std::string& base, const std::string& dir, Prepare&& prepare) {
  // ENOENT: another launch removed the (then empty) base between our mkdir of it and of `dir`.
  for (int attempt = 0;; ++attempt) {
    TRY(make_dir_ok_if_exists(fs, base));
    auto prepared = prepare();
    auto made = prepared ? fs.make_dir(dir) : prepared;
    if (made || attempt >= 8 || made.error().code() != Errc::not_found) return made;
  }
}

}  // namespace

std::string_view version_name(Version v) {
  switch (v) {
    case Version::v1:
      return "v1";
    case Version::v2:
      return "v2";
    case Version::none:
      break;
  }
  return "none";
}

// ---- detection ----

Layout parse_layout(std::string_view mountinfo, std::string_view self_cgroup) {
  Layout l;
  // Only the cgroup lines are turned into strings: this runs at every launch.
  for_each_mount(mountinfo, [&](const MountInfoFields& m) {
    if (m.fstype == "cgroup2") {
      if (l.v2_mount.empty()) l.v2_mount = unescape_mountinfo(m.mount_point);
    } else if (m.fstype == "cgroup") {
      const std::string mount_point = unescape_mountinfo(m.mount_point);
      for (const auto& opt : split(m.super_options, ',')) {
        if (opt == "rw" || opt == "ro" || starts_with(opt, "name=") || starts_with(opt, "release_agent=") || opt == "clone_children" ||
            opt == "noprefix" || opt == "xattr")
          continue;
        l.v1_mounts.emplace(opt, mount_point);
      }
    }
  });
  for (const auto& line : split(self_cgroup, '\n')) {
    if (starts_with(line, "0::")) {
      l.v2_own = line.substr(3).empty() ? "/" : line.substr(3);
      continue;
    }
    // v1: "N:controller,controller:/path"
    const auto first = line.find(':');
    const auto second = first == std::string::npos ? std::string::npos : line.find(':', first + 1);
    if (second == std::string::npos) continue;
    std::string path = line.substr(second + 1);
    if (path.empty() || path[0] != '/' || path.ends_with(" (deleted)")) path = "/";
    for (const auto& c : split(std::string_view(line).substr(first + 1, second - first - 1), ','))
      if (!c.empty() && !starts_with(c, "name=")) l.v1_own[c] = path;
  }
  // " (deleted)" marks a cgroup removed under us; there is no usable "own" cgroup then.
  if (l.v2_own.size() > 10 && l.v2_own.ends_with(" (deleted)")) l.v2_own = "/";
  return l;
}

Result<Layout> detect_layout() {
  auto mi = TRY(sys::read_file("/proc/self/mountinfo"));
  auto cg = TRY(sys::read_file("/proc/self/cgroup"));
  return parse_layout(mi, cg);
}

// ---- the real kernel interface ----

Status Fs::make_dir(const std::string& path) {
  auto made = sys::mkdir_path(path, 0755);
  if (!made && made.error().sys_errno() == EEXIST) return fail(Errc::exists, str(path, " exists"));
  return made;
}

Status Fs::remove_dir(const std::string& path) {
  // The kernel refuses (EBUSY) while a killed task is still being torn down; that lasts
  // milliseconds at most.
  for (int attempt = 0;; ++attempt) {
    auto removed = sys::unlink_at(AT_FDCWD, path, AT_REMOVEDIR);
    const int err = removed ? 0 : removed.error().sys_errno();
    if (removed || err == ENOENT) return {};
    if (err != EBUSY || attempt >= 200) return fail_errno(str("rmdir(", quote(path), ")"), err);
    sleep_ms(attempt < 20 ? 1 : 10);
  }
}

bool Fs::remove_dir_once(const std::string& path) {
  auto removed = sys::unlink_at(AT_FDCWD, path, AT_REMOVEDIR);
  return removed || removed.error().sys_errno() == ENOENT;
}

Status Fs::write(const std::string& path, std::string_view value) {
  auto fd = TRY(sys::open_path(path, O_WRONLY | O_TRUNC | O_NOFOLLOW));
  const ssize_t n = sys::retry_eintr([&] { return ::write(fd.get(), value.data(), value.size()); });
  if (n < 0) return fail_errno(str("write(", quote(path), ", ", quote(value), ")"), errno);
  return {};
}

Result<std::string> Fs::read(const std::string& path) { return sys::read_file(path, 1u << 20); }

bool Fs::exists(const std::string& path) { return sys::access_path(path, F_OK).has_value(); }

Result<std::vector<std::string>> Fs::subdirs(const std::string& path) {
  auto fd = TRY(sys::open_dir(path));
  std::vector<std::string> out;
  for (auto& e : TRY(sys::read_dir(fd.get(), false)))
    if (e.type == DT_DIR) out.push_back(std::move(e.name));
  return out;
}

pid_t Fs::self_pid() { return ::getpid(); }

Fs& real_fs() {
  static Fs fs;
  return fs;
}

// ---- creation ----

std::vector<std::string> JobCgroup::candidate_dirs(const Layout& layout, const Limits& limits, const std::string& name) {
  std::vector<std::string> out;
  (void)limits;
  for (const auto& m : v1_mounts_for(layout)) out.push_back(join_path(join_path(m, k_base), name));
  if (!layout.v2_mount.empty()) {
    const std::string own_base = join_path(v2_dir(layout, layout.v2_own), k_base);
    out.push_back(join_path(own_base, name));
    out.push_back(join_path(own_base, "launcher." + name));
    const std::string root_job = join_path(join_path(layout.v2_mount, k_base), name);
    if (std::find(out.begin(), out.end(), root_job) == out.end()) out.push_back(root_job);
  }
  return out;
}

std::set<std::string> v2_controllers(Fs& fs, const Layout& layout) {
  if (layout.v2_mount.empty()) return {};
  auto c = fs.read(join_path(layout.v2_mount, "cgroup.controllers"));
  return c ? words(*c) : std::set<std::string>();
}

Version launch_version(Fs& fs, const Layout& layout) {
  if (v2_controllers(fs, layout).count("memory")) return Version::v2;
  return v1_mounts_for(layout).empty() ? Version::none : Version::v1;
}

std::vector<std::string> base_parents(Fs& fs, const Layout& layout, bool privileged) {
  switch (launch_version(fs, layout)) {
    case Version::v1:
      return v1_mounts_for(layout);
    case Version::v2: {
      std::vector<std::string> out;
      const std::string own = v2_dir(layout, layout.v2_own);
      if (own != layout.v2_mount) out.push_back(own);
      if (privileged) out.push_back(layout.v2_mount);
      return out;
    }
    case Version::none:
      break;
  }
  return {};
}

Result<JobCgroup> JobCgroup::create(Fs& fs, const Layout& layout, const std::string& name, const Limits& limits, bool privileged,
                                    std::vector<std::string>& notes) {
  JobCgroup cg;
  // v2 when the unified hierarchy offers the memory controller; otherwise the v1 hierarchies.
  const std::set<std::string> v2_available = v2_controllers(fs, layout);
  if (v2_available.count("memory")) {
    std::set<std::string> wanted{"memory", "pids"};
    if (limits.cpu_weight) wanted.insert("cpu");
    for (auto it = wanted.begin(); it != wanted.end();) it = v2_available.count(*it) ? std::next(it) : wanted.erase(it);

    // Where the base can live: the caller's own cgroup (controllers enabled for its children),
    // the same after moving this launcher, when it is the only process there, into a leaf of
    // its own, or the root cgroup (root only).
    std::string base;
    bool base_at_root = false;
    const std::string own = v2_dir(layout, layout.v2_own);
    std::string why_not_own;
    if (own == layout.v2_mount) {
      // The caller sits in the root cgroup: only root may make cgroups there.
      if (privileged) base_at_root = true;
      else why_not_own = "the caller is in the root cgroup";
    } else if (auto r = enable_controllers(fs, own, wanted)) {
      base = join_path(own, k_base);
    } else {
      why_not_own = r.error().what();
      const auto procs = procs_of(fs, own);
      if (procs.size() == 1 && procs[0] == fs.self_pid()) {
        // Only this launcher lives in its cgroup: move it into a leaf below the base so the
        // caller's cgroup may enable controllers for its children (cgroup v2 allows no
        // processes in a cgroup whose controllers are delegated to children).
        const std::string leaf_base = join_path(own, k_base);
        const std::string leaf = join_path(leaf_base, "launcher." + name);
        Status moved = make_dir_ok_if_exists(fs, leaf_base);
        if (moved) moved = make_dir_ok_if_exists(fs, leaf);
        if (moved) moved = fs.write(join_path(leaf, "cgroup.procs"), std::to_string(fs.self_pid()));
        if (moved) moved = enable_controllers(fs, own, wanted);
        if (moved) {
          base = leaf_base;
          cg.m_dirs.push_back(leaf);  // removed with the job (the launcher has left it by then)
        } else {
          why_not_own = moved.error().what();
        }
      }
      if (base.empty() && privileged) base_at_root = true;
    }
    if (base_at_root) {
      // The root cgroup may hold processes and still delegate controllers.
      TRY(enable_controllers(fs, layout.v2_mount, wanted));
      base = join_path(layout.v2_mount, k_base);
    }
    if (base.empty()) {
      notes.push_back(
          str("cgroup v2: cannot create job cgroups under ", own, " (", why_not_own, "); it must be delegated to you and hold no other process"));
      return cg;
    }
    const std::string dir = join_path(base, name);
    TRY(make_job_dir(fs, base, dir, [&] { return enable_controllers(fs, base, wanted); }));
    cg.m_version = Version::v2;
    cg.m_dirs.insert(cg.m_dirs.begin(), dir);
    cg.m_live = true;
    bool applied = true;
    auto apply = [&](bool have, const char* controller, const char* file, std::uint64_t value) -> Status {
      if (!have) return {};
      if (!wanted.count(controller)) {
        notes.push_back(str("cgroup v2: the ", controller, " controller is not available; ", file, " not set"));
        applied = false;
        return {};
      }
      return write_limit(fs, dir, file, value);
    };
    TRY(apply(limits.memory_max.has_value(), "memory", "memory.max", limits.memory_max.value_or(0)));
    TRY(apply(limits.memory_low.has_value(), "memory", "memory.low", limits.memory_low.value_or(0)));
    if (limits.swap_max) {
      if (fs.exists(join_path(dir, "memory.swap.max"))) {
        TRY(write_limit(fs, dir, "memory.swap.max", *limits.swap_max));
      } else {
        notes.push_back("cgroup v2: memory.swap.max is missing (swap accounting is off); swap is not limited");
        applied = false;
      }
    }
    TRY(apply(limits.cpu_weight.has_value(), "cpu", "cpu.weight", limits.cpu_weight.value_or(0)));
    TRY(apply(limits.pids_max.has_value(), "pids", "pids.max", limits.pids_max.value_or(0)));
    cg.m_limits_applied = applied;
    cg.m_limits_set = cg.read_limits(fs);
    return cg;
  }

  const auto mounts = v1_mounts_for(layout);
  if (mounts.empty()) {
    notes.push_back("no cgroup hierarchy for jobs was found (neither v2 with memory nor any v1 controller)");
    return cg;
  }
  cg.m_version = Version::v1;
  cg.m_live = true;
  for (const auto& m : mounts) {
    const std::string base = join_path(m, k_base);
    const std::string dir = join_path(base, name);
    if (!is_hierarchy_root(layout, m)) cg.m_nested_bases.push_back(base);
    // Only the cpuset hierarchy needs its directories filled in, and only the memory hierarchy
    // is read at the end: no probing of the others for files they cannot have (each probe of
    // cgroupfs costs a lookup, at every launch).
    const bool cpuset = m == v1_parent(layout, "cpuset");
    Status made = make_job_dir(fs, base, dir, [&]() -> Status { return cpuset ? init_cpuset(fs, base) : Status{}; });
    if (made && cpuset) made = init_cpuset(fs, dir);
    if (made) {
      cg.m_dirs.push_back(dir);
      if (m == v1_parent(layout, "memory")) cg.m_v1_memory_dir = dir;
      continue;
    }
    (void)cg.destroy(fs);
    if (made.error().code() == Errc::permission && !privileged) {
      notes.push_back(str("cgroup v1 is not delegated to unprivileged users (", made.error().what(), ")"));
      return JobCgroup();
    }
    return tl::unexpected(std::move(made.error()));
  }
  auto dir_of = [&](const char* controller) -> std::string {
    const std::string parent = v1_parent(layout, controller);
    return parent.empty() ? std::string() : join_path(join_path(parent, k_base), name);
  };
  for (const char* controller : {"memory", "cpu", "pids"})
    if (auto d = dir_of(controller); !d.empty()) cg.m_controller_dirs[controller] = d;
  bool applied = true;
  auto set = [&](const char* controller, const char* file, std::uint64_t value) -> Status {
    const std::string dir = dir_of(controller);
    if (dir.empty()) {
      notes.push_back(str("cgroup v1: no ", controller, " hierarchy; ", file, " not set"));
      applied = false;
      return {};
    }
    return write_limit(fs, dir, file, value);
  };
  Status st;
  if (limits.memory_max) st = set("memory", "memory.limit_in_bytes", *limits.memory_max);
  if (st && limits.memory_max && limits.swap_max) {
    // memsw limits memory plus swap; it must not be below the memory limit, which is set first.
    const std::string mem = dir_of("memory");
    if (!mem.empty() && fs.exists(join_path(mem, "memory.memsw.limit_in_bytes"))) {
      st = write_limit(fs, mem, "memory.memsw.limit_in_bytes", *limits.memory_max + *limits.swap_max);
    } else if (!mem.empty()) {
      notes.push_back("cgroup v1: memory.memsw.limit_in_bytes is missing (boot with swapaccount=1); swap is not limited");
      applied = false;
    }
  }
  if (st && limits.memory_low) st = set("memory", "memory.soft_limit_in_bytes", *limits.memory_low);
  if (st && limits.cpu_shares) st = set("cpu", "cpu.shares", *limits.cpu_shares);
  if (st && limits.pids_max) st = set("pids", "pids.max", *limits.pids_max);
  if (!st) {
    (void)cg.destroy(fs);
    return tl::unexpected(std::move(st.error()));
  }
  cg.m_limits_applied = applied;
  cg.m_limits_set = cg.read_limits(fs);
  return cg;
}

JobCgroup::~JobCgroup() {
  if (m_live) (void)destroy(real_fs());
}

Result<std::vector<Fd>> JobCgroup::open_procs() const {
  std::vector<Fd> out;
  for (const auto& d : m_dirs) {
    if (d.find("/launcher.") != std::string::npos) continue;  // the launcher's own leaf, not the job's
    // v1: "tasks" moves only the writing thread, and a thread that moves itself ("0") is moved
    // without the global threadgroup lock, i.e. without waiting an RCU grace period
    // (milliseconds) as a write of another pid, or to cgroup.procs, does.
    const bool v1 = m_version == Version::v1;
    auto fd = sys::open_path(join_path(d, v1 ? "tasks" : "cgroup.procs"), O_WRONLY | O_NOFOLLOW);
    if (!fd && v1 && fd.error().code() == Errc::not_found) fd = sys::open_path(join_path(d, "cgroup.procs"), O_WRONLY | O_NOFOLLOW);
    out.push_back(TRY(std::move(fd)));
  }
  return out;
}

Result<Fd> JobCgroup::open_dir() const {
  if (m_version != Version::v2 || m_dirs.empty()) return fail(Errc::internal, "open_dir: not a v2 cgroup");
  return sys::open_path(m_dirs.front(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
}

Accounting JobCgroup::read_accounting(Fs& fs) const {
  Accounting a;
  if (m_version == Version::v2) {
    const std::string& dir = m_dirs.front();
    if (auto t = fs.read(join_path(dir, "memory.peak"))) a.peak_memory = parse_u64(trim(*t));
    if (auto t = fs.read(join_path(dir, "memory.events"))) {
      a.oom_kills = keyed_value(*t, "oom_kill").value_or(0);
      a.memory_limit_hit = keyed_value(*t, "max").value_or(0) > 0 || a.oom_kills > 0;
    }
  } else if (m_version == Version::v1) {
    if (!m_v1_memory_dir.empty()) {
      const std::string& dir = m_v1_memory_dir;
      if (auto t = fs.read(join_path(dir, "memory.max_usage_in_bytes"))) a.peak_memory = parse_u64(trim(*t));
      if (auto t = fs.read(join_path(dir, "memory.oom_control"))) a.oom_kills = keyed_value(*t, "oom_kill").value_or(0);
      if (auto t = fs.read(join_path(dir, "memory.failcnt"))) a.memory_limit_hit = parse_u64(trim(*t)).value_or(0) > 0;
      a.memory_limit_hit = a.memory_limit_hit || a.oom_kills > 0;
    }
  }
  return a;
}

LimitValues JobCgroup::read_limits(Fs& fs) const {
  LimitValues v;
  // A control file of the job's cgroup: unset for "max", v1's unlimited (PAGE_COUNTER_MAX
  // pages, about 2^63) and a file that is not there. Only the hierarchy that has it is asked.
  auto value = [&](const std::string& dir, const char* file) -> std::optional<std::uint64_t> {
    if (dir.empty()) return std::nullopt;
    auto text = fs.read(join_path(dir, file));
    if (!text) return std::nullopt;
    auto n = parse_u64(trim(*text));
    if (!n || *n >= (std::uint64_t{1} << 62)) return std::nullopt;
    return n;
  };
  if (m_version == Version::v2) {
    const std::string& dir = m_dirs.front();
    v.memory_max = value(dir, "memory.max");
    v.memory_low = value(dir, "memory.low");
    v.swap_max = value(dir, "memory.swap.max");
    v.cpu_weight = value(dir, "cpu.weight");
    v.pids_max = value(dir, "pids.max");
  } else if (m_version == Version::v1) {
    auto dir_of = [&](const char* controller) {
      auto it = m_controller_dirs.find(controller);
      return it == m_controller_dirs.end() ? std::string() : it->second;
    };
    const std::string memory = dir_of("memory");
    v.memory_max = value(memory, "memory.limit_in_bytes");
    v.memory_low = value(memory, "memory.soft_limit_in_bytes");
    if (auto memsw = value(memory, "memory.memsw.limit_in_bytes"); memsw && v.memory_max && *memsw >= *v.memory_max)
      v.swap_max = *memsw - *v.memory_max;
    v.cpu_shares = value(dir_of("cpu"), "cpu.shares");
    v.pids_max = value(dir_of("pids"), "pids.max");
  }
  return v;
}

Status JobCgroup::destroy(Fs& fs) {
  if (!m_live) return {};
  Status first;
  for (const auto& d : m_dirs) {
    if (d.find("/launcher.") != std::string::npos) continue;
    if (auto r = destroy_dir(fs, d); !r && first) first = r;
  }
  // The launcher's own v2 leaf is not removed here: the launcher still lives in it. Its name
  // carries the launcher's pid and start time, so cleanup removes it once the launcher is gone.
  // A base made inside someone else's cgroup (the caller's own, a batch system's) is removed
  // once empty, so it never keeps that cgroup from being removed; one at a hierarchy's root is
  // kept for the next job. (A launch racing this rmdir re-creates the base: make_job_dir.)
  for (const auto& base : m_nested_bases) (void)fs.remove_dir_once(base);
  m_live = false;
  return first;
}

// ---- kill and remove ----

Status destroy_dir(Fs& fs, const std::string& dir) {
  // The common case, a job whose processes are all gone: one rmdir. The kernel refuses
  // (EBUSY) while a process is left and (ENOTEMPTY) while a child cgroup exists.
  if (fs.remove_dir_once(dir)) return {};
  if (!fs.exists(dir)) return {};
  if (is_v2_dir(fs, dir)) {
    // cgroup.kill (5.14) kills the whole cgroup atomically, racing no fork.
    const bool can_kill = fs.exists(join_path(dir, "cgroup.kill"));
    for (int round = 0; round < 500; ++round) {
      const auto procs = procs_of(fs, dir);
      if (procs.empty()) break;
      if (can_kill) {
        TRY(fs.write(join_path(dir, "cgroup.kill"), "1"));
      } else {
        (void)fs.write(join_path(dir, "cgroup.freeze"), "1");
        for (pid_t p : procs) ::kill(p, SIGKILL);
        (void)fs.write(join_path(dir, "cgroup.freeze"), "0");
      }
      sleep_ms(round < 20 ? 1 : 10);
    }
    // Child cgroups the job may have made (it cannot on v1 nor without delegation, but be thorough).
    if (auto subs = fs.subdirs(dir))
      for (const auto& s : *subs) TRY(destroy_dir(fs, join_path(dir, s)));
    return fs.remove_dir(dir);
  }
  // v1: freeze so nothing forks while we kill, kill every task, thaw so the kills land.
  const bool freezer = fs.exists(join_path(dir, "freezer.state"));
  for (int round = 0; round < 500; ++round) {
    const auto procs = procs_of(fs, dir);
    if (procs.empty()) break;
    if (freezer) (void)fs.write(join_path(dir, "freezer.state"), "FROZEN");
    for (pid_t p : procs) ::kill(p, SIGKILL);
    if (freezer) (void)fs.write(join_path(dir, "freezer.state"), "THAWED");
    sleep_ms(round < 20 ? 1 : 10);
  }
  if (auto subs = fs.subdirs(dir))
    for (const auto& s : *subs) TRY(destroy_dir(fs, join_path(dir, s)));
  return fs.remove_dir(dir);
}

bool is_hierarchy_root(const Layout& layout, const std::string& dir) {
  if (!layout.v2_mount.empty() && dir == layout.v2_mount) return true;
  for (const auto& [controller, mount] : layout.v1_mounts)
    if (mount == dir) return true;
  return false;
}

std::vector<std::string> base_dirs(Fs& fs, const Layout& layout) {
  std::vector<std::string> out;
  auto add = [&](const std::string& d) {
    if (fs.exists(d) && std::find(out.begin(), out.end(), d) == out.end()) out.push_back(d);
  };
  for (const auto& [controller, mount] : layout.v1_mounts) {
    add(join_path(mount, k_base));
    add(join_path(v1_parent(layout, controller), k_base));
  }
  if (!layout.v2_mount.empty()) {
    add(join_path(layout.v2_mount, k_base));
    add(join_path(v2_dir(layout, layout.v2_own), k_base));
  }
  return out;
}

}  // namespace chrootctl::launcher::cgroup
