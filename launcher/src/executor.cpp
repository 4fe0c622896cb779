// The executor: execute() lists every step of a launch in order; each step is a member function
// of Launch below, a closed operation on data the plan fixed beforehand, with a comment saying
// why it is safe. The child's side (init, the new root, the job) is in init.cpp and mounts.cpp.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/launcher/cgroups.hpp"
#include "chrootctl/launcher/cleanup.hpp"
#include "chrootctl/launcher/host.hpp"
#include "chrootctl/launcher/launch.hpp"
#include "chrootctl/launcher/seccomp_program.hpp"
#include "internal.hpp"
#include "kernel.hpp"
#include "terminal.hpp"

namespace chrootctl::launcher {

namespace {

using detail::ReportHeader;

struct Pipe {
  Fd read, write;
  static Result<Pipe> make() {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return fail_errno("pipe2(O_CLOEXEC)", errno);
    return Pipe{Fd(p[0]), Fd(p[1])};
  }
};

// The launcher's and the child's ends of a socket pair, for the go-ahead and the detached
// mounts: the launcher sends with MSG_NOSIGNAL, so a child that has already failed is reported
// through its report, not by a SIGPIPE that would kill the launcher before it cleans up.
struct Channel {
  Fd launcher, child;
  static Result<Channel> make() {
    int s[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) != 0) return fail_errno("socketpair(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC)", errno);
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

// The report stream from the child, read once init has exited (all of a launch's reports fit
// in one page, the least a pipe holds, so init never blocks on them).
struct Reports {
  std::optional<ReportHeader> last;
  std::string text;
  bool job_started = false;
};
Reports read_reports(int fd) {
  Reports r;
  std::string buffer;
  char buf[4096];
  while (true) {
    const ssize_t n = sys::retry_eintr([&] { return ::read(fd, buf, sizeof buf); });
    if (n <= 0) break;
    buffer.append(buf, static_cast<std::size_t>(n));
  }
  while (buffer.size() >= sizeof(ReportHeader)) {
    ReportHeader h{};
    std::memcpy(&h, buffer.data(), sizeof h);
    const std::size_t len = std::min<std::size_t>(h.length, detail::k_max_report_text);
    if (buffer.size() < sizeof h + len) break;
    if (h.kind == detail::k_job_started) {
      r.job_started = true;
    } else {
      r.last = h;
      r.text.assign(buffer, sizeof h, len);
    }
    buffer.erase(0, sizeof h + len);
  }
  return r;
}

double seconds(const struct timeval& tv) { return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6; }

// One launch: the state the steps build up, in the order they make it. Members are destroyed
// in reverse: the cgroup (killing what is left), then the id block, then the record.
class Launch {
 public:
  Launch(const LaunchPlan& plan, const std::function<void(const std::string&)>& warn) : m_plan(plan), m_warn(warn) {
    m_out.cgroup = "none";
    m_out.seccomp_policy = plan.seccomp.program.empty() ? "none" : plan.seccomp.policy;
    m_out.seccomp_digest = plan.seccomp.program.empty() ? std::string() : plan.seccomp.digest;
    if (std::any_of(plan.mounts.begin(), plan.mounts.end(), [](const MountOp& op) { return op.kind == MountOp::Kind::dev; }))
      m_out.shm_bytes = plan.shm_bytes;
  }

  // 1. Refuse an installation that would let callers borrow root (setuid), and a caller whose
  //    other threads could hold locks the cloned child would inherit held.
  Status check_caller() {
    if (::getuid() != ::geteuid() || ::getgid() != ::getegid()) return fail(Errc::permission, "chrootctl must not be installed setuid or setgid");
    m_self = TRY(kernel::self_stat());
    if (m_self.threads != 1) return fail(Errc::internal, "the launcher must be called from a single-threaded process");
    m_name = new_launch_name(m_self.start_time);
    return {};
  }

  // 2. Open the root and every source now, on the host, before any namespace: nothing later
  //    mounts anything but these pinned objects, whatever happens to the paths meanwhile.
  Status open_sources() {
    m_opened = TRY(detail::open_sources(m_plan));
    return {};
  }

