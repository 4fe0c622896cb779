// chrootctl doctor (doctor.hpp): each check a function that looks and judges; nothing on the
// host is changed.
#include "chrootctl/site/doctor.hpp"

#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <map>
#include <set>

#include "chrootctl/catalogue/access.hpp"
#include "chrootctl/catalogue/catalogue.hpp"
#include "chrootctl/catalogue/condor.hpp"
#include "chrootctl/catalogue/sign.hpp"
#include "chrootctl/common/json.hpp"
#include "chrootctl/common/manifest.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/launcher/cgroups.hpp"
#include "chrootctl/launcher/cleanup.hpp"
#include "chrootctl/launcher/host.hpp"
#include "chrootctl/launcher/idmap.hpp"
#include "chrootctl/seccomp/compile.hpp"
#include "chrootctl/seccomp/policy.hpp"
#include "chrootctl/seccomp/source.hpp"
#include "spank_config.hpp"

namespace chrootctl::site {

namespace ln = chrootctl::launcher;
namespace cg = chrootctl::launcher::cgroup;

// ---- Fact ----

Fact Fact::list(std::vector<Fact> items) {
  Fact f;
  f.m_kind = Kind::list;
  f.m_items = std::move(items);
  return f;
}

Fact Fact::object(std::vector<std::pair<std::string, Fact>> fields) {
  Fact f;
  f.m_kind = Kind::object;
  f.m_fields = std::move(fields);
  return f;
}

const Fact* Fact::get(std::string_view key) const {
  for (const auto& [k, v] : m_fields)
    if (k == key) return &v;
  return nullptr;
}

std::string_view verdict_name(Verdict v) {
  switch (v) {
    case Verdict::ok:
      return "ok";
    case Verdict::degraded:
      return "degraded";
    case Verdict::missing:
      return "missing";
    case Verdict::error:
      return "error";
  }
  return "error";
}

std::vector<std::string> Report::failed_required() const {
  std::vector<std::string> out;
  for (const auto& c : checks)
    if (c.required && c.verdict != Verdict::ok) out.push_back(c.id);
  return out;
}

// ---- pure parts ----

std::vector<IdHolder> account_ids(std::string_view text, const std::string& file, std::string_view kind) {
  std::vector<IdHolder> out;
  std::size_t number = 0;
  for (const auto& line : split(text, '\n')) {
    ++number;
    const auto fields = split(line, ':');
    if (fields.size() < 3 || fields[0].empty() || fields[0][0] == '#') continue;
    auto id = parse_u64(fields[2]);
    if (!id) continue;
    out.push_back({str(kind, " ", fields[0], " (", kind == "user" ? "uid " : "gid ", *id, "), ", file, ":", number), *id, 1});
  }
  return out;
}

std::vector<IdHolder> subordinate_ids(std::string_view text, const std::string& file) {
  std::vector<IdHolder> out;
  std::size_t number = 0;
  for (const auto& line : split(text, '\n')) {
    ++number;
    const std::string t(trim(line));
    const auto fields = split(t, ':');
    if (fields.size() != 3 || t[0] == '#') continue;
    auto first = parse_u64(fields[1]);
    auto count = parse_u64(fields[2]);
    if (!first || !count || *count == 0) continue;
    out.push_back({str(file, ":", number, ": ", t), *first, *count});
  }
  return out;
}

std::vector<std::string> id_overlaps(std::uint64_t first, std::uint64_t count, const std::vector<IdHolder>& holders) {
  std::vector<std::string> out;
  for (const auto& h : holders)
    if (h.first < first + count && first < h.first + h.count) out.push_back(h.what);
  return out;
}

std::vector<PlugstackLine> find_plugstack_lines(std::string_view text, const std::string& file) {
  std::vector<PlugstackLine> out;
  std::size_t number = 0;
  for (const auto& raw : split(text, '\n')) {
    ++number;
    std::string line(raw);
    if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::vector<std::string> words;
    for (const auto& w : split(line, ' '))
      for (const auto& x : split(w, '\t'))
        if (!x.empty()) words.push_back(x);
    if (words.size() < 2 || (words[0] != "required" && words[0] != "optional")) continue;
    if (words[1].find("chrootctl_spank") == std::string::npos) continue;
    out.push_back({str(file, ":", number), words[0], words[1], std::vector<std::string>(words.begin() + 2, words.end())});
  }
  return out;
}

namespace {

// ---- helpers ----

using Fields = std::vector<std::pair<std::string, Fact>>;

Fact strings(const std::vector<std::string>& v) {
  std::vector<Fact> items;
  items.reserve(v.size());
  for (const auto& s : v) items.emplace_back(s);
  return Fact::list(std::move(items));
}

bool exists(const std::string& path) { return sys::access_path(path, F_OK).has_value(); }

std::string owner_and_mode(const struct stat& st) { return str("uid ", st.st_uid, ", mode ", mode_octal(st.st_mode & 07777)); }

// The nearest directory at or above `path` that exists.
std::string existing_ancestor(std::string path) {
  while (path.size() > 1 && !exists(path)) {
    const auto slash = path.find_last_of('/');
    path = slash == 0 ? std::string("/") : path.substr(0, slash);
  }
  return path;
}

// What a file path names in a module list (modules.dep, modules.builtin) of this kernel.
bool kernel_lists_module(const std::string& release, const char* list, std::string_view module_file) {
  auto text = sys::read_file(str("/lib/modules/", release, "/", list), 16u << 20);
  if (!text) return false;
  for (const auto& line : split(*text, '\n')) {
    const std::string_view entry = trim(line.substr(0, line.find(':')));
    const auto slash = entry.find_last_of('/');
    const std::string_view name = slash == std::string_view::npos ? entry : entry.substr(slash + 1);
    if (starts_with(name, module_file)) return true;  // loop.ko, loop.ko.xz, ...
  }
  return false;
}

// ---- the checks ----

Check check_config(const Settings& s, const std::optional<Error>& config_error) {
  Check c{"config", Verdict::ok, true, "", "", Fact::object({})};
  const char* env = std::getenv("CHROOTCTL_CONFIG");
  const std::string file = env && *env ? env : "/etc/chrootctl/config.toml";
  if (config_error) {
    c.verdict = Verdict::error;
    c.summary = str("cannot read ", file);
    c.meaning = str(config_error->what(), "; every launch would fail the same way (the rest of this report uses the defaults)");
    c.facts = Fact::object({{"file", file}, {"exists", exists(file)}, {"error", config_error->what()}});
    return c;
  }
  c.summary = s.config_file.empty() ? str(file, " does not exist: the defaults apply") : s.config_file;
  c.facts = Fact::object({{"file", file}, {"exists", !s.config_file.empty()}, {"error", nullptr}});
  return c;
}

Check check_kernel(const ln::host::Kernel& k) {
  Check c{"kernel", Verdict::ok, false, str("Linux ", k.release, " (", k.machine, ")"), "", Fact::object({})};
  c.facts = Fact::object({{"release", k.release}, {"machine", k.machine}, {"major", k.major}, {"minor", k.minor}});
  return c;
}

Check check_cgroups() {
  Check c{"cgroups", Verdict::ok, true, "", "", Fact::object({})};
  auto layout = cg::detect_layout();
  if (!layout) {
    c.verdict = Verdict::error;
    c.summary = "cannot read the cgroup mounts";
    c.meaning = layout.error().what();
    c.facts = Fact::object({{"version", "none"},
                            {"v2_mount", nullptr},
                            {"controllers", Fact::list({})},
                            {"job_cgroup_bases", Fact::list({})},
                            {"swap_limits", nullptr}});
    return c;
  }
  cg::Fs& fs = cg::real_fs();
  const cg::Version version = cg::launch_version(fs, *layout);
  const auto parents = cg::base_parents(fs, *layout, ::geteuid() == 0);
  std::vector<Fact> controllers;
  std::vector<std::string> present, absent;
  const char* wanted_v1[] = {"freezer", "memory", "pids", "cpu"};
  const char* wanted_v2[] = {"memory", "pids", "cpu"};
  std::optional<bool> swap;
  if (version == cg::Version::v2) {
    const auto offered = cg::v2_controllers(fs, *layout);
    for (const char* name : wanted_v2) {
      (offered.count(name) ? present : absent).push_back(name);
      controllers.push_back(
          Fact::object({{"name", name}, {"available", offered.count(name) > 0}, {"mount", layout->v2_mount}, {"own", layout->v2_own}}));
    }
    if (layout->v2_own != "/") swap = exists(str(layout->v2_mount, layout->v2_own, "/memory.swap.max"));
  } else if (version == cg::Version::v1) {
    for (const char* name : wanted_v1) {
      auto m = layout->v1_mounts.find(name);
      const bool have = m != layout->v1_mounts.end();
      (have ? present : absent).push_back(name);
      auto own = layout->v1_own.find(name);
      controllers.push_back(Fact::object({{"name", name},
                                          {"available", have},
                                          {"mount", have ? Fact(m->second) : Fact()},
                                          {"own", have && own != layout->v1_own.end() ? Fact(own->second) : Fact()}}));
    }
    if (auto m = layout->v1_mounts.find("memory"); m != layout->v1_mounts.end()) swap = exists(m->second + "/memory.memsw.limit_in_bytes");
  }
  std::vector<std::string> bases;
  bases.reserve(parents.size());
  for (const auto& p : parents) bases.push_back(p + "/chrootctl");
  c.facts = Fact::object({{"version", std::string(cg::version_name(version))},
                          {"v2_mount", layout->v2_mount.empty() ? Fact() : Fact(layout->v2_mount)},
                          {"controllers", Fact::list(std::move(controllers))},
                          {"job_cgroup_bases", strings(bases)},
                          {"swap_limits", swap}});
  if (version == cg::Version::none) {
    c.verdict = Verdict::missing;
    c.summary = "no cgroup hierarchy a launch can use (neither cgroup2 with the memory controller nor a v1 controller)";
    c.meaning = "jobs run without limits or accounting, and launches with --require-limits fail";
    return c;
  }
  std::string where = bases.empty() ? std::string("(none: not delegated to this user)") : bases[0];
  if (bases.size() > 1) where += version == cg::Version::v1 ? str(" and ", bases.size() - 1, " other hierarchies") : str(", else ", bases[1]);
  c.summary = str(cg::version_name(version), ": ", join(present, ", "), "; job cgroups under ", where);
  std::vector<std::string> lacks;
  for (const auto& a : absent) {
    if (a == "memory") lacks.push_back("--memory, --memory-low and --swap are not enforced and peak memory is not reported");
    if (a == "pids") lacks.push_back("--pids is not enforced");
    if (a == "cpu") lacks.push_back("--cpus is not enforced");
    if (a == "freezer") lacks.push_back("processes a job leaves behind are killed without freezing them first");
  }
  if (swap && !*swap)
    lacks.push_back(version == cg::Version::v1 ? "--swap is not enforced (boot with swapaccount=1)"
                                               : "--swap is not enforced (swap accounting is off)");
  if (bases.empty()) lacks.push_back("this user cannot create job cgroups: jobs run without limits");
  if (!lacks.empty()) {
    c.verdict = Verdict::degraded;
    c.meaning = join(lacks, "; ");
  }
  return c;
}

Check check_user_namespaces(const Settings& s) {
  const auto u = ln::host::user_namespaces();
  Check c{"user-namespaces", Verdict::ok, true, "", "", Fact::object({})};
  c.facts = Fact::object({{"max_user_namespaces", u.max_user_namespaces},
                          {"unprivileged_userns_clone", u.unprivileged_clone},
                          {"apparmor_restrict_unprivileged_userns", u.apparmor_restricted},
                          {"caller", u.as_caller},
                          {"caller_error", u.caller_error.empty() ? Fact() : Fact(u.caller_error)},
                          {"unprivileged", u.as_user},
                          {"unprivileged_error", u.user_error.empty() ? Fact() : Fact(u.user_error)}});
  const std::string limit = u.max_user_namespaces ? str("user.max_user_namespaces = ", *u.max_user_namespaces) : "no user.max_user_namespaces";
  if (!u.as_caller) {
    c.verdict = Verdict::missing;
    c.summary = str("this process cannot create a user namespace (", u.caller_error, "); ", limit);
    c.meaning = "every job runs in a user namespace of its own: no job can start (raise user.max_user_namespaces)";
    return c;
  }
  if (u.as_user && !*u.as_user) {
    c.verdict = Verdict::degraded;
    c.required = !s.readable_images.empty();
    c.summary = str("root can create user namespaces, other users cannot (", u.user_error, "); ", limit);
    c.meaning =
        "only root can launch jobs: the HTCondor wrapper and users' own 'chrootctl run' fail"
        " (allow unprivileged user namespaces: kernel.unprivileged_userns_clone = 1, or the AppArmor restriction off)";
    return c;
  }
  c.summary = str(u.as_user ? "root and other users can create user namespaces" : "this user can create user namespaces", "; ", limit);
  return c;
}

std::string decision_text(const Result<ln::IdDecision>& d) {
  if (!d) return str("refused: ", d.error().what());
  return d->mode == ln::IdMode::mapped ? "mapped (idmapped image)" : "identity (own ids only)";
}

Check check_idmap(const Settings& s, const std::optional<std::string>& sandbox) {
  Check c{"idmapped-mounts", Verdict::ok, false, "", "", Fact::object({})};
  const std::string image = existing_ancestor(s.store);
  auto plan = ln::host::id_plan(image, sandbox);
  if (!plan) {
    c.verdict = Verdict::error;
    c.summary = str("cannot examine ", image, sandbox ? str(" or ", *sandbox) : std::string());
    c.meaning = plan.error().what();
    c.facts = Fact::object({{"store", image},
                            {"filesystems", Fact::list({})},
                            {"sandbox", nullptr},
                            {"user_job", nullptr},
                            {"root_job", nullptr},
                            {"root_job_refused", nullptr}});
    return c;
  }
  std::vector<Fact> fss;
  std::vector<std::string> names;
  for (const auto& [path, magic] : plan->image_filesystems) {
    fss.push_back(Fact::object({{"path", path}, {"type", ln::filesystem_name(magic)}}));
    if (std::find(names.begin(), names.end(), ln::filesystem_name(magic)) == names.end()) names.push_back(ln::filesystem_name(magic));
  }
  auto mode = [](const Result<ln::IdDecision>& d) { return d ? Fact(d->mode == ln::IdMode::mapped ? "mapped" : "identity") : Fact("refused"); };
  c.facts = Fact::object({{"store", image},
                          {"filesystems", Fact::list(std::move(fss))},
                          {"sandbox", plan->sandbox_filesystem ? Fact::object({{"path", plan->sandbox_filesystem->first},
                                                                               {"type", ln::filesystem_name(plan->sandbox_filesystem->second)}})
                                                               : Fact()},
                          {"user_job", mode(plan->user_job)},
                          {"root_job", mode(plan->root_job)},
                          {"root_job_refused", plan->root_job ? Fact() : Fact(plan->root_job.error().what())}});
  c.summary =
      str("store ", image, " on ", join(names, ", "),
          plan->sandbox_filesystem ? str(", sandbox on ", ln::filesystem_name(plan->sandbox_filesystem->second)) : std::string(), ": a user's job ",
          decision_text(plan->user_job), ", a job as root ", plan->root_job ? decision_text(plan->root_job) : std::string("refused"));
  if (::geteuid() != 0) {
    c.verdict = Verdict::degraded;
    c.meaning =
        "doctor ran without root, as a launch by this user would: only the user's own ids are mapped; run it as root to see what root's launches do";
    return c;
  }
  std::vector<std::string> m;
  if (!plan->user_job || plan->user_job->mode != ln::IdMode::mapped)
    m.push_back("jobs run with their own ids only: image files of other owners show as 65534 (nobody)");
  if (!plan->root_job) m.push_back(str("jobs as root are refused (", plan->root_job.error().what(), ")"));
  if (!m.empty()) {
    c.verdict = Verdict::degraded;
    c.meaning = join(m, "; ");
  }
  return c;
}

Check check_syscall(const char* id, bool present, const char* since, const char* without) {
  Check c{id, present ? Verdict::ok : Verdict::degraded, false, "", "", Fact::object({{"available", present}, {"since", since}})};
  c.summary = present ? str(id, " is available") : str(id, " is not available (Linux ", since, " or later)");
  if (!present) c.meaning = without;
  return c;
}

Check check_seccomp(const Settings& s) {
  Check c{"seccomp", Verdict::ok, false, "", "", Fact::object({})};
  const auto probe = ln::host::seccomp();
  const std::string policy = seccomp::choose_job_policy(std::nullopt, "", s);
  std::optional<std::string> digest, program, problem;
  if (policy != "none") {
    auto source = seccomp::load_source(policy, s);
    if (!source) {
      problem = source.error().what();
    } else if (*source) {
      digest = seccomp::policy_digest(**source);
      program = seccomp::find_cached_program(seccomp::cache_dir(), *digest);
      auto parsed = seccomp::parse_policy(**source);
      if (!parsed) problem = parsed.error().what();
      else if (auto compiled = seccomp::compile_policy(*parsed); !compiled) problem = compiled.error().what();
    }
  }
  // Entries whose jobs run with a policy of their own (add --seccomp).
  std::vector<Fact> own;
  if (auto cat = catalogue::load(s)) {
    for (const auto& e : cat->entries)
      if (!e.seccomp.empty()) own.push_back(Fact::object({{"name", e.name}, {"policy", e.seccomp}}));
  }
  c.facts = Fact::object({{"usable", probe.usable},
                          {"error", probe.error.empty() ? Fact() : Fact(probe.error)},
                          {"policy", policy},
                          {"digest", digest},
                          {"program", program},
                          {"policy_error", problem},
                          {"image_policies", Fact::list(std::move(own))}});
  c.required = policy != "none";
  if (policy == "none") {
    c.verdict = Verdict::degraded;
    c.summary = str("the site's policy is none", probe.usable ? "" : str(" (and the kernel refuses filters: ", probe.error, ")"));
    c.meaning = "jobs run without a system-call filter unless their image names a policy: the kernel's whole surface is open to them";
    return c;
  }
  if (!probe.usable) {
    c.verdict = Verdict::missing;
    c.summary = str("cannot install a system-call filter (", probe.error, ")");
    c.meaning = "every job runs under a filter (policy " + policy + "), so no job can start";
    return c;
  }
  if (problem) {
    c.verdict = Verdict::error;
    c.summary = str("the site's policy ", quote(policy), " cannot be compiled");
    c.meaning = str(*problem, "; every launch with it fails");
    return c;
  }
  c.summary = str("filters can be installed; jobs run under policy ", quote(policy), " (sha256:", digest->substr(0, 16), "...), ",
                  program ? str("compiled in ", *program) : std::string("compiled at the first launch"));
  return c;
}

Check check_loop() {
  Check c{"loop", Verdict::ok, false, "", "", Fact::object({})};
  const auto st = sys::stat_path("/dev/loop-control");
  const bool control = st && S_ISCHR(st->st_mode);
  const std::string release = ln::host::kernel().release;
  const bool loaded = exists("/sys/module/loop");
  const bool module = kernel_lists_module(release, "modules.dep", "loop.ko") || kernel_lists_module(release, "modules.builtin", "loop.ko");
  c.facts = Fact::object({{"loop_control", control}, {"loaded", loaded}, {"module", module}});
  if (control) {
    c.summary = "/dev/loop-control is there";
  } else if (module) {
    c.summary = "the loop module is not loaded, /dev/loop-control is missing";
    c.verdict = Verdict::degraded;
    c.meaning = "sealed images cannot be attached until the loop module is loaded (modprobe loop); directory images are unaffected";
  } else {
    c.verdict = Verdict::missing;
    c.summary = "no loop device support (/dev/loop-control is missing and the kernel lists no loop module)";
    c.meaning = "sealed images cannot be attached; directory images are unaffected";
  }
  return c;
}

Check check_verity() {
  Check c{"dm-verity", Verdict::ok, false, "", "", Fact::object({})};
  // A control node that opens, as the launcher judges it (a leftover node on a kernel without
  // device-mapper answers ENODEV).
  bool control = false;
  if (auto opened = sys::open_path("/dev/mapper/control", O_RDWR | O_CLOEXEC)) {
    const auto st = sys::fstat(opened->get());
    control = st && S_ISCHR(st->st_mode);
  }
  const std::string release = ln::host::kernel().release;
  const bool loaded = exists("/sys/module/dm_verity");
  const bool module = kernel_lists_module(release, "modules.dep", "dm-verity.ko") || kernel_lists_module(release, "modules.builtin", "dm-verity.ko");
  c.facts = Fact::object({{"device_mapper", control}, {"loaded", loaded}, {"module", module}});
  if (control && (loaded || module)) {
    c.summary = loaded ? "device-mapper with the verity target" : "device-mapper; the verity target is a module the kernel loads on first use";
  } else {
    c.verdict = Verdict::missing;
    c.summary = control ? "device-mapper without a verity target" : "no device-mapper (/dev/mapper/control is missing or does not open)";
    c.meaning = "sealed images cannot be checked block by block by the kernel (dm-verity); directory images are unaffected";
  }
  return c;
}

Check check_store(const Settings& s) {
  Check c{"store", Verdict::ok, true, "", "", Fact::object({})};
  auto st = sys::stat_path(s.store);
  if (!st) {
    c.verdict = Verdict::missing;
    c.required = false;
    c.summary = str(s.store, " does not exist");
    c.meaning = "nothing is registered yet: the first build, add or import makes it";
    c.facts = Fact::object({{"path", s.store},
                            {"exists", false},
                            {"owner", nullptr},
                            {"mode", nullptr},
                            {"traversable_by", nullptr},
                            {"readable_images", strings(s.readable_images)},
                            {"images", Fact::list({})}});
    return c;
  }
  std::vector<std::string> problems, notes;
  if (st->st_uid != 0 || (st->st_mode & 022))
    problems.push_back(str(s.store, " is ", owner_and_mode(*st), ": it must belong to root and be writable by no one else"));
  auto keeper = catalogue::root_only_dir(s.store);
  const bool everyone = keeper && !*keeper;
  std::vector<Fact> images;
  std::size_t root_only = 0;
  auto cat = catalogue::load(s);
  if (!cat) {
    problems.push_back(str("the catalogue cannot be read: ", cat.error().what()));
  } else {
    for (const auto& e : cat->entries) {
      const auto& v = e.current;
      auto exp = catalogue::root_only_dir(v.root);
      std::vector<std::string> privileged;
      bool breaks = false;
      if (exp && !*exp) {
        // Every host user can reach this tree: it must hold nothing privileged.
        auto m = manifest::load(v.image + "/manifest");
        if (m) privileged = catalogue::privileged_entries(*m);
        else notes.push_back(str(e.name, ": ", m.error().what()));
        breaks = !privileged.empty();
        if (breaks) problems.push_back(str(e.name, ": every host user can reach ", v.root, ", which holds ", catalogue::list_privileged(privileged)));
        if (!s.readable(e.name)) notes.push_back(str(e.name, " is reachable by every user but not in readable_images"));
      } else if (exp) {
        ++root_only;
        if (s.readable(e.name))
          notes.push_back(str(e.name, " is in readable_images but only root can reach it (", **exp, "): 'chrootctl verify ", e.name, "' opens it"));
      } else {
        notes.push_back(str(e.name, ": ", exp.error().what()));
      }
      images.push_back(Fact::object({{"name", e.name},
                                     {"image", v.image},
                                     {"reachable_by", exp && *exp ? Fact("root")
                                                      : exp       ? Fact("everyone")
                                                                  : Fact()},
                                     {"readable_images", s.readable(e.name)},
                                     {"privileged_entries", static_cast<std::uint64_t>(privileged.size())},
                                     {"breaks_rule", breaks}}));
    }
  }
  c.facts = Fact::object({{"path", s.store},
                          {"exists", true},
                          {"owner", static_cast<std::uint64_t>(st->st_uid)},
                          {"mode", mode_octal(st->st_mode & 07777)},
                          {"traversable_by", everyone ? Fact("everyone")
                                             : keeper ? Fact("root")
                                                      : Fact()},
                          {"readable_images", strings(s.readable_images)},
                          {"images", Fact::list(std::move(images))}});
  const std::size_t count = cat ? cat->entries.size() : 0;
  c.summary = str(s.store, " (", owner_and_mode(*st), ", traversable by ", everyone ? "every user" : "root only", "): ", count,
                  count == 1 ? " image, " : " images, ", root_only, " reachable by root only");
  if (!problems.empty()) {
    c.verdict = Verdict::error;
    c.meaning = join(problems, "; ");
  } else if (!notes.empty()) {
    c.verdict = Verdict::degraded;
    c.meaning = join(notes, "; ");
  }
  return c;
}

Check check_trusted_keys(const Settings& s) {
  Check c{"trusted-keys", Verdict::ok, s.require_signature, "", "", Fact::object({})};
  auto store = catalogue::load_trust_store(s.trusted_keys);
  if (!store) {
    c.verdict = Verdict::error;
    c.summary = str("cannot read the trusted keys in ", s.trusted_keys);
    c.meaning = str(store.error().what(), "; signed images are refused until this is fixed");
    c.required = true;
    c.facts = Fact::object(
        {{"directory", s.trusted_keys}, {"keys", Fact::list({})}, {"revoked", Fact::list({})}, {"require_signature", s.require_signature}});
    return c;
  }
  std::vector<Fact> keys, revoked;
  std::vector<std::string> ids;
  for (const auto& k : store->trusted) {
    keys.push_back(Fact::object({{"id", k.id()}, {"file", k.source()}}));
    ids.push_back(k.id());
  }
  for (const auto& k : store->revoked) revoked.push_back(Fact::object({{"id", k.id()}, {"file", k.source()}}));
  c.facts = Fact::object({{"directory", s.trusted_keys},
                          {"keys", Fact::list(std::move(keys))},
                          {"revoked", Fact::list(std::move(revoked))},
                          {"require_signature", s.require_signature}});
  c.summary = ids.empty() ? str("no trusted key in ", s.trusted_keys, s.require_signature ? "" : " (signatures are not required)")
                          : str(ids.size(), ids.size() == 1 ? " trusted key (" : " trusted keys (", join(ids, ", "), ") in ", s.trusted_keys,
                                store->revoked.empty() ? std::string() : str(", ", store->revoked.size(), " revoked"));
  if (ids.empty() && s.require_signature) {
    c.verdict = Verdict::missing;
    c.meaning = "require_signature is set and no key is trusted: every image is refused";
  }
  return c;
}

Check check_job_ids(const Settings& s, const DoctorOptions& o) {
  Check c{"job-ids", Verdict::ok, true, "", "", Fact::object({})};
  ln::IdRange range;
  if (s.job_ids_start) range.start = *s.job_ids_start;
  if (s.job_ids_count) range.count = *s.job_ids_count;
  const std::uint64_t end = static_cast<std::uint64_t>(range.start) + range.count;
  std::vector<IdHolder> users, groups;
  std::vector<std::string> unread;
  auto read = [&](const std::string& file) -> std::string {
    auto t = sys::read_file(file, 64u << 20);
    if (!t && t.error().sys_errno() != ENOENT) unread.push_back(t.error().what());
    return t ? *t : std::string();
  };
  for (auto& h : account_ids(read(o.passwd_file), o.passwd_file, "user")) users.push_back(std::move(h));
  for (auto& h : subordinate_ids(read(o.subuid_file), o.subuid_file)) users.push_back(std::move(h));
  for (auto& h : account_ids(read(o.group_file), o.group_file, "group")) groups.push_back(std::move(h));
  for (auto& h : subordinate_ids(read(o.subgid_file), o.subgid_file)) groups.push_back(std::move(h));
  // Users and groups of other NSS sources that list their entries (LDAP, SSSD with enumerate).
  if (o.passwd_file == "/etc/passwd") {
    ::setpwent();
    while (const passwd* p = ::getpwent())
      if (p->pw_uid >= range.start && p->pw_uid < end)
        users.push_back({str("user ", p->pw_name, " (uid ", p->pw_uid, ") of the user database"), p->pw_uid, 1});
    ::endpwent();
    ::setgrent();
    while (const group* g = ::getgrent())
      if (g->gr_gid >= range.start && g->gr_gid < end)
        groups.push_back({str("group ", g->gr_name, " (gid ", g->gr_gid, ") of the group database"), g->gr_gid, 1});
    ::endgrent();
  }
  std::vector<std::string> overlaps = id_overlaps(range.start, range.count, users);
  for (auto& g : id_overlaps(range.start, range.count, groups)) overlaps.push_back(std::move(g));
  // One NSS entry may be the file's own line, listed twice: keep each id once.
  std::sort(overlaps.begin(), overlaps.end());
  overlaps.erase(std::unique(overlaps.begin(), overlaps.end()), overlaps.end());
  auto valid = ln::check_id_range(range);
  std::uint64_t in_use = 0;
  if (auto d = sys::open_dir(ln::id_claims_dir(ln::default_state_dir())))
    if (auto entries = sys::read_dir(d->get()))
      for (const auto& e : *entries) in_use += parse_u64(e.name).has_value();
  c.facts = Fact::object({{"start", static_cast<std::uint64_t>(range.start)},
                          {"count", static_cast<std::uint64_t>(range.count)},
                          {"blocks", static_cast<std::uint64_t>(range.count / ln::k_id_block_size)},
                          {"blocks_in_use", in_use},
                          {"configured", s.job_ids_start.has_value()},
                          {"overlaps", strings(overlaps)},
                          {"unreadable", strings(unread)}});
  c.summary = str(range.start, "-", end - 1, " (", range.count / ln::k_id_block_size, " blocks of ", ln::k_id_block_size, ", ",
                  s.job_ids_start ? "job_ids in the configuration" : "the default", "), ", in_use, " in use");
  if (!valid) {
    c.verdict = Verdict::error;
    c.meaning = valid.error().what();
  } else if (!overlaps.empty()) {
    c.verdict = Verdict::error;
    std::vector<std::string> shown(overlaps.begin(), overlaps.begin() + static_cast<long>(std::min<std::size_t>(overlaps.size(), 5)));
    c.meaning = str("the range overlaps ids the host already gives out: ", join(shown, "; "),
                    overlaps.size() > 5 ? str(" and ", overlaps.size() - 5, " more") : std::string(),
                    ". A job's processes and files would have those ids: choose job_ids = { start, count } that no one has");
  } else if (!unread.empty()) {
    c.verdict = Verdict::error;
    c.meaning = str("cannot check the range against ", join(unread, "; "));
  }
  return c;
}

Check check_accounting(const Settings& s) {
  Check c{"accounting", Verdict::ok, s.accounting.enabled, "", "", Fact::object({})};
  const std::string dir = s.accounting.path.substr(0, std::max<std::size_t>(1, s.accounting.path.find_last_of('/')));
  auto dst = sys::stat_path(dir);
  auto ust = sys::lstat_path(dir + "/users");
  auto fst = sys::lstat_path(s.accounting.path);
  c.facts = Fact::object({{"enabled", s.accounting.enabled},
                          {"path", s.accounting.path},
                          {"max_bytes", s.accounting.max_bytes},
                          {"keep", s.accounting.keep},
                          {"directory_exists", dst.has_value()},
                          {"users_directory_mode", ust ? Fact(mode_octal(ust->st_mode & 07777)) : Fact()},
                          {"size", fst ? Fact(static_cast<std::uint64_t>(fst->st_size)) : Fact()}});
  if (!s.accounting.enabled) {
    c.verdict = Verdict::degraded;
    c.summary = "accounting is off ([accounting] enabled = false)";
    c.meaning = "launches are not recorded";
    return c;
  }
  std::vector<std::string> problems;
  if (dst && (dst->st_uid != 0 || (dst->st_mode & 022)))
    problems.push_back(str(dir, " is ", owner_and_mode(*dst), ": it must belong to root and be writable by no one else"));
  if (ust && (!S_ISDIR(ust->st_mode) || ust->st_uid != 0 || (ust->st_mode & 07777) != 01733))
    problems.push_back(str(dir, "/users is ", owner_and_mode(*ust), ": it must be a directory of root's with mode 1733"));
  if (fst && (!S_ISREG(fst->st_mode) || fst->st_uid != 0 || (fst->st_mode & 022) || fst->st_nlink != 1))
    problems.push_back(str(s.accounting.path, " is ", owner_and_mode(*fst), ": it must be a regular file of root's, writable by no one else"));
  c.summary = str(s.accounting.path, fst ? str(" (", human_size(static_cast<std::uint64_t>(fst->st_size)), ")") : std::string(" (not written yet)"),
                  ", rotated at ", human_size(s.accounting.max_bytes), ", ", s.accounting.keep, " kept");
  if (!problems.empty()) {
    c.verdict = Verdict::error;
    c.meaning = join(problems, "; ") + ": launches go on, but are not recorded";
  } else if (!ust) {
    // Not a failure: root's first launch (or systemd-tmpfiles at boot) makes it.
    c.verdict = Verdict::degraded;
    c.required = false;
    c.meaning = str(dir,
                    "/users is missing: launches by users other than root are not recorded until root's first launch or "
                    "systemd-tmpfiles makes it");
  }
  return c;
}

// Files of the HTCondor configuration: the main file's local config and config.d/*.
std::vector<std::string> condor_files(const std::string& dir) {
  std::vector<std::string> out;
  for (const char* f : {"/condor_config", "/condor_config.local"})
    if (exists(dir + f)) out.push_back(dir + f);
  glob_t g{};
  if (::glob((dir + "/config.d/*").c_str(), 0, nullptr, &g) == 0)
    for (std::size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
  ::globfree(&g);
  return out;
}

Check check_htcondor(const DoctorOptions& o) {
  Check c{"htcondor", Verdict::ok, false, "", "", Fact::object({})};
  std::optional<std::string> wrapper, wrapper_where;
  catalogue::NamedChrootSetting named;
  for (const auto& file : condor_files(o.condor_config_dir)) {
    auto text = sys::read_file(file, 16u << 20);
    if (!text) continue;
    for (const auto& l : catalogue::logical_lines(*text)) {
      const std::string_view t = trim(l.text);
      const auto eq = t.find('=');
      if (t.empty() || t[0] == '#' || eq == std::string_view::npos) continue;
      std::string name(trim(t.substr(0, eq)));
      for (char& ch : name) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      if (name == "USER_JOB_WRAPPER" || name == "STARTER.USER_JOB_WRAPPER") {
        wrapper = std::string(trim(t.substr(eq + 1)));
        wrapper_where = str(file, ":", l.line);
      }
    }
    if (auto n = catalogue::find_named_chroot(*text, file); n.found) named = n;
  }
  std::optional<std::string> problem;
  bool runs_chrootctl = false;
  if (wrapper) {
    auto script = sys::read_file(*wrapper, 1u << 20);
    if (!script) problem = str("USER_JOB_WRAPPER (", *wrapper_where, ") is ", *wrapper, ", which cannot be read: ", script.error().what());
    else if (!sys::access_path(*wrapper, X_OK)) problem = str(*wrapper, " is not executable");
    else runs_chrootctl = script->find("condor-wrapper") != std::string::npos;
  }
  c.facts = Fact::object({{"config_dir", o.condor_config_dir},
                          {"user_job_wrapper", wrapper},
                          {"defined_at", wrapper_where},
                          {"runs_chrootctl", runs_chrootctl},
                          {"named_chroot", named.found ? Fact(named.value) : Fact()}});
  if (!wrapper && !named.found) {
    c.verdict = Verdict::missing;
    c.summary = str("no USER_JOB_WRAPPER or NAMED_CHROOT in ", o.condor_config_dir);
    c.meaning =
        "HTCondor jobs that ask for a root (+RequestedChroot) are not run by chrootctl: 'chrootctl condor-config --wrapper' writes the configuration";
    return c;
  }
  if (problem) {
    c.verdict = Verdict::error;
    c.summary = str("USER_JOB_WRAPPER = ", *wrapper, " (", *wrapper_where, ")");
    c.meaning = *problem + ": HTCondor fails every job on this machine";
    return c;
  }
  if (wrapper && !runs_chrootctl) {
    c.verdict = named.found ? Verdict::degraded : Verdict::missing;
    c.summary = str("USER_JOB_WRAPPER = ", *wrapper, " (", *wrapper_where, ") does not run 'chrootctl condor-wrapper'");
    c.meaning = named.found ? "only NAMED_CHROOT (HTCondor 25.0 and older) runs jobs in roots; HTCondor 25.5 and later ignore it"
                            : "HTCondor jobs that ask for a root are not run by chrootctl";
    return c;
  }
  if (wrapper) {
    c.summary = str("USER_JOB_WRAPPER = ", *wrapper, " (", *wrapper_where, ") runs chrootctl condor-wrapper");
  } else {
    c.verdict = Verdict::degraded;
    c.summary = str("NAMED_CHROOT (", named.where, "), no chrootctl job wrapper");
    c.meaning = "HTCondor 25.5 and later ignore NAMED_CHROOT and run such jobs on the host: 'chrootctl condor-config --wrapper'";
  }
  return c;
}

Check check_slurm(const DoctorOptions& o) {
  Check c{"slurm", Verdict::ok, false, "", "", Fact::object({})};
  std::vector<std::string> files{o.slurm_plugstack};
  std::vector<PlugstackLine> lines;
  std::vector<std::string> read;
  for (std::size_t i = 0; i < files.size() && i < 64; ++i) {
    auto text = sys::read_file(files[i], 1u << 20);
    if (!text) continue;
    read.push_back(files[i]);
    for (auto& l : find_plugstack_lines(*text, files[i])) lines.push_back(std::move(l));
    // `include PATTERN` lines, relative to the file's directory.
    for (const auto& raw : split(*text, '\n')) {
      const std::string_view t = trim(raw);
      if (!starts_with(t, "include ")) continue;
      std::string pattern(trim(t.substr(8)));
      if (!pattern.empty() && pattern[0] != '/') pattern = files[i].substr(0, files[i].find_last_of('/') + 1) + pattern;
      glob_t g{};
      if (::glob(pattern.c_str(), 0, nullptr, &g) == 0)
        for (std::size_t k = 0; k < g.gl_pathc; ++k) files.emplace_back(g.gl_pathv[k]);
      ::globfree(&g);
    }
  }
  std::vector<Fact> found;
  std::vector<std::string> problems;
  for (const auto& l : lines) {
    auto args = batch::parse_plugstack_args(l.arguments);
    const auto st = sys::stat_path(l.plugin);
    const bool plugin_ok = st && S_ISREG(st->st_mode);
    if (!plugin_ok) problems.push_back(str(l.where, ": the plugin ", l.plugin, " does not exist"));
    if (!args) problems.push_back(str(l.where, ": ", args.error().message()));
    else if (!sys::access_path(args->chrootctl, X_OK)) problems.push_back(str(l.where, ": chrootctl=", args->chrootctl, " is not executable"));
    found.push_back(Fact::object(
        {{"where", l.where}, {"kind", l.kind}, {"plugin", l.plugin}, {"plugin_exists", plugin_ok}, {"arguments", strings(l.arguments)}}));
  }
  c.facts = Fact::object({{"plugstack", o.slurm_plugstack}, {"files", strings(read)}, {"lines", Fact::list(std::move(found))}});
  if (lines.empty()) {
    c.verdict = Verdict::missing;
    c.summary = read.empty() ? str(o.slurm_plugstack, " does not exist") : str("no chrootctl_spank.so line in ", join(read, ", "));
    c.meaning = "Slurm jobs cannot ask for a root (--chroot): add the plugin to plugstack.conf (docs/batch.md)";
    return c;
  }
  c.summary = str(lines[0].kind, " ", lines[0].plugin, " (", lines[0].where, ")");
  if (!problems.empty()) {
    c.verdict = Verdict::error;
    c.meaning = join(problems, "; ");
  } else if (lines[0].kind == "optional") {
    c.verdict = Verdict::degraded;
    c.meaning = "with 'optional', a node that cannot load the plugin runs --chroot jobs on the host: use 'required'";
  }
  return c;
}

}  // namespace

Report run_doctor(const Settings& s, const std::optional<Error>& config_error, const DoctorOptions& o) {
  Report r;
  r.config_file = s.config_file;
  const auto k = ln::host::kernel();
  const auto calls = ln::host::syscalls();
  r.checks.push_back(check_config(s, config_error));
  r.checks.push_back(check_kernel(k));
  r.checks.push_back(check_cgroups());
  r.checks.push_back(check_user_namespaces(s));
  r.checks.push_back(check_idmap(s, o.sandbox));
  r.checks.push_back(
      check_syscall("openat2", calls.openat2, "5.6", "mount targets are resolved by a component-by-component walk that refuses every symlink"));
  r.checks.push_back(check_syscall("mount_setattr", calls.mount_api, "5.12",
                                   "no detached or idmapped mounts: jobs run with their own ids only, jobs as root are refused, "
                                   "and init binds the image and sources by path"));
  r.checks.push_back(check_syscall("clone3", calls.clone3, "5.3", "init is started with clone(2) and joins its cgroup itself"));
  r.checks.push_back(check_syscall("close_range", calls.close_range, "5.9", "descriptors are closed one by one from /proc/self/fd"));
  r.checks.push_back(check_seccomp(s));
  r.checks.push_back(check_loop());
  r.checks.push_back(check_verity());
  r.checks.push_back(check_store(s));
  r.checks.push_back(check_trusted_keys(s));
  r.checks.push_back(check_job_ids(s, o));
  r.checks.push_back(check_accounting(s));
  r.checks.push_back(check_slurm(o));
  r.checks.push_back(check_htcondor(o));
  return r;
}

// ---- output ----

namespace {

void write_fact(JsonWriter& w, const Fact& f) {
  switch (f.kind()) {
    case Fact::Kind::null:
      w.null();
      break;
    case Fact::Kind::boolean:
      w.value(f.boolean());
      break;
    case Fact::Kind::integer:
      w.value(f.integer());
      break;
    case Fact::Kind::text:
      w.value(f.text());
      break;
    case Fact::Kind::list:
      w.begin_array();
      for (const auto& i : f.items()) write_fact(w, i);
      w.end_array();
      break;
    case Fact::Kind::object:
      w.begin_object();
      for (const auto& [k, v] : f.fields()) {
        w.key(k);
        write_fact(w, v);
      }
      w.end_object();
      break;
  }
}

std::string final_line(const Report& r) {
  std::map<Verdict, std::size_t> n;
  for (const auto& c : r.checks) ++n[c.verdict];
  const auto failed = r.failed_required();
  return str(n[Verdict::ok], " ok, ", n[Verdict::degraded], " degraded, ", n[Verdict::missing], " missing, ", n[Verdict::error], " error; ",
             failed.empty() ? std::string("everything the configuration asks for is available")
                            : str("not available as the configuration asks: ", join(failed, ", ")));
}

}  // namespace

std::string report_json(const Report& r, std::string_view version) {
  JsonWriter w;
  w.begin_object();
  w.field("format", "chrootctl-doctor");
  w.field("version", 1);
  w.field("chrootctl", version);
  w.key("config_file");
  if (r.config_file.empty()) w.null();
  else w.value(r.config_file);
  w.key("checks");
  w.begin_array();
  for (const auto& c : r.checks) {
    w.begin_object();
    w.field("id", c.id);
    w.field("verdict", verdict_name(c.verdict));
    w.field("required", c.required);
    w.field("summary", c.summary);
    w.key("meaning");
    if (c.meaning.empty()) w.null();
    else w.value(c.meaning);
    w.key("facts");
    write_fact(w, c.facts);
    w.end_object();
  }
  w.end_array();
  const auto failed = r.failed_required();
  w.key("failed_required");
  w.begin_array();
  for (const auto& f : failed) w.value(f);
  w.end_array();
  w.field("summary", final_line(r));
  w.field("exit_status", failed.empty() ? 0 : 1);
  w.end_object();
  return w.str();
}

std::string report_text(const Report& r) {
  std::string out;
  for (const auto& c : r.checks) {
    const std::string_view v = verdict_name(c.verdict);
    out += str(v, std::string(10 - v.size(), ' '), c.id, std::string(c.id.size() < 17 ? 17 - c.id.size() : 1, ' '), c.summary, "\n");
    if (!c.meaning.empty()) out += str(std::string(27, ' '), c.required ? "required: " : "", c.meaning, "\n");
  }
  out += str("doctor: ", final_line(r), "\n");
  return out;
}

}  // namespace chrootctl::site
