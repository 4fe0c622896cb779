// PID 1 of the job's PID namespace, and the job process it starts. Both run in the child that the
// launcher cloned: nothing here returns to the launcher's code; results travel back over the
// report pipe.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "internal.hpp"
#include "kernel.hpp"

namespace chrootctl::launcher::detail {

void send_report(int fd, ReportKind kind, int value, const std::string& text) {
  char buf[sizeof(ReportHeader) + k_max_report_text];
  const std::size_t n = std::min(text.size(), k_max_report_text);
  const ReportHeader h{kind, value, static_cast<std::uint32_t>(n)};
  std::memcpy(buf, &h, sizeof h);
  std::copy_n(text.data(), n, buf + sizeof h);  // bytes, not a C string: no terminator
  kernel::write_message(fd, buf, sizeof h + n);
}

namespace {

void no_op_handler(int) {}

Status checked(bool ok, const char* call) {
  if (!ok) return fail_errno(call, errno);
  return {};
}

// Reads one report (header + text) from a pipe; nullopt at EOF.
struct Report {
  ReportHeader header;
  std::string text;
};
std::optional<Report> read_report(int fd) {
  char buf[sizeof(ReportHeader) + k_max_report_text];
  const ssize_t n = sys::retry_eintr([&] { return ::read(fd, buf, sizeof buf); });
  if (n < static_cast<ssize_t>(sizeof(ReportHeader))) return std::nullopt;
  Report r{};
  std::memcpy(&r.header, buf, sizeof r.header);
  const std::size_t len = std::min<std::size_t>(r.header.length, static_cast<std::size_t>(n) - sizeof(ReportHeader));
  r.text.assign(buf + sizeof(ReportHeader), len);
  return r;
}

std::string env_value(const std::vector<std::string>& env, std::string_view key) {
  for (const auto& e : env)
    if (e.size() > key.size() && e.compare(0, key.size(), key) == 0 && e[key.size()] == '=') return e.substr(key.size() + 1);
  return {};
}

// ---- the job, between fork and exec ----

// Default dispositions and an empty mask, as a freshly started program expects.
Status reset_signals() {
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    // Signals 32 and 33 belong to the C library's threads; the kernel refuses nothing here,
    // but glibc's signal() does (EINVAL), and they hold no disposition a job could inherit.
    if (::signal(sig, SIG_DFL) == SIG_ERR && errno != EINVAL) return fail_errno(str("signal(", sig, ", SIG_DFL)"), errno);
  }
  sigset_t empty;
  sigemptyset(&empty);
  return checked(::sigprocmask(SIG_SETMASK, &empty, nullptr) == 0, "sigprocmask(SIG_SETMASK, empty)");
}

// Standard streams: the launcher's descriptors (inherited), moved above 2 first so that any
// permutation of 0/1/2 works.
Status set_stdio(const ChildHandles& h) {
  int fds[3] = {h.stdin_fd, h.stdout_fd, h.stderr_fd};
  for (int& fd : fds) {
    if (fd < 0) continue;
    fd = ::fcntl(fd, F_DUPFD_CLOEXEC, 10);
    if (fd < 0) return fail_errno("fcntl(F_DUPFD_CLOEXEC)", errno);
  }
  if (fds[0] < 0) {
    fds[0] = ::open("/dev/null", O_RDONLY | O_CLOEXEC);  // kernel-direct: the job's child between clone and exec
    if (fds[0] < 0) return fail_errno("open(\"/dev/null\") in the new root", errno);
  }
  for (int i = 0; i < 3; ++i)
    if (::dup2(fds[i], i) < 0) return fail_errno(str("dup2(", fds[i], ", ", i, ")"), errno);
  return {};
}

// Every step of the job's own setup, in order; the first that fails ends the launch (125).
Status prepare_job(const LaunchPlan& plan, const ChildHandles& h, int exec_report, mode_t umask_value) {
  // No controlling terminal: the caller's terminal cannot be reached (TIOCSTI) nor signal us.
  TRY(checked(::setsid() >= 0, "setsid()"));
  TRY(reset_signals());
  TRY(set_stdio(h));
  // Its own terminal, given by the launcher, is its controlling terminal (job control, /dev/tty).
  if (h.controlling_tty >= 0) TRY(checked(::ioctl(h.controlling_tty, TIOCSCTTY, 0) == 0, "ioctl(TIOCSCTTY) on the job's terminal"));
  ::umask(umask_value);
  if (plan.drop_privileges) {
    TRY(with_context(drop_privileges(plan.creds, !plan.unprivileged), str("dropping privileges to uid ", plan.creds.uid)));
  } else if (plan.mode == LaunchMode::build) {
    TRY(with_context(restrict_build_capabilities(), "restricting the build command's capabilities"));
  }
  TRY(join_new_session_keyring());
  // As the job user, so a sandbox it may not enter is an error rather than a surprise.
  if (::chdir(plan.cwd.c_str()) != 0)  // kernel-direct: the job's child between clone and exec
    return fail_errno(str("chdir(", quote(plan.cwd), ") as uid ", plan.creds.uid), errno);
  // No descriptor of the launcher reaches the job, whatever it left without O_CLOEXEC.
  kernel::close_fds_except({exec_report});
  return {};
}

// The job's exec. Never returns: execs, or reports why it could not.
[[noreturn]] void exec_job(const LaunchPlan& plan, const ChildHandles& h, int exec_report) {
  std::vector<char*> argv;
  for (const auto& a : plan.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : plan.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  // The system-call filter, last: after the privilege drop and no_new_privs (which lets an
  // unprivileged process install it), with nothing left to do but exec. From here on the job's
  // own code and this exec run under it.
  if (h.seccomp) {
    if (auto r = install_seccomp_program(*h.seccomp); !r) {
      send_report(exec_report, k_setup_failed, 0, r.error().what());
      ::_exit(125);
    }
  }
  const std::string& file = plan.argv.front();
  if (file.find('/') != std::string::npos) {
    ::execve(file.c_str(), argv.data(), envp.data());
    const int err = errno;
    send_report(exec_report, k_exec_failed, err, str("execve(", quote(file), ") in the root: ", std::strerror(err)));
    ::_exit(err == ENOENT ? 127 : 126);
  }
  // PATH of the job's own environment (execvpe would use the launcher's), searched like execvp.
  std::string path = env_value(plan.env, "PATH");
  if (path.empty()) path = "/usr/local/bin:/usr/bin:/bin";
  int saved = ENOENT;
  std::string where;
  for (const auto& dir : split(path, ':')) {
    const std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + file;
    ::execve(candidate.c_str(), argv.data(), envp.data());
    const int err = errno;
    if (err == EACCES) {
      saved = EACCES;
      where = candidate;
    } else if (err != ENOENT && err != ENOTDIR && err != ELOOP) {
      saved = err;
      where = candidate;
      break;
    }
  }
  if (saved == ENOENT) send_report(exec_report, k_exec_failed, ENOENT, str("command ", quote(file), " not found in the root (PATH=", path, ")"));
  else send_report(exec_report, k_exec_failed, saved, str("execve(", quote(where), ") in the root: ", std::strerror(saved)));
  ::_exit(saved == ENOENT ? 127 : 126);
}

[[noreturn]] void job_main(const LaunchPlan& plan, const ChildHandles& h, int exec_report, mode_t umask_value) {
  if (auto r = prepare_job(plan, h, exec_report, umask_value); !r) {
    send_report(exec_report, k_setup_failed, 0, r.error().what());
    ::_exit(125);
  }
  exec_job(plan, h, exec_report);
}

// ---- init's setup, step by step ----

// Waits for the launcher's go-ahead: it comes once the ids are mapped and init is in the job's
// cgroup, with the detached mounts of the image and sources when there are any.
Result<RootSources> wait_for_go_ahead(const ChildHandles& h) {
  RootSources src;
  src.detached = h.detached;
  auto fds = TRY(kernel::receive_fds(h.channel, h.detached ? h.detached_count : 0));
  // The launcher closed the channel instead: it gave up, and reports why itself.
  if (!fds) ::_exit(125);
  ::close(h.channel);
  if (h.detached) {
    src.image = std::move(fds->front());
    for (std::size_t i = 1; i < fds->size(); ++i) src.binds.push_back(std::move((*fds)[i]));
  }
  return src;
}

// Dies with the launcher (SIGKILL from the kernel takes the whole PID namespace with it); if the
// launcher is already gone, stops here. Set after init's ids are final: a change of ids clears
// the parent-death signal.
Status tie_to_launcher(const ChildHandles& h) {
  TRY(checked(::prctl(PR_SET_PDEATHSIG, SIGKILL) == 0, "prctl(PR_SET_PDEATHSIG, SIGKILL)"));
  struct pollfd p {
    h.lifeline, POLLIN, 0
  };
  if (::poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLIN))) return fail(Errc::io, "the launcher is gone");
  return {};
}