  // 2b. The system-call filter the plan names, read and checked now, in the launcher: a job
  //     never starts without it (the job process installs it last, just before its exec).
  Status read_filter() {
    if (m_plan.seccomp.program.empty()) return {};
    m_filter.emplace(TRY(read_seccomp_program(m_plan.seccomp.program, m_plan.seccomp.policy, m_plan.seccomp.digest)));
    m_h.seccomp = &*m_filter;
    return {};
  }

  // 3. Remove what dead launches left (their records, cgroups and id blocks), so that this
  //    launch starts from a clean state directory. Only directories named after dead launches,
  //    under a `chrootctl` base, are touched.
  Status clean_up_dead_launches() {
    if (!m_plan.use_cgroup) return {};
    m_layout = TRY(cgroup::detect_layout());
    m_state_dir = default_state_dir();
    (void)cleanup_stale(cgroup::real_fs(), m_layout, m_state_dir, nullptr, /*scan_bases=*/m_state_dir.empty());
    return {};
  }

  // 4. The job's ids: mapped (an id block of its own, idmapped mounts) where the kernel and the
  //    filesystems allow, else only its own ids; a job as root is never run unmapped. Then the
  //    MOUNT_UNDER_SCRATCH directories, owned by whoever the job's files belong to on disk.
  Status choose_ids() {
    if (!m_plan.user_namespace) return {};  // a build command: root in the tree being built
    IdFacts facts;
    facts.unprivileged = m_plan.unprivileged;
    facts.mount_api = !m_plan.unprivileged && kernel::has_mount_api();
    const auto version = kernel::kernel_version();
    facts.kernel_major = version.major;
    facts.kernel_minor = version.minor;
    facts.image = m_plan.root;
    facts.image_filesystems = TRY(image_filesystems());
    facts.root_job = m_plan.creds.uid == 0;
    for (const auto& op : m_plan.mounts)
      if (op.kind == MountOp::Kind::bind && !op.read_only)
        facts.owner_mapped.emplace_back(m_plan.sources[op.source].path, TRY(kernel::filesystem_type(m_opened.sources[op.source].get())));
    const IdDecision decision = TRY(decide_ids(facts));
    m_mode = decision.mode;
    m_h.detached = decision.detached;
    std::uint32_t base = 0;
    if (m_mode == IdMode::mapped) {
      m_block.emplace(TRY(IdBlockClaim::claim(id_claims_dir(m_state_dir), m_state_dir, m_plan.job_ids, m_name)));
      base = m_block->base();
    }
    m_maps = TRY(job_id_maps(m_mode, base, m_plan.creds));
    const std::uint32_t job_uid = *host_id(m_maps.uid, m_plan.creds.uid);
    const std::uint32_t job_gid = *host_id(m_maps.gid, m_plan.creds.gid);
    m_h.init_ids = m_plan.unprivileged ? detail::InitIds::keep : m_mode == IdMode::mapped ? detail::InitIds::root : detail::InitIds::job_user;
    uid_t disk_uid = job_uid;
    gid_t disk_gid = job_gid;
    if (m_plan.creds.uid == 0) {
      // A job as root runs for its sandbox's owner: what it writes lands on disk as that user,
      // with that user's primary group (not the directory's group, which the user may not be
      // in: a setgid file would give that group to whoever runs it).
      const uid_t owner = m_opened.sandbox_owner.st_uid;
      if (owner == 0)
        return fail(Errc::permission, str("the sandbox belongs to root; a job as root writes its files as its sandbox's owner, "
                                          "so the sandbox must belong to the user the job runs for (chown it)"));
      const auto user = TRY(host_user(owner));
      if (!user) return fail(Errc::permission, str("the sandbox belongs to uid ", owner, ", which is no user of this host"));
      if (user->gid == 0)
        return fail(Errc::permission, str("the sandbox's owner ", user->name,
                                          " has group root (gid 0) as its primary group; a job "
                                          "as root writes its files with that group, which must not be root"));
      if (m_opened.sandbox_owner.st_gid != user->gid)
        return fail(Errc::permission,
                    str("the sandbox has group ", m_opened.sandbox_owner.st_gid, ", not its owner ", user->name, "'s primary group ", user->gid,
                        "; a job as root writes its files as ", user->name, " and its group (chgrp it)"));
      m_owner_maps = owner_id_maps(owner, user->gid, job_uid, job_gid);
      disk_uid = owner;
      disk_gid = user->gid;
    }
    return detail::make_scratch_dirs(m_plan, m_opened, disk_uid, disk_gid);
  }

