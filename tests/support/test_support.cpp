#include "test_support.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "chrootctl/common/sys.hpp"

extern char** environ;

namespace chrootctl::test {

namespace {
// chrootctl run from the build tree records launches in BUILD/accounting (its default from a
// checkout). An installation gets that directory and its users/ (root's, 1733) from
// systemd-tmpfiles; here the test binaries make them when they start as root, so that an
// unprivileged launch by a test finds users/ whichever test runs first, and no test sees a
// warning that depends on the order the tests ran in.
const bool g_accounting_dirs = [] {
  if (::geteuid() != 0) return false;
  std::string dir = CHROOTCTL_BIN;
  dir = dir.substr(0, dir.rfind("/cli/")) + "/accounting";
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return false;
  const std::string users = dir + "/users";
  if (::mkdir(users.c_str(), 01733) != 0 && errno != EEXIST) return false;
  return ::chmod(users.c_str(), 01733) == 0;
}();
}  // namespace

void TempDirTest::SetUp() {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/chrootctl-test.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr) << std::strerror(errno);
  m_dir = tmpl;
}

void TempDirTest::TearDown() {
  if (m_dir.empty()) return;
  // Tests may leave read-only or immutable-looking trees; make them removable first.
  sh("chmod -R u+rwX '" + m_dir + "' 2>/dev/null");
  auto r = sys::remove_tree(m_dir);
  EXPECT_TRUE(r) << (r ? "" : r.error().what());
}

