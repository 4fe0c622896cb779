// chrootctl_spank.so: Slurm jobs in named, verified job roots.
//
//   srun --chroot=EL9 [--chroot-scratch=/tmp,/var/tmp] CMD     (also sbatch, salloc)
//
// Where each hook runs and what it does (docs/batch.md has the whole story):
//   slurm_spank_init             all contexts   reads the plugstack.conf arguments
//   option callback              srun/sbatch    checks the name's syntax at once
//   slurm_spank_init_post_opt    slurmstepd     once per step, as root, before any task exists:
//                                               resolves NAME with `chrootctl resolve --json`,
//                                               makes the step's directory JOBDIRS/JOB.STEP with
//                                               the job user's tmp, var/tmp, dev/shm, and checks
//                                               the root. A failure is kept, not returned:
//                                               Slurm would not pass the message on from here.
//   slurm_spank_task_init_privileged  each task, as root, in the forked task just before
//                                               Slurm drops privileges and execs the job: refuses
//                                               with the message (it reaches srun's output and
//                                               the job's stderr) or enters the root
//                                               (launcher::enter_root).
//                                               A sealed image is mounted for the step with
//                                               `chrootctl mount --hold-for SLURMSTEPD`.
//   slurm_spank_task_init        each task, as the job's user, the last hook before Slurm execs
//                                               the job: no_new_privs and the job's system-call
//                                               filter (read by init_post_opt from the cache
//                                               `chrootctl resolve --with-seccomp` filled)
//   slurm_spank_task_exit        slurmstepd     each task's wait status, as Slurm collects it
//   slurm_spank_exit             slurmstepd     after the step's tasks: writes the step's line in
//                                               the accounting log, removes the step's directory
//                                               and releases the sealed image's mount
//   slurm_spank_job_epilog       slurmd's epilog at job end (no slurm_spank_init there): removes
//                                               what a killed slurmstepd left of the job
//
// Resolving runs chrootctl (a fixed path from plugstack.conf) rather than linking the catalogue,
// so no TOML parser or libcrypto is loaded into slurmstepd; entering the root links the
// launcher, whose code `chrootctl run` uses for the same layout.
#include <fcntl.h>
#include <limits.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

extern "C" {
#include <slurm/slurm.h>
#include <slurm/spank.h>
}

#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/launcher/accounting.hpp"
#include "chrootctl/launcher/enter.hpp"
#include "chrootctl/launcher/seccomp_program.hpp"
#include "resolver.hpp"
#include "spank_config.hpp"

#define CHROOTCTL_SPANK_EXPORT __attribute__((visibility("default")))