  // The filesystem type of the image root and of every mount below it, as this namespace's
  // mount table lists them under the root's real path.
  Result<std::vector<std::pair<std::string, std::uint64_t>>> image_filesystems() const {
    return host::filesystems_below(m_opened.image.get(), m_plan.root);
  }

  // 5. The job's cgroup: a record written first (so a SIGKILL at any later point leaves
  //    something cleanup can find), then a cgroup in every hierarchy with its limits.
  Status create_cgroup() {
    if (!m_plan.use_cgroup) return {};
    if (!m_state_dir.empty()) {
      auto r = StateRecord::create(m_state_dir, m_name, cgroup::JobCgroup::candidate_dirs(m_layout, m_plan.limits, m_name),
                                   m_block ? std::optional<std::uint32_t>(m_block->base()) : std::nullopt);
      if (r) m_record.emplace(std::move(*r));
      else if (!m_plan.unprivileged) return fail(std::move(r.error()));
    }
    std::vector<std::string> notes;
    m_cg.emplace(TRY(cgroup::JobCgroup::create(cgroup::real_fs(), m_layout, m_name, m_plan.limits, !m_plan.unprivileged, notes)));
    m_out.cgroup = std::string(cgroup::version_name(m_cg->version()));
    if (m_cg->version() == cgroup::Version::none && !m_plan.limits.any() && !m_plan.unprivileged)
      say(str(notes.empty() ? "no cgroup for the job" : join(notes, "; "), "; the job runs in the caller's cgroups"));
    m_out.limits_applied = m_plan.limits.any() && m_cg->version() != cgroup::Version::none && m_cg->limits_applied();
    if (m_plan.limits.any() && !m_out.limits_applied) {
      const std::string why = notes.empty() ? "cgroup limits are not available" : join(notes, "; ");
      if (m_plan.require_limits) return fail(Errc::unsupported, str("--require-limits: ", why));
      say(str(why, "; running without ", m_cg->version() == cgroup::Version::none ? "cgroup limits" : "some limits"));
    }
    m_out.memory_limit_bytes = m_cg->version() != cgroup::Version::none ? m_plan.limits.memory_max : std::nullopt;
    return {};
  }

  // 6. Block the signals to forward, so none is lost between here and the supervision loop.
  Status block_signals() {
    sigset_t forwarded;
    sigemptyset(&forwarded);
    for (int s : detail::k_forwarded_signals) sigaddset(&forwarded, s);
    sigaddset(&forwarded, SIGCHLD);
    if (m_plan.pty) sigaddset(&forwarded, SIGWINCH);
    if (::sigprocmask(SIG_BLOCK, &forwarded, &m_signals.old) != 0) return fail_errno("sigprocmask(SIG_BLOCK)", errno);
    m_signals.active = true;
    m_sfd = Fd(::signalfd(-1, &forwarded, SFD_CLOEXEC));
    if (!m_sfd) return fail_errno("signalfd", errno);
    return {};
  }

  // 6b. A job any of whose standard streams is the caller's terminal gets a pseudo-terminal of
  //     its own, with the caller's modes and size, as each of its standard streams that was
  //     that terminal; the launcher relays the two while the job runs.
  Status open_terminal() {
    m_h.stdin_fd = m_plan.stdin_fd;
    m_h.stdout_fd = m_plan.stdout_fd;
    m_h.stderr_fd = m_plan.stderr_fd;
    if (!m_plan.pty) return {};
    const bool in_tty = m_plan.stdin_fd >= 0 && ::isatty(m_plan.stdin_fd) == 1;
    const bool out_tty = ::isatty(m_plan.stdout_fd) == 1;
    const bool err_tty = ::isatty(m_plan.stderr_fd) == 1;
    if (!in_tty && !out_tty && !err_tty) return {};
    const int terminal = in_tty ? m_plan.stdin_fd : out_tty ? m_plan.stdout_fd : m_plan.stderr_fd;
    m_terminal.emplace(
        TRY(detail::Terminal::open(terminal, in_tty ? m_plan.stdin_fd : -1, out_tty || !err_tty ? m_plan.stdout_fd : m_plan.stderr_fd)));
    if (in_tty) m_h.stdin_fd = m_terminal->slave();
    if (out_tty) m_h.stdout_fd = m_terminal->slave();
    if (err_tty) m_h.stderr_fd = m_terminal->slave();
    m_h.controlling_tty = in_tty ? 0 : out_tty ? 1 : 2;
    return {};
  }

