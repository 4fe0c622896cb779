// The executor: one function, execute(), that lists every step of a launch in order. Each step
// is a closed operation on data the plan fixed beforehand; the comment on each says why it is
// safe. The child's side (init, the new root, the job) is in init.cpp and mounts.cpp.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <linux/capability.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <optional>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/launcher/cgroups.hpp"
#include "chrootctl/launcher/cleanup.hpp"
#include "chrootctl/launcher/launch.hpp"
#include "chrootctl/launcher/seccomp_program.hpp"
#include "internal.hpp"
#include "kernel.hpp"

namespace chrootctl::launcher {

namespace {

using detail::ReportHeader;

constexpr int k_forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2};

struct Pipe {
  Fd read, write;
  static Result<Pipe> make() {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return fail_errno("pipe2(O_CLOEXEC)", errno);
    return Pipe{Fd(p[0]), Fd(p[1])};
  }
};

// The launcher's and the child's ends of a socket pair: the launcher sends with MSG_NOSIGNAL,
// so a child that has already failed is reported through its report, not by a SIGPIPE that
// would kill the launcher before it removes the cgroup.
struct Channel {
  Fd launcher, child;
  static Result<Channel> make() {
    int s[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) != 0)
      return fail_errno("socketpair(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC)", errno);
    return Channel{Fd(s[0]), Fd(s[1])};
  }
};

// Restores the caller's signal mask when the launch is over (also on early returns).
struct SignalGuard {
  sigset_t old{};
  bool active = false;
  ~SignalGuard() {
    if (active) ::sigprocmask(SIG_SETMASK, &old, nullptr);
  }
};

void fill_from_report(Outcome& out, const ReportHeader& h, const std::string& text) {
  switch (h.kind) {
    case detail::k_job_ended:
      if (WIFEXITED(h.value)) {
        out.kind = Outcome::Kind::exited;
        out.code = WEXITSTATUS(h.value);
      } else if (WIFSIGNALED(h.value)) {
        out.kind = Outcome::Kind::signaled;
        out.code = WTERMSIG(h.value);
      }
      break;
    case detail::k_exec_failed:
      out.kind = h.value == ENOENT ? Outcome::Kind::not_found : Outcome::Kind::not_executable;
      out.error = text;
      break;
    case detail::k_setup_failed:
    default:
      out.kind = Outcome::Kind::setup_failed;
      out.error = text;
      break;
  }
}

// The report stream from the child: messages may arrive several per read, so bytes are
// collected and complete messages taken off the front.
struct ReportReader {
  Fd fd;
  std::string buffer;
  std::optional<ReportHeader> last;
  std::string text;
  bool job_started = false;
  // Reads what is there and handles every complete message; false at EOF.
  bool read_some() {
    char buf[4096];
    const ssize_t n = sys::retry_eintr([&] { return ::read(fd.get(), buf, sizeof buf); });
    if (n <= 0) {
      fd.reset();
      return false;
    }
    buffer.append(buf, static_cast<std::size_t>(n));
    while (buffer.size() >= sizeof(ReportHeader)) {
      ReportHeader h{};
      std::memcpy(&h, buffer.data(), sizeof h);
      const std::size_t len = std::min<std::size_t>(h.length, detail::k_max_report_text);
      if (buffer.size() < sizeof h + len) break;
      if (h.kind == detail::k_job_started) {
        job_started = true;
      } else {
        last = h;
        text.assign(buffer, sizeof h, len);
      }
      buffer.erase(0, sizeof h + len);
    }
    return true;
  }
};

constexpr std::size_t k_init_stack = 1024 * 1024;

struct InitStart {
  const LaunchPlan* plan;
  const detail::ChildHandles* h;
};

int init_entry(void* arg) {
  const auto* s = static_cast<const InitStart*>(arg);
  detail::init_main(*s->plan, *s->h);  // never returns
}

// Init, sharing this process's memory, was killed while it could have been in the middle of
// an allocation: nothing on the heap can be trusted. Says so without allocating and exits;
// the launch record stays, so the next 'chrootctl run' or 'chrootctl cleanup' removes the
// job's cgroup, as after a SIGKILL of this process.
[[noreturn]] void exit_without_heap(int signal) {
  char msg[256];
  const int n = std::snprintf(msg, sizeof msg,
                              "chrootctl: the launch's init process was killed by signal %d while it set up or "
                              "ended the job; its cgroup is left to 'chrootctl cleanup'\n",
                              signal);
  if (n > 0) (void)!::write(2, msg, std::min<std::size_t>(static_cast<std::size_t>(n), sizeof msg - 1));
  ::_exit(125);
}

}  // namespace