namespace {

namespace cb = chrootctl::batch;
namespace ln = chrootctl::launcher;
using chrootctl::Errc;
using chrootctl::Error;
using chrootctl::fail;
using chrootctl::Fd;
using chrootctl::quote;
using chrootctl::Result;
using chrootctl::Status;
using chrootctl::str;
using chrootctl::terminal_safe;
namespace sys = chrootctl::sys;

// The plugin's state in one process (srun, sbatch, or one slurmstepd and its forked tasks).
struct State {
  std::optional<cb::SpankConfig> config;
  std::optional<std::string> chroot;   // --chroot value
  std::optional<std::string> scratch;  // --chroot-scratch value
  // slurmstepd, from init_post_opt on:
  bool wanted = false;  // this step asked for a root
  std::string refusal;  // why its tasks must not start (reported by each task)
  std::optional<ln::EnterOptions> enter;
  std::string label;  // "EL9 (sha256:...)" for logs
  std::uint32_t job_id = 0;
  std::uint32_t step_id = 0;
  std::string step_dir_name;  // made by this slurmstepd below jobdirs=, removed at exit
  // The step's accounting line, written at exit once its tasks are collected:
  std::optional<cb::ResolvedName> resolved;
  std::int64_t start_ns = 0;
  uid_t uid = 0;
  struct rusage children_before {};  // of what slurmstepd reaped before the tasks (the resolver)
  std::uint32_t tasks = 0;
  std::optional<int> first_failure;  // the first task wait status that is not a clean exit 0
  int last_status = 0;
  bool mounted = false;  // this slurmstepd holds a sealed image's mount (released at exit)
  // The job's system-call filter, read (as root, from the cache) before any task exists and
  // installed by each task last, as the job's user (slurm_spank_task_init).
  std::optional<ln::SeccompProgram> seccomp;
};
State g_state;

int on_chroot(int, const char* optarg, int remote) {
  const std::string value = optarg ? optarg : "";
  if (!remote) {
    // srun, sbatch, salloc: a name that can never resolve fails before the job is queued.
    if (auto why = cb::invalid_chroot_name(value)) {
      // The value is the submitter's: printed terminal-safe, like every message quoting input.
      slurm_error("--chroot=%s: %s", terminal_safe(value).c_str(), terminal_safe(*why).c_str());
      return -1;
    }
  }
  // In slurmstepd the value is kept whatever it is: init_post_opt refuses it there, and the
  // refusal reaches the job's output, which an error returned here would not.
  g_state.chroot = value;
  return 0;
}

int on_chroot_scratch(int, const char* optarg, int remote) {
  const std::string value = optarg ? optarg : "";
  if (!remote) {
    if (auto s = cb::parse_scratch_list(value, "--chroot-scratch"); !s) {
      slurm_error("%s", terminal_safe(s.error().message()).c_str());
      return -1;
    }
  }
  g_state.scratch = value;
  return 0;
}

struct spank_option g_options[] = {
    {const_cast<char*>("chroot"), const_cast<char*>("NAME"),
     const_cast<char*>("Run the job in the verified job root NAME of the chrootctl catalogue."), 1, 0, on_chroot},
    {const_cast<char*>("chroot-scratch"), const_cast<char*>("DIRS"),
     const_cast<char*>("Comma-separated directories private to the job in its root (default /tmp,/var/tmp)."), 1, 0, on_chroot_scratch},
};

template <class T>
bool get_item(spank_t sp, spank_item_t item, T* value) {
  return spank_get_item(sp, item, value) == ESPANK_SUCCESS;
}

// The directory of this step below jobdirs=: made by root, mode 0755, in a base directory that
// must be root's and writable by nobody else. A leftover of the same name (a slurmstepd killed
// before its exit hook, and a job id used again) is removed first.
Result<std::string> make_step_dir(const cb::SpankConfig& c, const std::string& name) {
  TRY(sys::mkdir_p(c.jobdirs, 0755));
  Fd base = TRY(sys::open_dir(c.jobdirs));
  auto st = TRY(sys::fstat(base.get()));
  if (st.st_uid != 0 || (st.st_mode & 022))
    return fail(Errc::permission, str("jobdirs=", c.jobdirs, " must be owned by root and not writable by group or others (owner uid ", st.st_uid,
                                      ", mode ", chrootctl::mode_octal(st.st_mode & 07777), ")"));
  auto made = sys::mkdir_at(base.get(), name, 0755);
  if (!made && made.error().sys_errno() == EEXIST) {
    TRY(sys::remove_tree_at(base.get(), name));
    made = sys::mkdir_at(base.get(), name, 0755);
  }
  TRY(std::move(made));
  Fd dir = TRY(sys::open_dir_at(base.get(), name));
  if (::fchmod(dir.get(), 0755) != 0) return chrootctl::fail_errno(str("fchmod(", quote(c.jobdirs + "/" + name), ", 0755)"), errno);
  return c.jobdirs + "/" + name;
}

// Everything a step needs before its tasks exist; an error here is the step's refusal.
Status prepare_step(spank_t sp) {
  const cb::SpankConfig& c = *g_state.config;
  const std::string& name = *g_state.chroot;
  if (auto why = cb::invalid_chroot_name(name)) return fail(Errc::invalid_argument, *why);
  uid_t uid = 0;
  gid_t gid = 0;
  if (!get_item(sp, S_JOB_UID, &uid) || !get_item(sp, S_JOB_GID, &gid)) return fail(Errc::internal, "cannot read the job's uid and gid from Slurm");
  // Without a PID namespace a root job could leave the root through /proc/PID/root of a host
  // process: the root would be no boundary at all, so it is not offered.
  if (uid == 0) return fail(Errc::permission, "jobs of root are not run in job roots (root could leave them through /proc)");
  std::vector<std::string> scratch = c.scratch;
  if (g_state.scratch) scratch = TRY(cb::parse_scratch_list(*g_state.scratch, "--chroot-scratch"));

  g_state.uid = uid;
  const cb::ResolvedName resolved = TRY(cb::run_resolver(c, name));
  g_state.resolved = resolved;
  if (resolved.seccomp_policy != "none")
    g_state.seccomp = TRY(with_context(ln::read_seccomp_program(resolved.seccomp_program, resolved.seccomp_policy, resolved.seccomp_digest),
                                       str("the job's system-call filter (policy ", quote(resolved.seccomp_policy), ")")));
  if (::getrusage(RUSAGE_CHILDREN, &g_state.children_before) != 0) g_state.children_before = {};
  g_state.label = resolved.entry == name ? str(name, " (sha256:", resolved.digest, ")")
                                         : str(name, " (alias of ", resolved.entry, ", sha256:", resolved.digest, ")");
  std::string root = resolved.root;
  std::optional<ln::RootId> root_id;
  if (resolved.sealed) {
    // A sealed image: the node's shared mount of it, held for this slurmstepd until the step
    // ends (slurm_spank_exit), or, if slurmstepd is killed, until cleanup or the next launch
    // finds it gone (docs/sealed.md).
    const cb::MountedImage m = TRY(cb::run_mount(c, name, ::getpid()));
    g_state.mounted = true;
    root = m.root;
    root_id = ln::RootId{m.dev, m.ino};
  }

  const std::string dir_name = cb::step_dir_name(g_state.job_id, g_state.step_id);
  const std::string dir = TRY(make_step_dir(c, dir_name));
  g_state.step_dir_name = dir_name;

  ln::EnterOptions o;
  o.root = root;
  o.root_id = root_id;
  o.job_dir = dir;
  o.mount_under_scratch = scratch;
  o.binds = c.binds;
  o.uid = uid;
  o.gid = gid;
  // The root checked and the scratch directories made once, here, rather than by every task.
  auto plan = TRY(ln::plan_enter(o));
  TRY(ln::prepare_enter(plan));
  g_state.enter = std::move(o);
  return {};
}

void remove_step_dir() {
  if (g_state.step_dir_name.empty() || !g_state.config) return;
  auto base = sys::open_dir(g_state.config->jobdirs);
  if (!base) {
    slurm_error("chrootctl: removing %s/%s: %s", g_state.config->jobdirs.c_str(), g_state.step_dir_name.c_str(), base.error().what().c_str());
    return;
  }
  if (auto r = sys::remove_tree_at(base->get(), g_state.step_dir_name); !r)
    slurm_error("chrootctl: removing %s/%s: %s", g_state.config->jobdirs.c_str(), g_state.step_dir_name.c_str(), r.error().what().c_str());
  g_state.step_dir_name.clear();
}

double seconds(const struct timeval& tv) { return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6; }

// The step's line in the accounting log: its tasks on this node as one launch. CPU time and the
// largest process come from what slurmstepd reaped (its tasks), less what it had reaped before
// them (the resolver); limits and peak memory are Slurm's own (its cgroup plugins), not ours.
void write_accounting() {
  if (!g_state.wanted || !g_state.resolved || !g_state.resolved->accounting || !g_state.chroot) return;
  ln::AccountingRecord r;
  r.via = "slurm";
  r.start_ns = g_state.start_ns;
  r.end_ns = ln::wall_clock_ns();
  r.invoking_uid = ::getuid();
  r.job_uid = g_state.uid;
  r.image = *g_state.chroot;
  r.entry = g_state.resolved->entry;
  r.build_id = g_state.resolved->build_id;
  r.tree_digest = g_state.resolved->digest;
  r.signer = g_state.resolved->signer;
  r.root = g_state.resolved->root;
  r.batch_system = "slurm";
  r.batch_job_id = cb::step_dir_name(g_state.job_id, g_state.step_id);
  r.tasks = g_state.tasks;
  ln::Outcome& o = r.outcome;
  o.cgroup = "none";
  if (!g_state.refusal.empty()) {
    o.kind = ln::Outcome::Kind::setup_failed;
    o.error = g_state.refusal;
  } else {
    const int status = g_state.first_failure.value_or(g_state.last_status);
    if (WIFSIGNALED(status)) {
      o.kind = ln::Outcome::Kind::signaled;
      o.code = WTERMSIG(status);
    } else {
      o.kind = ln::Outcome::Kind::exited;
      o.code = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
    }
    struct rusage now {};
    if (::getrusage(RUSAGE_CHILDREN, &now) == 0) {
      o.cpu_user_seconds = seconds(now.ru_utime) - seconds(g_state.children_before.ru_utime);
      o.cpu_system_seconds = seconds(now.ru_stime) - seconds(g_state.children_before.ru_stime);
      o.max_rss_bytes = static_cast<std::uint64_t>(now.ru_maxrss) * 1024;
    }
  }
  if (auto w = ln::append_accounting_line(*g_state.resolved->accounting, ln::accounting_line(r)); !w)
    slurm_error("chrootctl: job %u: accounting: %s", g_state.job_id, terminal_safe(w.error().what()).c_str());
}

Status enter_task(spank_t sp) {
  ln::EnterOptions o = *g_state.enter;
  // Slurm forks each task in the job's working directory (it chdirs there as the job user
  // just before): that directory appears at its own path, as the job's cwd.
  // The path is the user's to change: root binds it only if it is still the directory the
  // task is in (a symlink swapped in would bind, as root, one the user cannot reach).
  char cwd[PATH_MAX];
  if (!::getcwd(cwd, sizeof cwd)) return chrootctl::fail_errno("getcwd() of the task", errno);
  const auto here = TRY(with_context(chrootctl::sys::stat_path("."), "the task's working directory"));
  o.binds.push_back({cwd, cwd, false, ln::RootId{here.st_dev, here.st_ino}});
  o.cwd = cwd;
  // A batch step runs the script slurmd wrote into its spool directory: bound read-only at
  // its own path, since the image has no such file.
  if (g_state.step_id == SLURM_BATCH_SCRIPT) {
    int argc = 0;
    char** argv = nullptr;
    if (spank_get_item(sp, S_JOB_ARGV, &argc, &argv) == ESPANK_SUCCESS && argc > 0 && argv && argv[0] && argv[0][0] == '/')
      o.binds.push_back({argv[0], argv[0], true});
  }
  auto plan = TRY(with_context(ln::plan_enter(o), str("the job's working directory is ", quote(std::string(cwd)))));
  return ln::enter_root(plan);
}

}  // namespace