  // 7. Init: an ordinary (fork-like) clone into new user, mount, PID, IPC and UTS namespaces
  //    (and network with --net none). On v2 it is born in the job's cgroup (CLONE_INTO_CGROUP);
  //    otherwise it first moves itself there, through descriptors opened here. Then it waits
  //    for the go-ahead on the channel before it does anything else.
  Status start_init() {
    m_report = TRY(Pipe::make());
    m_channel = TRY(Channel::make());
    m_lifeline = TRY(Pipe::make());
    m_h.image = m_opened.image.get();
    for (const auto& s : m_opened.sources) m_h.sources.push_back(s.get());
    m_h.detached_count = 1 + static_cast<std::size_t>(std::count_if(m_plan.mounts.begin(), m_plan.mounts.end(),
                                                                    [](const MountOp& op) { return op.kind == MountOp::Kind::bind; }));
    m_h.channel = m_channel.child.get();
    m_h.report = m_report.write.get();
    m_h.lifeline = m_lifeline.read.get();
    m_h.parent_only = {m_report.read.get(), m_lifeline.write.get(), m_channel.launcher.get()};
    m_h.cgroup_namespace = m_plan.user_namespace;
    std::uint64_t flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS;
    if (m_plan.new_net) flags |= CLONE_NEWNET;
    if (m_plan.user_namespace) flags |= CLONE_NEWUSER;
    Fd cgroup_dir;
    std::vector<Fd> procs;
    if (m_cg && m_cg->version() == cgroup::Version::v2) cgroup_dir = TRY(m_cg->open_dir());
    if (m_cg && m_cg->version() == cgroup::Version::v1) procs = TRY(m_cg->open_procs());
    for (const auto& p : procs) m_h.cgroup_procs.push_back(p.get());
    m_started_ns = sys::monotonic_ns();
    auto child = kernel::start_child(flags, cgroup_dir ? cgroup_dir.get() : -1);
    if (!child && child.error().code() == Errc::unsupported && cgroup_dir) {
      // Before 5.7: init joins through cgroup.procs itself.
      procs = TRY(m_cg->open_procs());
      for (const auto& p : procs) m_h.cgroup_procs.push_back(p.get());
      child = kernel::start_child(flags, -1);
    }
    if (!child) return fail(std::move(child.error()));
    if (*child == 0) detail::init_main(m_plan, m_h);  // never returns
    m_init = *child;
    m_report.write.reset();
    m_channel.child.reset();
    m_lifeline.read.reset();
    if (m_terminal) m_terminal->close_slave();  // the job holds it now; its end is the master's EOF
    return {};
  }

  // 8. Init's uid_map and gid_map (setgroups denied first by an unprivileged launcher, which
  //    may only map its own ids).
  Status map_ids() {
    if (!m_plan.user_namespace) return {};
    TRY(detail::write_id_maps(m_init, m_maps, m_plan.unprivileged));
    m_out.id_mode = m_mode == IdMode::mapped ? "mapped" : "identity";
    m_out.uid_map = id_map_text(m_maps.uid);
    m_out.gid_map = id_map_text(m_maps.gid);
    if (m_block) m_out.id_block = m_block->base();
    return {};
  }

