#pragma once
// Fixtures for the launcher's privileged tests: a busybox-static job root built at test time with
// the static probe program (tests/support/probe.c, for the checks busybox cannot make) in it, and
// views of the host's mount table.

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <functional>
#include <map>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace chrootctl::test::launcher {

/// Path of the probe (tests/support/probe.c), a static program with a subcommand per check,
/// built with the tests.
inline std::string probe_binary() {
  const std::string path = CHROOTCTL_TEST_PROBE;
  if (::access(path.c_str(), X_OK) != 0) ADD_FAILURE() << "the probe " << path << " is missing: build the tests first";
  return path;
}

/// A busybox-static job root at `root`, root-owned, mode 0755, with the probe in /bin.
inline void make_busybox_root(const std::string& root) {
  for (const char* d : {"", "/bin", "/tmp", "/var", "/var/tmp", "/proc", "/dev", "/etc", "/usr", "/usr/bin", "/srv", "/root"}) mkdirs(root + d, 0755);
  ASSERT_EQ(sh("cp /bin/busybox '" + root + "/bin/busybox'").exit_code, 0);
  for (const char* a :
       {"sh",   "ls",       "cat",    "id",         "echo",  "mount",  "umount", "touch", "true",     "false",    "sleep", "ps",  "grep",
        "kill", "hostname", "chroot", "pivot_root", "mkdir", "rm",     "head",   "wc",    "stat",     "readlink", "env",   "pwd", "test",
        "seq",  "ln",       "tr",     "sort",       "dd",    "printf", "cut",    "tail",  "ifconfig", "find",     "xargs", "sed"})
    ASSERT_EQ(::symlink("busybox", (root + "/bin/" + a).c_str()), 0) << a;
  const std::string probe = probe_binary();
  ASSERT_FALSE(probe.empty());
  ASSERT_EQ(sh("cp '" + probe + "' '" + root + "/bin/probe'").exit_code, 0);
  write_file(root + "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
  ASSERT_EQ(::chmod(root.c_str(), 0755), 0);
}

/// The host's mount table lines that mention `needle` (a test's unique directory).
inline std::vector<std::string> host_mounts_mentioning(const std::string& needle) {
  std::ifstream in("/proc/self/mountinfo");
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line))
    if (line.find(needle) != std::string::npos) out.push_back(line);
  return out;
}

inline std::string whole_mountinfo() { return read_file("/proc/self/mountinfo"); }

/// Directories directly under `dir` (empty if it does not exist).
inline std::vector<std::string> subdirs(const std::string& dir) {
  std::vector<std::string> out;
  auto r = sh("ls -1 '" + dir + "' 2>/dev/null");
  std::istringstream in(r.out);
  std::string l;
  while (std::getline(in, l)) {
    struct stat st {};
    if (!l.empty() && ::stat((dir + "/" + l).c_str(), &st) == 0 && S_ISDIR(st.st_mode)) out.push_back(l);
  }
  return out;
}

/// This process's own cgroup in the v1 hierarchy `controller` ("" for the hierarchy's root):
/// launches started by a test put their job cgroups below it, like below a batch system's.
inline std::string own_v1_cgroup(const std::string& controller) {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    const auto a = line.find(':');
    const auto b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    std::stringstream list(line.substr(a + 1, b - a - 1));
    std::string c;
    while (std::getline(list, c, ','))
      if (c == controller) return line.substr(b + 1) == "/" ? std::string() : line.substr(b + 1);
  }
  return {};
}

/// This process's own cgroup in the v2 hierarchy ("" for the hierarchy's root).
inline std::string own_v2_cgroup() {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("0::", 0) == 0) return line.substr(3) == "/" ? std::string() : line.substr(3);
  return {};
}

/// The v1 controller hierarchies that job_cgroups_of looks at (those mounted here).
inline const std::vector<std::string>& v1_hierarchies() {
  static const std::vector<std::string> k_all = [] {
    std::vector<std::string> out;
    for (const char* h : {"memory", "pids", "freezer", "cpu", "cpuacct"}) {
      struct stat st {};
      if (::stat((std::string("/sys/fs/cgroup/") + h + "/cgroup.procs").c_str(), &st) == 0) out.emplace_back(h);
    }
    return out;
  }();
  return k_all;
}

/// How many job cgroups job_cgroups_of finds for one launch: a job has one in every hierarchy
/// (on v2, the one).
inline std::size_t job_cgroup_count() { return cgroup_version() == "v2" ? 1 : v1_hierarchies().size(); }