// Handlers (no-ops) for the forwarded signals: the kernel drops signals to a namespace's init
// that it has no handler for. They stay blocked and are read from a signalfd.
Result<Fd> watch_signals() {
  for (int sig : k_forwarded_signals) {
    struct sigaction sa {};
    sa.sa_handler = no_op_handler;
    sa.sa_flags = SA_RESTART;
    TRY(checked(::sigaction(sig, &sa, nullptr) == 0, "sigaction"));
  }
  sigset_t watched;
  sigemptyset(&watched);
  for (int sig : k_forwarded_signals) sigaddset(&watched, sig);
  sigaddset(&watched, SIGCHLD);
  TRY(checked(::sigprocmask(SIG_BLOCK, &watched, nullptr) == 0, "sigprocmask(SIG_BLOCK)"));
  const int sfd = ::signalfd(-1, &watched, SFD_CLOEXEC);
  if (sfd < 0) return fail_errno("signalfd", errno);
  return Fd(sfd);
}

struct Started {
  pid_t job;
  int exec_pipe;  // read end: EOF once the job has exec'd, or a report of why not
};

// The job's process: a fork of init, which sets itself up and execs (job_main).
Result<Started> start_job(const LaunchPlan& plan, const ChildHandles& h, mode_t umask_value) {
  int exec_pipe[2];
  if (::pipe2(exec_pipe, O_CLOEXEC) != 0) return fail_errno("pipe2", errno);
  const pid_t job = TRY(kernel::fork_process());
  if (job == 0) {
    ::close(exec_pipe[0]);
    job_main(plan, h, exec_pipe[1], umask_value);
  }
  ::close(exec_pipe[1]);
  return Started{job, exec_pipe[0]};
}