  // 9. The go-ahead. With detached mounts it carries them: the image (read-only, nosuid,
  //    nodev, idmapped with init's own user namespace in mapped mode) and one mount per bind
  //    (a root job's writable ones idmapped to its sandbox's owner), all private, made here
  //    by root from the objects opened in step 2 and attached nowhere until init moves them.
  Status hand_over() {
    std::vector<Fd> mounts;
    if (m_h.detached) {
      detail::DetachedIds ids;
      Fd job_userns, owner_userns;
      if (m_mode == IdMode::mapped) {
        job_userns = TRY(sys::open_path(str("/proc/", m_init, "/ns/user"), O_RDONLY));
        ids.job_userns = job_userns.get();
      }
      if (m_owner_maps) {
        owner_userns = TRY(kernel::make_user_namespace(id_map_text(m_owner_maps->uid), id_map_text(m_owner_maps->gid)));
        ids.owner_userns = owner_userns.get();
      }
      mounts = TRY(detail::detach_mounts(m_plan, m_opened, ids));
    }
    std::vector<int> fds;
    for (const auto& m : mounts) fds.push_back(m.get());
    TRY(kernel::send_fds(m_channel.launcher.get(), fds));
    m_channel.launcher.reset();
    if (m_terminal) TRY(m_terminal->make_caller_raw());
    return {};
  }

  // 10. Forward each signal to init (which forwards it to the job) until init has exited (it
  //     only does once every process of the namespace is gone).
  //     With a terminal of the job's own, relay it meanwhile.
  void supervise() {
    bool done = false;
    while (!done) {
      if (m_terminal) {
        std::vector<pollfd> fds = m_terminal->poll_fds();
        fds.push_back({m_sfd.get(), POLLIN, 0});
        if (sys::retry_eintr([&] { return ::poll(fds.data(), fds.size(), -1); }) < 0) break;
        m_terminal->on_ready(fds);
        if (!fds.back().revents) continue;
      }
      struct signalfd_siginfo si {};
      const ssize_t n = ::read(m_sfd.get(), &si, sizeof si);
      if (n != static_cast<ssize_t>(sizeof si)) {
        if (n < 0 && errno == EINTR) continue;
        break;
      }
      if (static_cast<int>(si.ssi_signo) == SIGCHLD) done = ::wait4(m_init, &m_init_status, WNOHANG, &m_usage) == m_init;
      else if (static_cast<int>(si.ssi_signo) == SIGWINCH && m_terminal) m_terminal->resize();
      else ::kill(m_init, static_cast<int>(si.ssi_signo));
    }
    if (m_terminal) m_terminal->drain();
    if (!done) {
      ::kill(m_init, SIGKILL);
      (void)sys::retry_eintr([&] { return ::wait4(m_init, &m_init_status, 0, &m_usage); });
    }
    m_init = -1;
  }

  // 11. The outcome from init's reports; accounting and the limits read back from the cgroup,
  //     then whatever is left in it is killed and it is removed. If that fails, the record and
  //     the id block stay, so that the next cleanup retries and no other job gets those ids
  //     while a process of this one may live.
  Outcome finish() {
    const Reports reports = read_reports(m_report.read.get());
    m_out.wall_seconds = static_cast<double>(sys::monotonic_ns() - m_started_ns) / 1e9;
    m_out.cpu_user_seconds = seconds(m_usage.ru_utime);
    m_out.cpu_system_seconds = seconds(m_usage.ru_stime);
    m_out.max_rss_bytes = static_cast<std::uint64_t>(m_usage.ru_maxrss) * 1024;
    if (reports.last) {
      fill_from_report(m_out, *reports.last, reports.text);
    } else if (reports.job_started) {
      // init itself was killed (by the OOM killer, or SIGKILL from outside) while the job ran;
      // the kernel took the whole namespace, the job included.
      m_out.kind = Outcome::Kind::signaled;
      m_out.code = WIFSIGNALED(m_init_status) ? WTERMSIG(m_init_status) : SIGKILL;
      m_out.error = str("the launch's init process ended (", WIFSIGNALED(m_init_status) ? "signal " : "status ",
                        WIFSIGNALED(m_init_status) ? WTERMSIG(m_init_status) : WEXITSTATUS(m_init_status), ") without reporting the job's status");
    } else {
      m_out.kind = Outcome::Kind::setup_failed;
      m_out.error = WIFSIGNALED(m_init_status)
                        ? str("the launch's init process was killed by signal ", WTERMSIG(m_init_status), " before the job started")
                        : str("the launch's init process exited with status ", WEXITSTATUS(m_init_status), " before the job started");
    }
    if (m_cg && m_cg->version() != cgroup::Version::none) {
      const auto acc = m_cg->read_accounting(cgroup::real_fs());
      m_out.peak_memory_bytes = acc.peak_memory;
      m_out.oom_kills = acc.oom_kills;
      m_out.memory_limit_hit = acc.memory_limit_hit;
      m_out.effective_limits = m_cg->read_limits(cgroup::real_fs());
      m_out.limits_changed = *m_out.effective_limits != m_cg->limits_set();
      if (auto r = m_cg->destroy(cgroup::real_fs()); !r) {
        say(str("the job's cgroup could not be removed (", r.error().what(), "); 'chrootctl cleanup' will retry"));
        if (m_record) m_record->release();
        if (m_block) m_block->release();
      }
    }
    return std::move(m_out);
  }