CommandResult run(const std::vector<std::string>& argv, const std::string& input, const std::map<std::string, std::string>& env) {
  int in[2], outp[2], errp[2];
  if (::pipe2(in, O_CLOEXEC) || ::pipe2(outp, O_CLOEXEC) || ::pipe2(errp, O_CLOEXEC)) std::abort();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(in[0], 0);
    ::dup2(outp[1], 1);
    ::dup2(errp[1], 2);
    for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(outp[1]);
  ::close(errp[1]);
  CommandResult r;
  std::size_t written = 0;
  if (input.empty()) {
    ::close(in[1]);
    in[1] = -1;
  }
  struct pollfd fds[3];
  bool open_out = true, open_err = true;
  while (open_out || open_err || in[1] >= 0) {
    int n = 0;
    int idx_out = -1, idx_err = -1, idx_in = -1;
    if (open_out) fds[idx_out = n++] = {outp[0], POLLIN, 0};
    if (open_err) fds[idx_err = n++] = {errp[0], POLLIN, 0};
    if (in[1] >= 0) fds[idx_in = n++] = {in[1], POLLOUT, 0};
    if (::poll(fds, static_cast<nfds_t>(n), -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    char buf[65536];
    auto drain = [&](int idx, int fd, std::string& dst, bool& open) {
      if (idx < 0 || !(fds[idx].revents & (POLLIN | POLLHUP | POLLERR))) return;
      const ssize_t k = ::read(fd, buf, sizeof buf);
      if (k <= 0) open = false;
      else dst.append(buf, static_cast<std::size_t>(k));
    };
    drain(idx_out, outp[0], r.out, open_out);
    drain(idx_err, errp[0], r.err, open_err);
    if (idx_in >= 0 && (fds[idx_in].revents & (POLLOUT | POLLERR | POLLHUP))) {
      const ssize_t k = ::write(in[1], input.data() + written, input.size() - written);
      if (k <= 0 || (written += static_cast<std::size_t>(k)) == input.size()) {
        ::close(in[1]);
        in[1] = -1;
      }
    }
  }
  ::close(outp[0]);
  ::close(errp[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

CommandResult run_chrootctl(const std::vector<std::string>& args, const std::map<std::string, std::string>& env) {
  std::vector<std::string> argv{CHROOTCTL_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, {}, env);
}

CommandResult sh(const std::string& command) { return run({"/bin/sh", "-c", command}); }

void write_file(const std::string& path, const std::string& content, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
  ASSERT_GE(fd, 0) << path << ": " << std::strerror(errno);
  ASSERT_EQ(::write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
  ::fchmod(fd, mode);
  ::close(fd);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

void mkdirs(const std::string& path, mode_t mode) {
  auto r = sys::mkdir_p(path, mode);
  ASSERT_TRUE(r) << r.error().what();
}

bool privileged_required() {
  const char* v = std::getenv("CHROOTCTL_REQUIRE_PRIVILEGED");
  return v && std::string(v) == "1";
}

std::string source_dir() { return CHROOTCTL_TEST_SOURCE_DIR; }

namespace {
// Runs `probe` in a forked child; returns true if it exited 0.
template <class F>
bool probe_in_child(F&& probe) {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(probe() ? 0 : 1);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}
}  // namespace

std::string privilege_missing(const std::string& what) {
  if (what == "root") return ::geteuid() == 0 ? "" : "needs root (euid 0)";
  if (what == "mount-ns")
    return probe_in_child([] {
      return ::unshare(CLONE_NEWNS) == 0 && ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0 &&
             ::mount("tmpfs", "/mnt", "tmpfs", 0, "size=1m") == 0;
    })
               ? ""
               : "cannot create a mount namespace and mount tmpfs (needs CAP_SYS_ADMIN)";
  if (what == "user-ns") return probe_in_child([] { return ::unshare(CLONE_NEWUSER) == 0; }) ? "" : "cannot create a user namespace";
  if (what == "pid-ns") return probe_in_child([] { return ::unshare(CLONE_NEWPID) == 0; }) ? "" : "cannot create a PID namespace";
  if (what == "mknod") {
    if (::geteuid() != 0) return "needs root to create device nodes";
    return probe_in_child([] {
      char tmpl[] = "/tmp/chrootctl-mknod.XXXXXX";
      if (!::mkdtemp(tmpl)) return false;
      const std::string node = std::string(tmpl) + "/null";
      const bool ok = ::mknod(node.c_str(), S_IFCHR | 0600, makedev(1, 3)) == 0;
      ::unlink(node.c_str());
      ::rmdir(tmpl);
      return ok;
    })
               ? ""
               : "mknod of a character device is not permitted here";
  }
  if (what == "cgroup") {
    const std::string version = cgroup_version();
    if (version == "v1") return privilege_missing("cgroup-v1");
    if (version == "v2")
      return ::access((cgroup2_mount() + "/cgroup.subtree_control").c_str(), W_OK) == 0 ? "" : "the cgroup2 hierarchy is not writable";
    return "no cgroup hierarchy with the memory controller (v2 or v1)";
  }
  if (what == "cgroup-v1") {
    struct stat st {};
    if (::stat("/sys/fs/cgroup/memory/memory.limit_in_bytes", &st) != 0) return "no cgroup v1 memory hierarchy";
    return ::access("/sys/fs/cgroup/memory", W_OK) == 0 ? "" : "cgroup v1 memory hierarchy is not writable";
  }
  return "unknown privilege probe '" + what + "'";
}

std::string cgroup2_mount() {
  // mountinfo: "ID PARENT MAJ:MIN ROOT MOUNT-POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER-OPTIONS"
  std::istringstream in(read_file("/proc/self/mountinfo"));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string field, mount_point;
    for (int i = 0; i < 5 && fields >> field; ++i) mount_point = field;
    while (fields >> field && field != "-") {
    }
    if (fields >> field && field == "cgroup2") return mount_point;
  }
  return {};
}

std::string cgroup_version() {
  const std::string v2 = cgroup2_mount();
  if (!v2.empty()) {
    std::istringstream controllers(read_file(v2 + "/cgroup.controllers"));
    std::string c;
    while (controllers >> c)
      if (c == "memory") return "v2";
  }
  struct stat st {};
  return ::stat("/sys/fs/cgroup/memory/memory.limit_in_bytes", &st) == 0 ? "v1" : "";
}

}  // namespace chrootctl::test