// Into the job's cgroup in every hierarchy, unless born there. Init moves itself ("0"): the
// kernel moves a thread that moves itself without waiting for an RCU grace period.
Status join_cgroup(const ChildHandles& h) {
  for (int fd : h.cgroup_procs)
    if (sys::retry_eintr([&] { return ::write(fd, "0", 1); }) != 1) return fail_errno("joining the job's cgroup: write(tasks, \"0\")", errno);
  return {};
}

// Everything init does before the job runs, in order.
Result<Started> set_up(const LaunchPlan& plan, const ChildHandles& h, Fd& signals) {
  TRY(join_cgroup(h));
  RootSources sources = TRY(wait_for_go_ahead(h));
  // Not dumpable from here (not before: an unprivileged launcher writes this process's id maps
  // through /proc, which a non-dumpable process's entries refuse it): no process of the job's
  // user may ptrace init or open its /proc entries. Set again below, after the change of ids,
  // which resets it to the system's suid_dumpable.
  TRY(checked(::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0, "prctl(PR_SET_DUMPABLE, 0)"));
  // A cgroup namespace rooted at the job's cgroup, which init is already in: the job sees "/"
  // and nothing of the host's tree.
  if (h.cgroup_namespace) TRY(kernel::unshare(CLONE_NEWCGROUP, "CLONE_NEWCGROUP"));
  TRY(isolate_mounts());
  // Sources bound by path are found while init still has the ids it was cloned with.
  if (!sources.detached) {
    RootSources by_path = TRY(reopen_sources(plan, h));
    sources.image = std::move(by_path.image);
    sources.sources = std::move(by_path.sources);
  }
  TRY(become(h.init_ids, plan.creds.uid, plan.creds.gid));
  TRY(tie_to_launcher(h));
  // Out of the caller's session: a terminal's signals reach only the launcher, which forwards.
  TRY(checked(::setsid() >= 0, "setsid()"));
  TRY(checked(::prctl(PR_SET_NAME, "chrootctl-init", 0, 0, 0) == 0, "prctl(PR_SET_NAME)"));
  TRY(checked(::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0, "prctl(PR_SET_DUMPABLE, 0)"));
  const mode_t umask_value = ::umask(0);
  signals = TRY(watch_signals());
  TRY(build_new_root(plan, sources));
  if (plan.new_net) TRY(loopback_up());
  Started s = TRY(start_job(plan, h, umask_value));
  // Init keeps only what it still needs: no descriptor of a host directory or of a cgroup
  // stays open in the job's PID namespace, and no capability but CAP_KILL.
  kernel::close_fds_except({h.report, signals.get(), s.exec_pipe});
  if (plan.user_namespace) TRY(keep_only_kill_capability());
  return s;
}