  // A step failed: init, if it was started, is ended (closing the channel would do, wherever it
  // waits; SIGKILL makes sure), and the cgroup, id block and record go with this object.
  Outcome abandon(const Error& e) {
    if (m_init > 0) {
      m_channel.launcher.reset();
      ::kill(m_init, SIGKILL);
      (void)sys::retry_eintr([&] { return ::waitpid(m_init, nullptr, 0); });
      m_init = -1;
    }
    m_out.kind = Outcome::Kind::setup_failed;
    m_out.error = e.what();
    return std::move(m_out);
  }

 private:
  void say(const std::string& m) {
    if (m_warn) m_warn(m);
  }

  const LaunchPlan& m_plan;
  const std::function<void(const std::string&)>& m_warn;
  Outcome m_out;
  kernel::SelfStat m_self{};
  std::string m_name;
  detail::OpenedSources m_opened;
  std::optional<SeccompProgram> m_filter;
  cgroup::Layout m_layout;
  std::string m_state_dir;
  IdMode m_mode = IdMode::identity;
  IdMaps m_maps;
  std::optional<IdMaps> m_owner_maps;
  std::optional<StateRecord> m_record;
  std::optional<IdBlockClaim> m_block;
  std::optional<cgroup::JobCgroup> m_cg;
  SignalGuard m_signals;
  Fd m_sfd;
  std::optional<detail::Terminal> m_terminal;
  Pipe m_report;
  Channel m_channel;
  Pipe m_lifeline;
  detail::ChildHandles m_h;
  std::int64_t m_started_ns = 0;
  pid_t m_init = -1;
  int m_init_status = 0;
  struct rusage m_usage {};
};

}  // namespace

int Outcome::exit_status() const {
  switch (kind) {
    case Kind::exited:
      return code;
    case Kind::signaled:
      return 128 + code;
    case Kind::setup_failed:
      return 125;
    case Kind::not_executable:
      return 126;
    case Kind::not_found:
      return 127;
  }
  return 125;
}

Outcome execute(const LaunchPlan& plan, const std::function<void(const std::string&)>& warn) {
  Launch launch(plan, warn);
  using Step = Status (Launch::*)();
  static constexpr Step k_steps[] = {
      &Launch::check_caller,            // 1. not setuid; single-threaded
      &Launch::open_sources,            // 2. the root, the sandbox, every bind source
      &Launch::read_filter,             // 2b. the system-call filter, read and checked
      &Launch::clean_up_dead_launches,  // 3. records, cgroups and id blocks of dead launches
      &Launch::choose_ids,              // 4. mapped or identity, an id block, scratch dirs
      &Launch::create_cgroup,           // 5. the record, then a cgroup in every hierarchy
      &Launch::block_signals,           // 6. forwarded signals, read from a signalfd
      &Launch::open_terminal,           // 6b. the job's own terminal, if the caller is on one
      &Launch::start_init,              // 7. clone into new namespaces; init waits
      &Launch::map_ids,                 // 8. init's uid_map and gid_map
      &Launch::hand_over,               // 9. the detached (idmapped) mounts and the go-ahead
  };
  auto with_user = [&plan](Outcome o) {
    o.job_uid = plan.creds.uid;
    o.job_user = plan.creds.name;
    return o;
  };
  for (Step step : k_steps)
    if (auto r = (launch.*step)(); !r) return with_user(launch.abandon(r.error()));
  launch.supervise();                 // 10. signals to init until it exits
  return with_user(launch.finish());  // 11. reports, accounting, limits read back; the cgroup removed
}

}  // namespace chrootctl::launcher