extern "C" {

CHROOTCTL_SPANK_EXPORT extern const char plugin_name[] = "chrootctl";
CHROOTCTL_SPANK_EXPORT extern const char plugin_type[] = "spank";
CHROOTCTL_SPANK_EXPORT extern const unsigned int plugin_version = SLURM_VERSION_NUMBER;
CHROOTCTL_SPANK_EXPORT extern const unsigned int spank_plugin_version = 1;

CHROOTCTL_SPANK_EXPORT int slurm_spank_init(spank_t sp, int ac, char** av) {
  std::vector<std::string> args;
  args.reserve(static_cast<std::size_t>(ac));
  for (int i = 0; i < ac; ++i) args.emplace_back(av[i]);
  auto c = cb::parse_plugstack_args(args);
  if (!c) {
    slurm_error("chrootctl: plugstack.conf: %s", c.error().message().c_str());
    return -1;
  }
  g_state.config = std::move(*c);
  // Registered here rather than through a spank_options table, which sbatch and salloc ignore.
  const spank_context_t ctx = spank_context();
  if (ctx == S_CTX_LOCAL || ctx == S_CTX_REMOTE || ctx == S_CTX_ALLOCATOR) {
    for (auto& o : g_options) {
      if (const spank_err_t rc = spank_option_register(sp, &o); rc != ESPANK_SUCCESS) {
        slurm_error("chrootctl: registering --%s: %s", o.name, spank_strerror(rc));
        return -1;
      }
    }
  }
  return 0;
}

CHROOTCTL_SPANK_EXPORT int slurm_spank_init_post_opt(spank_t sp, int, char**) {
  if (spank_context() != S_CTX_REMOTE || !g_state.chroot || !g_state.config) return 0;
  if (!get_item(sp, S_JOB_ID, &g_state.job_id) || !get_item(sp, S_JOB_STEPID, &g_state.step_id)) {
    g_state.wanted = true;
    g_state.refusal = str("--chroot=", *g_state.chroot, ": cannot read the job and step ids from Slurm");
    return 0;
  }
  // The extern step (pam_slurm_adopt) runs no job code of its own.
  if (g_state.step_id == SLURM_EXTERN_CONT) return 0;
  g_state.wanted = true;
  g_state.start_ns = ln::wall_clock_ns();
  if (auto r = prepare_step(sp); !r) {
    g_state.refusal = str("--chroot=", *g_state.chroot, ": ", r.error().what());
    slurm_error("chrootctl: job %u: %s", g_state.job_id, terminal_safe(g_state.refusal).c_str());
    remove_step_dir();
  }
  return 0;
}

CHROOTCTL_SPANK_EXPORT int slurm_spank_task_init_privileged(spank_t sp, int, char**) {
  if (!g_state.wanted) return 0;
  if (!g_state.refusal.empty() || !g_state.enter) {
    // Printed by the task, whose log reaches srun and the job's error file; the job never runs.
    slurm_error("chrootctl: %s; the job was not started",
                g_state.refusal.empty() ? "the job root was not prepared" : terminal_safe(g_state.refusal).c_str());
    return -1;
  }
  if (auto r = enter_task(sp); !r) {
    slurm_error("chrootctl: --chroot=%s: cannot enter %s: %s; the job was not started", terminal_safe(*g_state.chroot).c_str(),
                terminal_safe(g_state.enter->root).c_str(), terminal_safe(r.error().what()).c_str());
    return -1;
  }
  int task = -1;
  (void)get_item(sp, S_TASK_ID, &task);
  slurm_verbose("chrootctl: task %d of job %u runs in %s", task, g_state.job_id, g_state.label.c_str());
  return 0;
}

CHROOTCTL_SPANK_EXPORT int slurm_spank_task_init(spank_t, int, char**) {
  if (!g_state.wanted || !g_state.seccomp) return 0;
  // Each task, as the job's user, the last hook before Slurm execs it: no_new_privs (which a
  // filter loaded without CAP_SYS_ADMIN needs, and which keeps setuid files from raising
  // privileges inside the job), then the filter. A task that cannot have its filter is not run.
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    slurm_error("chrootctl: --chroot=%s: prctl(PR_SET_NO_NEW_PRIVS): %s; the job was not started", terminal_safe(*g_state.chroot).c_str(),
                sys::errno_message(errno).c_str());
    return -1;
  }
  if (auto r = ln::install_seccomp_program(*g_state.seccomp); !r) {
    slurm_error("chrootctl: --chroot=%s: installing the system-call filter: %s; the job was not started", terminal_safe(*g_state.chroot).c_str(),
                terminal_safe(r.error().what()).c_str());
    return -1;
  }
  return 0;
}