// Forwards signals, reaps every process (orphans are re-parented to init), and returns the wait
// status of the job's main process once it has ended.
Result<int> supervise(int signals, pid_t job) {
  while (true) {
    struct signalfd_siginfo si {};
    const ssize_t n = ::read(signals, &si, sizeof si);
    if (n != static_cast<ssize_t>(sizeof si)) {
      if (n < 0 && errno == EINTR) continue;
      return fail_errno("read(signalfd)", n < 0 ? errno : EIO);
    }
    if (static_cast<int>(si.ssi_signo) != SIGCHLD) {
      ::kill(job, static_cast<int>(si.ssi_signo));
      continue;
    }
    int status = 0;
    pid_t pid;
    std::optional<int> job_status;
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0)
      if (pid == job) job_status = status;
    if (job_status) return *job_status;
  }
}

}  // namespace

[[noreturn]] void init_main(const LaunchPlan& plan, const ChildHandles& h) {
  for (int fd : h.parent_only) ::close(fd);
  auto fail_setup = [&](const Error& e) {
    send_report(h.report, k_setup_failed, 0, e.what());
    ::_exit(125);
  };
  Fd signals;
  auto started = set_up(plan, h, signals);
  if (!started) fail_setup(started.error());
  // The job has exec'd (the pipe's last write end closes with it) or reported why not.
  const std::optional<Report> exec_failure = read_report(started->exec_pipe);
  ::close(started->exec_pipe);
  if (!exec_failure) send_report(h.report, k_job_started, 0, {});
  auto job_status = supervise(signals.get(), started->job);
  // The main process is gone: everything it left behind goes too. Every process left in the
  // namespace is init's child (orphans are re-parented here), so with none, nothing is left
  // (kill(-1) would walk every process of the host to find out).
  int status = 0;
  if (::waitpid(-1, &status, WNOHANG) >= 0) {
    ::kill(-1, SIGKILL);
    while (::waitpid(-1, nullptr, 0) > 0 || errno == EINTR) {
    }
  }
  if (!job_status) fail_setup(job_status.error());
  if (exec_failure) send_report(h.report, static_cast<ReportKind>(exec_failure->header.kind), exec_failure->header.value, exec_failure->text);
  else send_report(h.report, k_job_ended, *job_status, {});
  ::_exit(0);
}

}  // namespace chrootctl::launcher::detail