int Outcome::exit_status() const {
  switch (kind) {
    case Kind::exited: return code;
    case Kind::signaled: return 128 + code;
    case Kind::setup_failed: return 125;
    case Kind::not_executable: return 126;
    case Kind::not_found: return 127;
  }
  return 125;
}

Outcome execute(const LaunchPlan& plan, const std::function<void(const std::string&)>& warn) {
  Outcome out;
  out.cgroup = "none";
  out.seccomp_policy = plan.seccomp.program.empty() ? "none" : plan.seccomp.policy;
  out.seccomp_digest = plan.seccomp.program.empty() ? std::string() : plan.seccomp.digest;
  auto setup_failed = [&](const Error& e) {
    out.kind = Outcome::Kind::setup_failed;
    out.error = e.what();
    return out;
  };
  auto say = [&](const std::string& m) {
    if (warn) warn(m);
  };
#define STEP(...)                                        \
  ({                                                     \
    auto step_r_ = (__VA_ARGS__);                        \
    if (!step_r_) return setup_failed(step_r_.error());  \
    chrootctl::detail::take_value(std::move(step_r_));   \
  })

  // 1. Refuse an installation that would let callers borrow root (setuid), and a caller whose
  //    other threads could hold locks the cloned child would inherit held.
  if (::getuid() != ::geteuid() || ::getgid() != ::getegid())
    return setup_failed(Error(Errc::permission, "chrootctl must not be installed setuid or setgid"));
  const kernel::SelfStat self = STEP(kernel::self_stat());
  if (self.threads != 1)
    return setup_failed(Error(Errc::internal, "the launcher must be called from a single-threaded process"));

  // The launch is a relay: this process, then init, then the job, then init and this process
  // again, each waiting for the one before. On a second, idle CPU the scheduler would wake
  // some of them there, paying an inter-processor wake-up and cold caches for no parallelism;
  // so the launch stays on the CPU it started on, and the job gets the caller's CPU set back
  // before its exec (restored here too when the launch is over).
  kernel::CpuPin pin;

  // 2. Open the root and every bind source now, on the host, before any namespace: the child
  //    only ever mounts these pinned objects, whatever happens to the paths meanwhile.
  auto [image, sources] = STEP(detail::open_sources(plan));

  // 2b. The system-call filter the plan names, read and checked now, in the launcher: a job
  //     never starts without it (the job process installs it last, just before its exec).
  std::optional<SeccompProgram> filter;
  if (!plan.seccomp.program.empty())
    filter.emplace(STEP(read_seccomp_program(plan.seccomp.program, plan.seccomp.policy, plan.seccomp.digest)));

  // 3. The job's cgroup: leftovers of dead launches removed, a record written first (so a
  //    SIGKILL at any later point leaves something cleanup can find), then the cgroup with its
  //    limits. Only directories named after this launch, under a `chrootctl` base, are made.
  std::optional<cgroup::JobCgroup> cg;
  std::optional<StateRecord> record;
  if (plan.use_cgroup) {
    auto layout = STEP(cgroup::detect_layout());
    const std::string state_dir = default_state_dir();
    (void)cleanup_stale(cgroup::real_fs(), layout, state_dir, nullptr, /*scan_bases=*/state_dir.empty());
    const std::string name = new_launch_name(self.start_time);
    if (!state_dir.empty()) {
      auto r = StateRecord::create(state_dir, name, cgroup::JobCgroup::candidate_dirs(layout, plan.limits, name));
      if (r)
        record.emplace(std::move(*r));
      else if (!plan.user_namespace)
        return setup_failed(r.error());
    }
    std::vector<std::string> notes;
    cg.emplace(STEP(cgroup::JobCgroup::create(cgroup::real_fs(), layout, name, plan.limits, !plan.user_namespace, notes)));
    out.cgroup = std::string(cgroup::version_name(cg->version()));
    out.limits_applied = plan.limits.any() && cg->version() != cgroup::Version::none && cg->limits_applied();
    if (plan.limits.any() && !out.limits_applied) {
      const std::string why = notes.empty() ? "cgroup limits are not available" : join(notes, "; ");
      if (plan.require_limits) return setup_failed(Error(Errc::unsupported, str("--require-limits: ", why)));
      say(str(why, "; running without ", cg->version() == cgroup::Version::none ? "cgroup limits" : "some limits"));
    }
    out.memory_limit_bytes = cg->version() != cgroup::Version::none ? plan.limits.memory_max : std::nullopt;
  }

  // 4. Block the signals to forward, so none is lost between here and the supervision loop.
  SignalGuard signals;
  sigset_t forwarded;
  sigemptyset(&forwarded);
  for (int s : k_forwarded) sigaddset(&forwarded, s);
  sigaddset(&forwarded, SIGCHLD);
  if (::sigprocmask(SIG_BLOCK, &forwarded, &signals.old) != 0) return setup_failed(Error(Errc::io, "sigprocmask failed"));
  signals.active = true;
  Fd sfd(::signalfd(-1, &forwarded, SFD_CLOEXEC));
  if (!sfd) return setup_failed(Error(Errc::io, str("signalfd: ", std::strerror(errno))));

  // 5. Pipes: reports (child -> launcher), a channel for the id-mapping go-ahead (user
  //    namespace only), and a lifeline whose closing tells a child born after our death to
  //    give up.
  Pipe report = STEP(Pipe::make());
  Channel sync = plan.user_namespace ? STEP(Channel::make()) : Channel{};
  Pipe lifeline = STEP(Pipe::make());
  detail::ChildHandles h;
  h.image = image.get();
  for (const auto& s : sources) h.sources.push_back(s.get());
  h.report = report.write.get();
  h.sync = sync.child.get();
  h.lifeline = lifeline.read.get();
  h.parent_only = {report.read.get(), lifeline.write.get()};
  if (sync.launcher) h.parent_only.push_back(sync.launcher.get());
  h.stdin_fd = plan.stdin_fd;
  h.stdout_fd = plan.stdout_fd;
  h.stderr_fd = plan.stderr_fd;
  std::vector<Fd> procs;
  Fd cgroup_dir;
  if (cg && cg->version() == cgroup::Version::v2) cgroup_dir = STEP(cg->open_dir());
  if (cg && cg->version() == cgroup::Version::v1) procs = STEP(cg->open_procs());
  kernel::ChildStack init_stack = STEP(kernel::ChildStack::make(k_init_stack));
  std::atomic<bool> init_heap_quiet{false};

  // 6. The child: new mount, PID, IPC and UTS namespaces (network and user when the plan says).
  //    On v2 it is born inside the job's cgroup (CLONE_INTO_CGROUP); on v1, or kernels before
  //    5.7, it writes itself into cgroup.procs before doing anything else.
  //    Where the kernel layer can (x86-64), init runs in this process's memory: the clone copies
  //    none of it and init's exit tears none of it down, about a tenth of a launch. From the
  //    clone until init is reaped this process therefore touches no heap: it closes
  //    descriptors, writes the id maps from stack buffers, and waits. Init, for its part, keeps
  //    off the heap while it supervises the job (init_heap_quiet): if it is killed outside that
  //    stretch (by root, or by the caller of an unprivileged launch), the heap may be
  //    half-updated, and this process exits at once (exit_without_heap), leaving the cgroup
  //    and record to the next launch's cleanup, as if it had been killed itself. Sharing the
  //    memory also shares what the kernel keeps per memory: init's OOM score and non-dumpable
  //    flag apply to this process too, and init's pages are charged to this process's memory
  //    cgroup.
  //    Init does not share the memory when the OOM killer could choose it inside the job's
  //    cgroup: the kernel kills every process sharing its victim's memory, so this process
  //    would die with init. That takes a memory limit on the job and an init that cannot ask
  //    to be spared (oom_score_adj -1000 needs CAP_SYS_RESOURCE, which an unprivileged launch
  //    never has).
  h.spare_init_from_oom = !plan.user_namespace && kernel::has_effective_capability(CAP_SYS_RESOURCE);
  const bool share = !(plan.limits.memory_max || plan.limits.swap_max) || h.spare_init_from_oom;
  std::uint64_t flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS;
  if (plan.new_net) flags |= CLONE_NEWNET;
  if (plan.user_namespace) flags |= CLONE_NEWUSER;
  InitStart init_start{&plan, &h};
  h.in_cgroup = static_cast<bool>(cgroup_dir);
  for (const auto& p : procs) h.cgroup_procs.push_back(p.get());
  h.heap_quiet = &init_heap_quiet;
  h.job_cpus = pin.original();
  h.ignored_signals = self.ignored_signals;
  h.seccomp = filter ? &*filter : nullptr;
  const std::int64_t started = sys::monotonic_ns();
  auto child = kernel::start_child(flags, cgroup_dir ? cgroup_dir.get() : -1, init_stack, init_entry, &init_start, share);
  if (!child && child.error().code() == Errc::unsupported && cgroup_dir) {
    procs = STEP(cg->open_procs());
    h.in_cgroup = false;
    for (const auto& p : procs) h.cgroup_procs.push_back(p.get());
    child = kernel::start_child(flags, -1, init_stack, init_entry, &init_start, share);
  }
  if (!child) return setup_failed(child.error());
  const pid_t init = child->pid;
  // After init has ended: if it shared this memory and was killed off its quiet stretch, the
  // heap cannot be trusted (see above).
  auto leave_if_heap_unsafe = [&, shared = child->shares_memory](int status) {
    if (shared && WIFSIGNALED(status) && !init_heap_quiet.load(std::memory_order_acquire))
      exit_without_heap(WTERMSIG(status));
  };
  // No heap from here until init is reaped (see above).
  report.write.reset();
  sync.child.reset();
  lifeline.read.reset();
  for (auto& p : procs) p.reset();
  cgroup_dir.reset();

  // 7. In a user namespace: map the caller to itself (and nothing else), then let the child go.
  if (plan.user_namespace) {
    if (const auto failed = detail::map_caller(init, plan.caller_uid, plan.caller_gid)) {
      // Closing the channel ends init where it waits for the go-ahead, never in the middle
      // of an allocation (as a SIGKILL could), so the heap stays usable for the error.
      sync.launcher.reset();
      int status = 0;
      ::waitpid(init, &status, 0);
      leave_if_heap_unsafe(status);
      return setup_failed(failed.error(init));
    }
    (void)sys::retry_eintr([&] { return ::send(sync.launcher.get(), "1", 1, MSG_NOSIGNAL); });
  }

  // 8. Supervise: forward each signal to init (which forwards it to the job) until init has
  //    exited (it only does once every process of the namespace is gone). The reports wait in
  //    their pipe and are read after: reading each as it came would only wake this process
  //    once more per report. All of a launch's reports (at most job_started and one other
  //    with its text) fit in one page, the least a pipe holds, so init never blocks on them.
  ReportReader reports{std::move(report.read), {}, {}, {}};
  int init_status = 0;
  struct rusage usage {};
  bool init_done = false;
  while (!init_done) {
    struct signalfd_siginfo si {};
    const ssize_t n = ::read(sfd.get(), &si, sizeof si);
    if (n != static_cast<ssize_t>(sizeof si)) {
      if (n < 0 && errno == EINTR) continue;
      break;
    }
    if (static_cast<int>(si.ssi_signo) == SIGCHLD) {
      const pid_t r = ::wait4(init, &init_status, WNOHANG, &usage);
      if (r == init) init_done = true;
    } else {
      ::kill(init, static_cast<int>(si.ssi_signo));
    }
  }
  if (!init_done) {
    ::kill(init, SIGKILL);
    ::wait4(init, &init_status, 0, &usage);
  }
  leave_if_heap_unsafe(init_status);
  while (reports.fd && reports.read_some()) {
  }
  out.wall_seconds = static_cast<double>(sys::monotonic_ns() - started) / 1e9;
  out.cpu_user_seconds = static_cast<double>(usage.ru_utime.tv_sec) + static_cast<double>(usage.ru_utime.tv_usec) / 1e6;
  out.cpu_system_seconds = static_cast<double>(usage.ru_stime.tv_sec) + static_cast<double>(usage.ru_stime.tv_usec) / 1e6;
  out.max_rss_bytes = static_cast<std::uint64_t>(usage.ru_maxrss) * 1024;
  if (reports.last) {
    fill_from_report(out, *reports.last, reports.text);
  } else if (reports.job_started) {
    // init itself was killed (by the OOM killer, or SIGKILL from outside) while the job ran;
    // the kernel took the whole namespace, the job included.
    out.kind = Outcome::Kind::signaled;
    out.code = WIFSIGNALED(init_status) ? WTERMSIG(init_status) : SIGKILL;
    out.error = str("the launch's init process ended (", WIFSIGNALED(init_status) ? "signal " : "status ",
                    WIFSIGNALED(init_status) ? WTERMSIG(init_status) : WEXITSTATUS(init_status),
                    ") without reporting the job's status");
  } else {
    out.kind = Outcome::Kind::setup_failed;
    out.error = WIFSIGNALED(init_status) ? str("the launch's init process was killed by signal ", WTERMSIG(init_status),
                                               " before the job started")
                                         : str("the launch's init process exited with status ", WEXITSTATUS(init_status),
                                               " before the job started");
  }

  // 9. Accounting, then whatever is left in the cgroup is killed and the cgroup removed. If that
  //    fails the record stays, so the next cleanup retries.
  if (cg && cg->version() != cgroup::Version::none) {
    const auto acc = cg->read_accounting(cgroup::real_fs());
    out.peak_memory_bytes = acc.peak_memory;
    out.oom_kills = acc.oom_kills;
    out.memory_limit_hit = acc.memory_limit_hit;
    if (auto r = cg->destroy(cgroup::real_fs()); !r) {
      say(str("the job's cgroup could not be removed (", r.error().what(), "); 'chrootctl cleanup' will retry"));
      if (record) record->release();
    }
  }
#undef STEP
  return out;
}

}  // namespace chrootctl::launcher