CHROOTCTL_SPANK_EXPORT int slurm_spank_task_exit(spank_t sp, int, char**) {
  if (!g_state.wanted || spank_context() != S_CTX_REMOTE) return 0;
  int status = 0;
  if (!get_item(sp, S_TASK_EXIT_STATUS, &status)) return 0;
  ++g_state.tasks;
  g_state.last_status = status;
  if (!g_state.first_failure && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) g_state.first_failure = status;
  return 0;
}

CHROOTCTL_SPANK_EXPORT int slurm_spank_exit(spank_t, int, char**) {
  if (spank_context() != S_CTX_REMOTE) return 0;
  write_accounting();
  remove_step_dir();
  if (g_state.mounted && g_state.config && g_state.chroot) {
    if (auto r = cb::run_unmount(*g_state.config, *g_state.chroot, ::getpid()); !r)
      slurm_error("chrootctl: job %u: releasing the mount of %s: %s", g_state.job_id, g_state.chroot->c_str(), r.error().what().c_str());
    g_state.mounted = false;
  }
  return 0;
}

CHROOTCTL_SPANK_EXPORT int slurm_spank_job_epilog(spank_t sp, int ac, char** av) {
  // Never fails: a failing epilog of a required plugin drains the node. Errors are logged.
  // Slurm calls no slurm_spank_init in this context: the arguments come with this hook.
  if (!g_state.config) {
    std::vector<std::string> args;
    args.reserve(static_cast<std::size_t>(ac));
    for (int i = 0; i < ac; ++i) args.emplace_back(av[i]);
    auto c = cb::parse_plugstack_args(args);
    if (!c) {
      slurm_error("chrootctl: plugstack.conf: %s", c.error().message().c_str());
      return 0;
    }
    g_state.config = std::move(*c);
  }
  std::uint32_t job = 0;
  if (!get_item(sp, S_JOB_ID, &job)) return 0;
  auto base = sys::open_dir(g_state.config->jobdirs);
  if (!base) return 0;  // no job of this node ever used --chroot
  auto entries = sys::read_dir(base->get());
  if (!entries) {
    slurm_error("chrootctl: job %u epilog: reading %s: %s", job, g_state.config->jobdirs.c_str(), entries.error().what().c_str());
    return 0;
  }
  for (const auto& e : *entries) {
    if (!cb::is_step_dir_of(e.name, job)) continue;
    if (auto r = sys::remove_tree_at(base->get(), e.name); !r)
      slurm_error("chrootctl: job %u epilog: removing %s/%s: %s", job, g_state.config->jobdirs.c_str(), e.name.c_str(), r.error().what().c_str());
  }
  return 0;
}

}  // extern "C"