/// Job cgroups (named PID.START.N) whose name starts with `pid` + "." (the launches of one
/// test's chrootctl processes are told apart by pid): on v1, under every hierarchy's chrootctl
/// base below this process's own cgroup; on v2, under the chrootctl base in this process's own
/// cgroup or at the root, where the launcher puts them when its own cgroup cannot delegate
/// controllers (it holds other processes: this test's).
inline std::vector<std::string> job_cgroups_of(pid_t pid) {
  std::vector<std::string> bases;
  if (cgroup_version() == "v2") {
    const std::string mount = cgroup2_mount();
    bases.push_back(mount + own_v2_cgroup() + "/chrootctl");
    if (bases.back() != mount + "/chrootctl") bases.push_back(mount + "/chrootctl");
  } else {
    for (const auto& h : v1_hierarchies()) bases.push_back("/sys/fs/cgroup/" + h + own_v1_cgroup(h) + "/chrootctl");
  }
  std::vector<std::string> out;
  for (const auto& base : bases)
    for (const auto& d : subdirs(base))
      if (d.rfind(std::to_string(pid) + ".", 0) == 0) out.push_back(base + "/" + d);
  return out;
}

/// A chrootctl process started by a test, so the test knows its pid (to signal it, kill it,
/// or find the cgroups named after it). Output goes to files in `dir`.
class Spawned {
 public:
  /// Starts CHROOTCTL_BIN with `args`. `in_child` runs in the child before exec (extra fds,
  /// a terminal, dropping to another user).
  Spawned(const std::string& dir, const std::vector<std::string>& args, const std::function<void()>& in_child = {})
      : m_out(dir + "/spawned.out." + std::to_string(++counter())), m_err(dir + "/spawned.err." + std::to_string(counter())) {
    m_pid = ::fork();
    if (m_pid == 0) {
      const int i = ::open("/dev/null", O_RDONLY);
      const int o = ::open(m_out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int e = ::open(m_err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(i, 0);
      ::dup2(o, 1);
      ::dup2(e, 2);
      for (int fd : {i, o, e}) ::close(fd);
      if (in_child) in_child();
      std::vector<std::string> all{CHROOTCTL_BIN};
      all.insert(all.end(), args.begin(), args.end());
      std::vector<char*> argv;
      for (auto& a : all) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }
  Spawned(const Spawned&) = delete;
  Spawned& operator=(const Spawned&) = delete;
  /// A test that stopped early (a failed ASSERT) leaves no launch running: SIGTERM reaches the
  /// job through the launcher, which then removes what it made.
  ~Spawned() {
    if (m_status >= 0 || m_pid <= 0) return;
    ::kill(m_pid, SIGTERM);
    (void)wait();
  }
  pid_t pid() const { return m_pid; }
  /// Waits for exit; returns the status as a shell reports it.
  int wait() {
    if (m_status >= 0) return m_status;
    int status = 0;
    while (::waitpid(m_pid, &status, 0) < 0 && errno == EINTR) {
    }
    m_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return m_status;
  }
  std::string out() const { return read_file(m_out); }
  const std::string& out_path() const { return m_out; }
  const std::string& err_path() const { return m_err; }
  std::string err() const { return read_file(m_err); }

 private:
  static int& counter() {
    static int n = 0;
    return n;
  }
  pid_t m_pid = -1;
  int m_status = -1;
  std::string m_out, m_err;
};

/// Polls `pred` every 10 ms for up to `seconds`.
inline bool eventually(const std::function<bool()>& pred, double seconds = 10) {
  for (int i = 0; i < static_cast<int>(seconds * 100); ++i) {
    if (pred()) return true;
    struct timespec ts {
      0, 10 * 1000 * 1000
    };
    ::nanosleep(&ts, nullptr);
  }
  return pred();
}

inline bool exists(const std::string& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0;
}

/// A busybox root at path("root") and a sandbox owned by nobody at path("sandbox"); fails the
/// test if any mount mentioning the test's directory is left in the host's namespace.
class BusyboxRootTest : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    CHROOTCTL_REQUIRE_PRIVILEGE("root");
    CHROOTCTL_REQUIRE_PRIVILEGE("mount-ns");
    CHROOTCTL_REQUIRE_PRIVILEGE("pid-ns");
    root = path("root");
    make_busybox_root(root);
    sandbox = path("sandbox");
    mkdirs(sandbox);
    ASSERT_EQ(::chown(sandbox.c_str(), 65534, 65534), 0);
    mounts_before = host_mounts_mentioning(m_dir);
  }
  void TearDown() override {
    if (!root.empty()) {
      EXPECT_EQ(host_mounts_mentioning(m_dir), mounts_before) << "a mount leaked to the host";
    }
    TempDirTest::TearDown();
  }
  /// `run --root ROOT --sandbox SANDBOX [--user USER] OPTIONS -- CMD` (no --user when empty).
  std::vector<std::string> run_args(const std::string& user, const std::vector<std::string>& options, const std::vector<std::string>& cmd) const {
    std::vector<std::string> a{"run", "--root", root, "--sandbox", sandbox};
    if (!user.empty()) a.insert(a.end(), {"--user", user});
    a.insert(a.end(), options.begin(), options.end());
    a.push_back("--");
    a.insert(a.end(), cmd.begin(), cmd.end());
    return a;
  }
  std::string root, sandbox;
  std::vector<std::string> mounts_before;
};

/// A unique number for markers (sleep arguments, names) of one test.
inline std::string unique_number() {
  static int n = 0;
  return std::to_string(700000000 + (::getpid() % 100000) * 100 + (++n % 100));
}

}  // namespace chrootctl::test::launcher
