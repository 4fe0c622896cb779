// The v2 cgroup code on a real cgroup2 hierarchy. This machine mounts an empty cgroup2 at
// /sys/fs/cgroup/unified beside its v1 hierarchies: its controllers are all bound to v1, so no
// limit can be written there. The test's Fs claims the memory and pids controllers (so that
// JobCgroup takes its v2 path) and skips only the controller enabling; creating the job's
// cgroup, being born in it with clone3(CLONE_INTO_CGROUP), killing everything in it with
// cgroup.kill and removing it all run against the real kernel. Only chrootctl's own base
// directory is touched.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/launcher/cgroups.hpp"
#include "test_support.hpp"

namespace chrootctl {
namespace {

namespace cg = launcher::cgroup;

class ControllerlessV2 : public cg::Fs {
 public:
  Result<std::string> read(const std::string& path) override {
    if (path.ends_with("/cgroup.controllers")) return std::string("memory pids\n");
    return Fs::read(path);
  }
  Status write(const std::string& path, std::string_view value) override {
    if (path.ends_with("/cgroup.subtree_control")) return {};
    return Fs::write(path, value);
  }
};

std::string unified_mount() {
  auto layout = cg::detect_layout();
  if (!layout) return {};
  return layout->v2_mount;
}

TEST(CgroupV2Real, BornInTheJobCgroupAndKilledWithCgroupKill) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  const std::string mount = unified_mount();
  if (mount.empty() || ::access((mount + "/cgroup.procs").c_str(), W_OK) != 0) {
    if (test::privileged_required()) FAIL() << "no writable cgroup2 mount";
    GTEST_SKIP() << "no writable cgroup2 mount";
  }
  cg::Layout layout;
  layout.v2_mount = mount;
  layout.v2_own = "/";
  const std::string name = str("test-v2-", ::getpid());
  std::vector<std::string> notes;
  ControllerlessV2 fs;
  auto job = cg::JobCgroup::create(fs, layout, name, launcher::Limits{}, true, notes);
  ASSERT_TRUE(job) << job.error().what();
  ASSERT_EQ(job->version(), cg::Version::v2);
  ASSERT_EQ(job->dirs().size(), 1u);
  const std::string dir = job->dirs()[0];
  EXPECT_TRUE(starts_with(dir, mount + "/")) << dir;
  EXPECT_NE(dir.find("/chrootctl/" + name), std::string::npos) << dir;

  auto dirfd = job->open_dir();
  ASSERT_TRUE(dirfd) << dirfd.error().what();
  // A child born in the cgroup (never in the parent's first), which starts a grandchild that
  // escapes its parent by double-forking, as a daemon would. The child says when the middle
  // process is gone and the daemon therefore exists (on a slow machine, such as the VM stage's
  // emulated one, cgroup.procs can otherwise be read while the middle process still lives).
  int ready[2];
  ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
  struct clone_args args {};
  args.flags = CLONE_INTO_CGROUP;
  args.exit_signal = SIGCHLD;
  args.cgroup = static_cast<std::uint64_t>(dirfd->get());
  const long pid = ::syscall(SYS_clone3, &args, sizeof args);
  ASSERT_GE(pid, 0) << "clone3(CLONE_INTO_CGROUP): " << std::strerror(errno);
  if (pid == 0) {
    const pid_t middle = ::fork();
    if (middle == 0) {
      ::close(ready[0]);
      ::close(ready[1]);
      ::setsid();
      if (::fork() == 0) ::pause();
      ::_exit(0);
    }
    ::waitpid(middle, nullptr, 0);
    (void)!::write(ready[1], "r", 1);
    ::pause();
    ::_exit(0);
  }
  ::close(ready[1]);
  char byte = 0;
  ASSERT_EQ(::read(ready[0], &byte, 1), 1);
  ::close(ready[0]);
  // Wait until both the child and the daemon are listed in the job's cgroup.
  std::vector<std::string> pids;
  for (int i = 0; i < 200; ++i) {
    auto procs = sys::read_file(dir + "/cgroup.procs");
    ASSERT_TRUE(procs) << procs.error().what();
    pids.clear();
    for (const auto& l : split(*procs, '\n'))
      if (!l.empty()) pids.push_back(l);
    if (pids.size() >= 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(pids.size(), 2u);
  EXPECT_EQ(pids[0], std::to_string(pid));
  auto self_cg = sys::read_file(str("/proc/", pid, "/cgroup"));
  ASSERT_TRUE(self_cg);
  EXPECT_NE(self_cg->find("0::/chrootctl/" + name + "\n"), std::string::npos) << *self_cg;

  auto destroyed = job->destroy(fs);
  EXPECT_TRUE(destroyed) << destroyed.error().what();
  int status = 0;
  ASSERT_EQ(::waitpid(static_cast<pid_t>(pid), &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  // Dead: gone, or a zombie waiting for whoever reaps orphans on this machine.
  for (const auto& p : pids) {
    auto stat = sys::read_file("/proc/" + p + "/stat");
    const bool dead = !stat || stat->substr(stat->rfind(')') + 2, 1) == "Z";
    EXPECT_TRUE(dead) << "pid " << p << " survived: " << (stat ? *stat : "");
  }
  struct stat st {};
  EXPECT_NE(::stat(dir.c_str(), &st), 0) << dir << " was not removed";
  ::rmdir((mount + "/chrootctl").c_str());  // the base directory, if no other job uses it
}

}  // namespace
}  // namespace chrootctl
