#include "process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "chrootctl/common/fd.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"

namespace chrootctl::builder::detail {

namespace {

// Fork and exec; the child gets SIGKILL if the builder dies, so no tool outlives a killed build.
Result<pid_t> spawn(const std::vector<std::string>& argv, const std::vector<std::pair<std::string, std::string>>* env, int out_fd, int err_fd,
                    const launcher::SeccompProgram* filter = nullptr) {
  if (argv.empty()) return fail(Errc::internal, "spawn: empty argv");
  std::vector<std::string> env_strings;
  if (env)
    for (const auto& [k, v] : *env) env_strings.push_back(k + "=" + v);
  std::vector<char*> args, envp;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return fail_errno(str("fork() for ", argv[0]), errno);
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);  // kernel-direct: child after fork, async-signal-safe only
    if (null < 0 || ::dup2(null, 0) < 0 || ::dup2(out_fd, 1) < 0 || ::dup2(err_fd, 2) < 0) ::_exit(127);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (filter) {
      if (auto r = launcher::install_seccomp_program(*filter); !r) {
        const std::string msg = str("chrootctl: cannot run ", argv[0], ": ", r.error().what(), "\n");
        (void)!::write(2, msg.data(), msg.size());
        ::_exit(127);
      }
    }
    if (env) {
      // PATH for the lookup comes from the tool's own environment.
      for (const auto& [k, v] : *env)
        if (k == "PATH") ::setenv("PATH", v.c_str(), 1);
      ::execvpe(args[0], args.data(), envp.data());
    } else {
      ::execvp(args[0], args.data());
    }
    const std::string msg = str("chrootctl: cannot run ", argv[0], ": ", std::strerror(errno), "\n");
    (void)!::write(2, msg.data(), msg.size());
    ::_exit(127);
  }
  return pid;
}

}  // namespace

std::string render_argv(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    const bool plain = !a.empty() && a.find_first_of(" \t\n'\"\\$`*?[]{}()<>|&;#~") == std::string::npos;
    out += plain ? a : quote(a);
  }
  return out;
}

Result<int> run_host(const HostCommand& cmd, int log_fd, const std::function<void(const std::string&)>& on_line) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return fail_errno("pipe2()", errno);
  Fd rd(p[0]), wr(p[1]);
  auto pid = TRY(spawn(cmd.argv, &cmd.env, wr.get(), wr.get(), cmd.filter));
  wr.reset();
  std::string pending;
  char buf[16384];
  while (true) {
    const ssize_t n = sys::retry_eintr([&] { return ::read(rd.get(), buf, sizeof buf); });
    if (n <= 0) break;
    if (log_fd >= 0) (void)sys::write_all(log_fd, std::string_view(buf, static_cast<std::size_t>(n)));
    pending.append(buf, static_cast<std::size_t>(n));
    std::size_t nl;
    while ((nl = pending.find_first_of("\r\n")) != std::string::npos) {
      const std::string line = pending.substr(0, nl);
      pending.erase(0, nl + 1);
      if (on_line && !line.empty()) on_line(line);
    }
  }
  if (on_line && !pending.empty()) on_line(pending);
  return with_context(sys::wait_child(pid), str("waiting for ", cmd.argv[0]));
}

Result<std::string> capture(const std::vector<std::string>& argv) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return fail_errno("pipe2()", errno);
  Fd rd(p[0]), wr(p[1]);
  auto null = TRY(sys::open_path("/dev/null", O_WRONLY));
  auto pid = TRY(spawn(argv, nullptr, wr.get(), null.get()));
  wr.reset();
  auto child = TRY(sys::collect_child(pid, std::move(rd), Fd(), 0, 64u << 20));
  if (child.read_errno) return fail_errno(str("reading the output of ", render_argv(argv)), child.read_errno);
  if (child.truncated) return fail(Errc::io, str(render_argv(argv), " printed more than 64 MiB"));
  if (child.status != 0) return fail(Errc::io, str(render_argv(argv), " exited with status ", child.status));
  return std::move(child.out);
}

std::string find_in_path(const std::string& tool) {
  const char* path = std::getenv("PATH");
  const std::string p = path && *path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const auto& dir : split(p, ':')) {
    if (dir.empty()) continue;
    std::string full = dir + "/" + tool;
    if (sys::access_path(full, X_OK)) return full;
  }
  return {};
}

std::vector<std::pair<std::string, std::string>> base_env(std::int64_t source_date_epoch) {
  return {{"PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
          {"LANG", "C.UTF-8"},
          {"LC_ALL", "C.UTF-8"},
          {"HOME", "/root"},
          {"TMPDIR", "/tmp"},
          {"SOURCE_DATE_EPOCH", std::to_string(source_date_epoch)},
          {"DEBIAN_FRONTEND", "noninteractive"}};
}

}  // namespace chrootctl::builder::detail
