// The host boundary of a launch (docs/launcher.md): a bounded /dev/shm, secrets kept out of every
// command line, a sandbox that is a real directory of the job user or root, and the caller's
// terminal behind a pseudo-terminal of the job's own.
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "chrootctl/common/strings.hpp"
#include "launcher_fixture.hpp"
#include "test_support.hpp"

namespace chrootctl {
namespace {

namespace fx = test::launcher;

class LauncherBoundary : public fx::BusyboxRootTest {
 protected:
  std::vector<std::string> args(const std::vector<std::string>& options, const std::vector<std::string>& cmd) {
    return run_args("nobody", options, cmd);
  }
  test::CommandResult job(const std::string& script, const std::vector<std::string>& options = {}) {
    return test::run_chrootctl(args(options, {"/bin/sh", "-c", script}));
  }
};

TEST_F(LauncherBoundary, DevShmIsBoundedByDefaultByTheMemoryLimitAndByShm) {
  const std::string status = path("status.json");
  struct Case {
    std::vector<std::string> options;
    std::string kib;
  };
  for (const auto& c : {Case{{}, "65536"}, Case{{"--memory", "32M"}, "32768"}, Case{{"--shm", "8M", "--memory", "1G"}, "8192"}}) {
    SCOPED_TRACE(join(c.options, " "));
    auto options = c.options;
    options.insert(options.end(), {"--status-json", status});
    auto r = job("df -k /dev/shm | tail -1 | tr -s ' ' | cut -d' ' -f2", options);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, c.kib + "\n");
    EXPECT_NE(test::read_file(status).find(str("\"shm_bytes\": ", std::stoull(c.kib) * 1024, ",")), std::string::npos) << test::read_file(status);
  }
  // Writing past the size fails (without a memory limit, so nothing else stops it).
  auto full = job("dd if=/dev/zero of=/dev/shm/fill bs=1M count=16 2>&1 | grep -o 'No space left on device'", {"--shm", "4M"});
  EXPECT_EQ(full.out, "No space left on device\n");
  auto zero = test::run_chrootctl(args({"--shm", "0"}, {"/bin/true"}));
  EXPECT_EQ(zero.exit_code, 125);
  EXPECT_EQ(zero.err, "chrootctl run: --shm must be more than 0\n");
}

TEST_F(LauncherBoundary, EnvValuesReachTheJobButNoCommandLine) {
  const std::string secret = "s3cret-" + fx::unique_number();
  const std::string file = path("env");
  test::write_file(file, "# the job's token\nTOKEN=" + secret + "-file\n\nPLAIN=1\n");
  fx::Spawned s(m_dir, args({"--env", "SECRET=" + secret, "--env-file", file},
                            {"/bin/sh", "-c", "echo $SECRET $TOKEN $PLAIN; tr '\\0' ' ' < /proc/1/cmdline; echo; touch ready; sleep 1"}));
  ASSERT_TRUE(fx::eventually([&] { return fx::exists(sandbox + "/ready"); })) << s.err();
  // What every host user can read while the job runs.
  const std::string launcher_cmdline = test::read_file(str("/proc/", s.pid(), "/cmdline"));
  auto ps = test::sh("ps -eo args");
  EXPECT_EQ(s.wait(), 0) << s.err();
  const auto lines = split(s.out(), '\n');
  ASSERT_GE(lines.size(), 2u);
  EXPECT_EQ(lines[0], secret + " " + secret + "-file 1");
  EXPECT_NE(lines[1].find("--env SECRET="), std::string::npos) << lines[1];
  EXPECT_EQ(lines[1].find(secret), std::string::npos) << "init's command line, as the job sees it: " << lines[1];
  EXPECT_EQ(launcher_cmdline.find(secret), std::string::npos);
  EXPECT_EQ(ps.out.find(secret), std::string::npos);
  // A line that is not K=V is named with its file and line.
  test::write_file(file, "OK=1\nnot an assignment\n");
  auto bad = test::run_chrootctl(args({"--env-file", file}, {"/bin/true"}));
  EXPECT_EQ(bad.exit_code, 125);
  EXPECT_EQ(bad.err, "chrootctl: error: " + file + ":2: expected K=V\n");
  // A file another user could write is not read.
  ASSERT_EQ(::chmod(file.c_str(), 0666), 0);
  auto loose = test::run_chrootctl(args({"--env-file", file}, {"/bin/true"}));
  EXPECT_EQ(loose.exit_code, 125);
  EXPECT_EQ(loose.err, "chrootctl: error: --env-file " + file +
                           ": owned by uid 0 with mode 0666; it must belong to root or to you and be writable by no one else\n");
}

TEST_F(LauncherBoundary, TheSandboxMustBeARealDirectoryOfTheJobUserOrRoot) {
  // A symlink as the sandbox: refused before anything is made where it points.
  const std::string target = path("elsewhere");
  test::mkdirs(target);
  ASSERT_EQ(::chown(target.c_str(), 65534, 65534), 0);
  const std::string link = path("link");
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  sandbox = link;
  auto r = job("true");
  EXPECT_EQ(r.exit_code, 125);
  EXPECT_EQ(r.err, "chrootctl run: the sandbox " + link + " is not a directory (a symlink?); give the real directory\n");
  EXPECT_FALSE(fx::exists(target + "/tmp"));
  // Another user's directory (even one the job user could write to): refused untouched.
  const std::string other = path("others");
  test::mkdirs(other);
  ASSERT_EQ(::chown(other.c_str(), 1, 1), 0);
  ASSERT_EQ(::chmod(other.c_str(), 0777), 0);
  sandbox = other;
  r = job("true");
  EXPECT_EQ(r.exit_code, 125);
  EXPECT_EQ(r.err,
            "chrootctl run: the sandbox " + other + " belongs to uid 1, neither to the job user (uid 65534) nor to root; refusing to use it\n");
  EXPECT_FALSE(fx::exists(other + "/tmp"));
  // A system directory of the host, or a directory inside the image, however owned.
  sandbox = "/etc";
  r = job("true");
  EXPECT_EQ(r.exit_code, 125);
  EXPECT_EQ(r.err, "chrootctl run: the sandbox /etc is /etc, a system directory of the host; give a directory of the job's own\n");
  EXPECT_FALSE(fx::exists("/etc/var/tmp"));
  sandbox = root + "/srv";
  r = job("true");
  EXPECT_EQ(r.exit_code, 125);
  EXPECT_EQ(r.err, "chrootctl run: the sandbox " + root + "/srv is inside the image " + root + "; give a directory outside it\n");
  EXPECT_FALSE(fx::exists(root + "/srv/tmp"));
  // Root's own directory is fine: its scratch directories are made for the job user.
  const std::string roots = path("roots");
  test::mkdirs(roots);
  sandbox = roots;
  r = job("touch /tmp/x");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  struct stat st {};
  ASSERT_EQ(::stat((roots + "/tmp/x").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 65534u);
}

// A symlink the job user planted in a directory of theirs must not point the launch at a
// root-owned directory of the host (where it would make scratch directories the job writes
// in), nor a root job at another user's directory (whose owner it would write as). A sandbox
// of the job user's own is still taken through a symlink: it gives the job nothing new.
TEST_F(LauncherBoundary, ASandboxOfRootOrOfARootJobIsTakenOnlyAtItsRealPath) {
  const std::string host_dir = path("host-etc");  // stands for /etc/ssh: root's, 0755
  test::mkdirs(host_dir + "/ssh");
  const std::string users = path("alice");
  test::mkdirs(users);
  ASSERT_EQ(::chown(users.c_str(), 65534, 65534), 0);
  ASSERT_EQ(::symlink(host_dir.c_str(), (users + "/d").c_str()), 0);
  sandbox = users + "/d/ssh";
  auto r = job("echo pwned > /tmp/x");
  EXPECT_EQ(r.exit_code, 125);
  EXPECT_EQ(r.err, "chrootctl run: the sandbox " + sandbox + " is reached through a symlink (it is " + host_dir +
                       "/ssh); a sandbox of root's is taken only at its real path: give that\n");
  EXPECT_EQ(test::sh("ls -A " + host_dir + "/ssh").out, "") << "nothing is made in the root-owned directory";
  // The same directory at its real path is the caller's choice, as before.
  sandbox = host_dir + "/ssh";
  r = job("true");
  EXPECT_EQ(r.exit_code, 0) << r.err;

  // A root job through a symlink to a directory of another user (uid 1): refused untouched.
  const std::string others = path("daemons") + "/sb";
  test::mkdirs(others);
  ASSERT_EQ(::chown(others.c_str(), 1, 1), 0);
  ASSERT_EQ(::symlink(path("daemons").c_str(), (users + "/o").c_str()), 0);
  sandbox = users + "/o/sb";
  r = test::run_chrootctl(run_args("root", {}, {"/bin/sh", "-c", "touch /tmp/x"}));
  EXPECT_EQ(r.exit_code, 125);
  EXPECT_EQ(r.err, "chrootctl run: the sandbox " + sandbox + " is reached through a symlink (it is " + others +
                       "); a job as root is taken only at its real path: give that\n");
  EXPECT_EQ(test::sh("ls -A " + others).out, "");

  // The job user's own sandbox through a symlinked parent: taken, and the job writes there.
  const std::string own = path("own");
  test::mkdirs(own + "/sb");
  ASSERT_EQ(::chown((own + "/sb").c_str(), 65534, 65534), 0);
  ASSERT_EQ(::symlink(own.c_str(), (users + "/mine").c_str()), 0);
  sandbox = users + "/mine/sb";
  r = job("touch /tmp/x");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fx::exists(own + "/sb/tmp/x"));
}

// Runs `argv` (chrootctl's arguments, or a whole command line starting with '/') on a new
// terminal as its controlling terminal and standard streams, as an interactive shell would;
// returns everything written to the terminal.
struct OnTerminal {
  std::string seen;
  int status = -1;
  struct termios after {};  // the terminal's modes once chrootctl has exited
  int injected = -1;        // bytes waiting in the terminal's input queue afterwards
};
OnTerminal on_terminal(const std::vector<std::string>& argv, bool stdin_too = true) {
  OnTerminal r;
  int master = -1, slave = -1;
  char name[256];
  if (::openpty(&master, &slave, name, nullptr, nullptr) != 0) return r;
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setsid();
    ::ioctl(slave, TIOCSCTTY, 0);
    for (int fd = 0; fd < 3; ++fd) ::dup2(slave, fd);
    if (!stdin_too) ::dup2(::open("/dev/null", O_RDONLY), 0);
    std::vector<std::string> all;
    if (argv.front().front() != '/') all.emplace_back(CHROOTCTL_BIN);
    all.insert(all.end(), argv.begin(), argv.end());
    std::vector<char*> v;
    v.reserve(all.size() + 1);
    for (auto& a : all) v.push_back(a.data());
    v.push_back(nullptr);
    ::execv(v[0], v.data());
    ::_exit(127);
  }
  char buf[4096];
  while (true) {
    struct pollfd p {
      master, POLLIN, 0
    };
    if (::poll(&p, 1, 100) > 0) {
      const ssize_t n = ::read(master, buf, sizeof buf);
      if (n > 0) r.seen.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
  }
  ::tcgetattr(slave, &r.after);
  // What is waiting in the terminal's input: only complete lines show in canonical mode.
  struct termios raw = r.after;
  ::cfmakeraw(&raw);
  ::tcsetattr(slave, TCSANOW, &raw);
  ::ioctl(slave, FIONREAD, &r.injected);
  ::close(master);
  ::close(slave);
  return r;
}

TEST_F(LauncherBoundary, OnATerminalTheJobGetsOneOfItsOwnAndWhatItDoesThereStaysThere) {
  // Control: in the terminal's own session, the probe injects into its input, and the check
  // below sees it.
  auto control = on_terminal({root + "/bin/probe", "tiocsti"});
  ASSERT_EQ(control.status, 0);
  EXPECT_EQ(control.injected, 1);
  // The job: a terminal (its controlling one), whose echo it turns off, into whose input it
  // injects, and whose foreground process group it takes; none of it reaches the caller's.
  // (Without the system-call filter, which would refuse TIOCSTI itself: this is the terminal's
  // own boundary.)
  auto r =
      on_terminal(args({"--seccomp", "none"}, {"/bin/sh", "-c",
                                               "test -t 0 && test -t 1 && echo job-on-a-terminal; stty -echo; probe tiocsti; probe open /dev/tty; "
                                               "echo done"}));
  EXPECT_EQ(r.status, 0) << r.seen;
  EXPECT_NE(r.seen.find("job-on-a-terminal"), std::string::npos) << r.seen;
  EXPECT_NE(r.seen.find("ok\r\nok\r\ndone"), std::string::npos) << "TIOCSTI and /dev/tty on its own terminal: " << r.seen;
  EXPECT_TRUE(r.after.c_lflag & ECHO) << "the job's stty -echo stayed on the caller's terminal";
  EXPECT_TRUE(r.after.c_lflag & ICANON) << "the caller's terminal was left raw";
  EXPECT_EQ(r.injected, 0) << "something was injected into the caller's terminal";
  // Standard input elsewhere (a batch system's /dev/null), output on the terminal: the job still
  // gets a terminal of its own for its output, and what it does to it stays there.
  auto out_only = on_terminal(args({}, {"/bin/sh", "-c", "test -t 0 || test -t 1 && echo output-on-a-terminal; stty -echo <&1"}), false);
  EXPECT_EQ(out_only.status, 0) << out_only.seen;
  EXPECT_NE(out_only.seen.find("output-on-a-terminal"), std::string::npos) << out_only.seen;
  EXPECT_TRUE(out_only.after.c_lflag & ECHO) << "the job's stty -echo through its output stayed on the caller's terminal";
  // With --no-pty the job gets the caller's terminal itself (no controlling terminal, so no
  // TIOCSTI), and a mode change it makes stays: the escape the default closes.
  auto direct = on_terminal(args({"--no-pty", "--seccomp", "none"}, {"/bin/sh", "-c", "stty -echo; probe tiocsti"}));
  EXPECT_EQ(direct.status, 0) << direct.seen;
  EXPECT_NE(direct.seen.find("Operation not permitted"), std::string::npos) << direct.seen;
  EXPECT_FALSE(direct.after.c_lflag & ECHO);
  EXPECT_EQ(direct.injected, 0);
}

}  // namespace
}  // namespace chrootctl
