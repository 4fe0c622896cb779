// PID 1 of the job's PID namespace, and the job process it starts. Both run in the child that the
// launcher cloned: nothing here returns to the launcher's code; results travel back over the
// report pipe.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

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
  std::memcpy(buf + sizeof h, text.data(), n);
  kernel::write_message(fd, buf, sizeof h + n);
}

namespace {

// Signals the launcher forwards to init, and init to the job.
constexpr int k_forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2};

void no_op_handler(int) {}

bool write_small(const char* path, const std::string& value) {
  const int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::write(fd, value.data(), value.size()) == static_cast<ssize_t>(value.size());
  ::close(fd);
  return ok;
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

// The job, between fork and exec. Never returns: execs, or reports why it could not.
[[noreturn]] void job_main(const LaunchPlan& plan, const ChildHandles& h, int exec_report, mode_t umask_value) {
  auto fail_setup = [&](const Error& e) {
    send_report(exec_report, k_setup_failed, 0, e.what());
    ::_exit(125);
  };
  // No controlling terminal: the caller's terminal cannot be reached (TIOCSTI) nor signal us.
  if (::setsid() < 0) fail_setup(Error(Errc::io, str("setsid: ", std::strerror(errno))));
  // The caller's CPU set (the launch ran on one CPU of it).
  if (h.job_cpus && ::sched_setaffinity(0, sizeof *h.job_cpus, h.job_cpus) != 0)
    fail_setup(Error(Errc::io, str("sched_setaffinity(the caller's CPU set): ", std::strerror(errno))));
  // Default dispositions and an empty mask, as a freshly started program expects. The exec
  // resets every handled signal; only ignored ones (SIG_IGN) would survive it. The launcher
  // told which of signals 1-31 it ignores; real-time signals are reset whatever they are.
  for (int sig = 1; sig < NSIG; ++sig)
    if (sig != SIGKILL && sig != SIGSTOP && (sig > 31 || (h.ignored_signals >> (sig - 1) & 1))) ::signal(sig, SIG_DFL);
  // Standard streams: the launcher's descriptors (inherited), moved above 2 first so that any
  // permutation of 0/1/2 works.
  int fds[3] = {h.stdin_fd, h.stdout_fd, h.stderr_fd};
  for (int& fd : fds) {
    if (fd < 0) continue;
    fd = ::fcntl(fd, F_DUPFD_CLOEXEC, 10);
    if (fd < 0) fail_setup(Error(Errc::io, str("fcntl(F_DUPFD_CLOEXEC): ", std::strerror(errno))));
  }
  if (fds[0] < 0) {
    fds[0] = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fds[0] < 0) fail_setup(Error(Errc::io, str("open(\"/dev/null\") in the new root: ", std::strerror(errno))));
  }
  for (int i = 0; i < 3; ++i)
    if (::dup2(fds[i], i) < 0) fail_setup(Error(Errc::io, str("dup2(", fds[i], ", ", i, "): ", std::strerror(errno))));
  ::umask(umask_value);
  if (plan.drop_privileges) {
    if (auto r = drop_privileges(plan.creds, !plan.user_namespace); !r)
      fail_setup(std::move(r.error()).add_context(str("dropping privileges to uid ", plan.creds.uid)));
  } else if (plan.mode == LaunchMode::build) {
    if (auto r = restrict_build_capabilities(); !r)
      fail_setup(std::move(r.error()).add_context("restricting the build command's capabilities"));
  }
  if (auto r = join_new_session_keyring(); !r) fail_setup(std::move(r.error()));
  // As the job user, so a sandbox it may not enter is an error rather than a surprise.
  if (::chdir(plan.cwd.c_str()) != 0)
    fail_setup(Error(Errc::io, str("chdir(", quote(plan.cwd), ") as uid ", plan.creds.uid, ": ", std::strerror(errno))));
  // No descriptor of the launcher reaches the job, whatever it left without O_CLOEXEC.
  kernel::close_fds_except({exec_report});
  sigset_t empty;
  sigemptyset(&empty);
  ::sigprocmask(SIG_SETMASK, &empty, nullptr);

  std::vector<char*> argv;
  for (const auto& a : plan.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : plan.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  // The system-call filter, last: after the privilege drop and no_new_privs (which lets an
  // unprivileged process install it), with nothing left to do but exec. From here on the job's
  // own code and this exec run under it.
  if (h.seccomp)
    if (auto r = install_seccomp_program(*h.seccomp); !r) fail_setup(std::move(r.error()));
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
  if (saved == ENOENT)
    send_report(exec_report, k_exec_failed, ENOENT, str("command ", quote(file), " not found in the root (PATH=", path, ")"));
  else
    send_report(exec_report, k_exec_failed, saved, str("execve(", quote(where), ") in the root: ", std::strerror(saved)));
  ::_exit(saved == ENOENT ? 127 : 126);
}

struct JobStart {
  const LaunchPlan& plan;
  const ChildHandles& h;
  int exec_report;
  mode_t umask_value;
  const std::string& oom_adj;
};

int job_entry(void* arg) {
  const auto& s = *static_cast<const JobStart*>(arg);
  if (!s.oom_adj.empty()) (void)write_small("/proc/self/oom_score_adj", s.oom_adj);
  job_main(s.plan, s.h, s.exec_report, s.umask_value);
}

}  // namespace

[[noreturn]] void init_main(const LaunchPlan& plan, const ChildHandles& h) {
  auto fail_setup = [&](const Error& e) {
    send_report(h.report, k_setup_failed, 0, e.what());
    ::_exit(125);
  };
  // 1. Die with the launcher (SIGKILL from the kernel takes the whole PID namespace with us);
  //    if it is already gone, stop here. The lifeline's write end is the launcher's alone.
  for (int fd : h.parent_only) ::close(fd);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  {
    struct pollfd p {h.lifeline, POLLIN, 0};
    if (::poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLIN))) ::_exit(125);
  }
  // 2. Into the job's cgroup before anything else happens, so the job is born inside it.
  for (int fd : h.cgroup_procs)
    if (::write(fd, "0", 1) != 1) fail_setup(Error(Errc::io, str("joining the job's cgroup: write(cgroup.procs, \"0\"): ",
                                                            std::strerror(errno))));
  // A cgroup namespace rooted at the job's cgroup: the job sees "/" and nothing of the host's tree.
  if (!h.cgroup_procs.empty() || h.in_cgroup) (void)::unshare(CLONE_NEWCGROUP);
  // 3. In a user namespace, wait until the launcher has mapped our ids.
  if (plan.user_namespace) {
    char c = 0;
    if (sys::retry_eintr([&] { return ::read(h.sync, &c, 1); }) != 1) ::_exit(125);
  }
  // 4. Out of the caller's session: a terminal's signals reach only the launcher, which forwards.
  ::setsid();
  ::prctl(PR_SET_NAME, "chrootctl-init", 0, 0, 0);
  // Not dumpable: no process of the job may ptrace init or open its /proc entries.
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  // The OOM killer must pick the job, never its init (whose death would end the job unreported
  // as such); the job gets the caller's setting back. Lowering it takes CAP_SYS_RESOURCE,
  // which the launcher looked for: without it, nothing is tried.
  std::string oom_adj;
  if (h.spare_init_from_oom) {
    oom_adj = sys::read_file("/proc/self/oom_score_adj", 64).value_or("0\n");
    if (!write_small("/proc/self/oom_score_adj", "-1000")) oom_adj.clear();
  }
  const mode_t umask_value = ::umask(0);
  // Handlers (no-ops) for the forwarded signals: the kernel drops signals to a namespace's init
  // that it has no handler for. They stay blocked and are read from a signalfd.
  for (int sig : k_forwarded) {
    struct sigaction sa {};
    sa.sa_handler = no_op_handler;
    sa.sa_flags = SA_RESTART;
    ::sigaction(sig, &sa, nullptr);
  }
  sigset_t watched;
  sigemptyset(&watched);
  for (int sig : k_forwarded) sigaddset(&watched, sig);
  sigaddset(&watched, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &watched, nullptr);
  const int sfd = ::signalfd(-1, &watched, SFD_CLOEXEC);
  if (sfd < 0) fail_setup(Error(Errc::io, str("signalfd: ", std::strerror(errno))));

  // 5. The new root, then 6. the network.
  if (auto r = build_new_root(plan, h); !r) fail_setup(r.error());
  if (plan.new_net)
    if (auto r = loopback_up(); !r) fail_setup(r.error());

  // 7. The job's process. It shares init's memory until its execve, and init waits meanwhile
  //    (posix_spawn's way): no copy of init's page tables to make, none to tear down at the
  //    exec, and no wake-up between two processes. Its own credentials, descriptors, signal
  //    handlers and working directory are its own from the start (no CLONE_FS, CLONE_FILES or
  //    CLONE_SIGHAND), so nothing it changes reaches init.
  int exec_pipe[2];
  if (::pipe2(exec_pipe, O_CLOEXEC) != 0) fail_setup(Error(Errc::io, str("pipe2: ", std::strerror(errno))));
  JobStart start{plan, h, exec_pipe[1], umask_value, oom_adj};
  auto spawned = kernel::spawn_sharing_memory(job_entry, &start);
  if (!spawned) fail_setup(spawned.error());
  const pid_t job = *spawned;
  ::close(exec_pipe[1]);
  // Init keeps only what it still needs: no descriptor of a host directory or of a cgroup
  // stays open in the job's PID namespace.
  kernel::close_fds_except({h.report, sfd, exec_pipe[0]});

  // The job has exec'd (the pipe's last write end closes with it) or reported why not.
  const std::optional<Report> exec_failure = read_report(exec_pipe[0]);
  ::close(exec_pipe[0]);
  if (!exec_failure) send_report(h.report, k_job_started, 0, {});

  // 8. Supervise: forward signals, reap every process (orphans are re-parented to us), and
  //    stop when the job's main process ends. Nothing here touches the heap: the launcher may
  //    share this memory, and trusts its heap after an abnormal end of init only if init was
  //    killed in here (heap_quiet).
  auto heap_quiet = [&](bool quiet) {
    if (h.heap_quiet) h.heap_quiet->store(quiet, std::memory_order_release);
  };
  heap_quiet(true);
  int job_status = 0;
  bool job_ended = false;
  while (!job_ended) {
    struct signalfd_siginfo si {};
    const ssize_t n = ::read(sfd, &si, sizeof si);
    if (n != static_cast<ssize_t>(sizeof si)) {
      if (n < 0 && errno == EINTR) continue;
      const int err = n < 0 ? errno : EIO;
      heap_quiet(false);
      fail_setup(Error(Errc::io, str("read(signalfd): ", std::strerror(err))));
    }
    if (static_cast<int>(si.ssi_signo) == SIGCHLD) {
      int status = 0;
      pid_t pid;
      while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0)
        if (pid == job) {
          job_status = status;
          job_ended = true;
        }
    } else {
      ::kill(job, static_cast<int>(si.ssi_signo));
    }
  }
  heap_quiet(false);
  // 9. The main process is gone: everything it left behind goes too. Every process left in
  //    the namespace is init's child (orphans are re-parented here), so with none, nothing
  //    is left (kill(-1) would walk every process of the host to find out).
  int status = 0;
  if (::waitpid(-1, &status, WNOHANG) >= 0) {
    ::kill(-1, SIGKILL);
    while (::waitpid(-1, nullptr, 0) > 0 || errno == EINTR) {
    }
  }
  if (exec_failure)
    send_report(h.report, static_cast<ReportKind>(exec_failure->header.kind), exec_failure->header.value, exec_failure->text);
  else
    send_report(h.report, k_job_ended, job_status, {});
  ::_exit(0);
}

}  // namespace chrootctl::launcher::detail
