// The fallbacks for kernels older than this one (EL8's 4.18 lacks openat2, mount_setattr,
// clone3 and close_range): a seccomp filter makes those system calls fail with ENOSYS, as an
// old kernel would, and the security properties must hold all the same.
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chrootctl/common/strings.hpp"
#include "launcher_fixture.hpp"
#include "test_support.hpp"

namespace chrootctl {
namespace {

namespace fx = test::launcher;

// Installs a filter that answers ENOSYS to the system calls Linux 4.18 does not have.
bool pretend_old_kernel() {
  const unsigned k_missing[] = {437 /* openat2 */,     442 /* mount_setattr */, 435 /* clone3 */,
                                436 /* close_range */, 428 /* open_tree */,     429 /* move_mount */};
  std::vector<sock_filter> prog{
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
  };
  for (unsigned nr : k_missing) {
    prog.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1));
    prog.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)));
  }
  prog.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  struct sock_fprog fprog {
    static_cast<unsigned short>(prog.size()), prog.data()
  };
  return ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog) == 0;
}

class LauncherOldKernel : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    CHROOTCTL_REQUIRE_PRIVILEGE("root");
    CHROOTCTL_REQUIRE_PRIVILEGE("mount-ns");
    root = path("root");
    fx::make_busybox_root(root);
    sandbox = path("sandbox");
    test::mkdirs(sandbox);
    ASSERT_EQ(::chown(sandbox.c_str(), 65534, 65534), 0);
  }
  // Runs chrootctl (and everything it starts) under the filter, in a child with its own mount
  // namespace where ROOT/srv is a writable tmpfs submount holding a setuid binary.
  test::CommandResult run_old(const std::vector<std::string>& options, const std::string& script) {
    const std::string out = path("old.out"), err = path("old.err");
    const pid_t pid = ::fork();
    if (pid == 0) {
      if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
          ::mount("tmpfs", (root + "/srv").c_str(), "tmpfs", 0, "mode=0755") != 0)
        ::_exit(90);
      if (test::sh("cp '" + root + "/bin/probe' '" + root + "/srv/suid' && chmod 4755 '" + root + "/srv/suid'").exit_code != 0) ::_exit(91);
      if (!pretend_old_kernel()) ::_exit(92);
      // The filter is in place: check that it answers as an old kernel would.
      if (::syscall(437, -1, "", nullptr, 0) != -1 || errno != ENOSYS) ::_exit(93);
      std::vector<std::string> a{CHROOTCTL_BIN, "run", "--root", root, "--sandbox", sandbox};
      a.insert(a.end(), options.begin(), options.end());
      a.insert(a.end(), {"--", "/bin/sh", "-c", script});
      std::string cmd;
      for (const auto& x : a) cmd += "'" + x + "' ";
      ::_exit(test::sh(cmd + "</dev/null >'" + out + "' 2>'" + err + "'").exit_code);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    test::CommandResult r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = test::read_file(out);
    r.err = test::read_file(err);
    return r;
  }
  std::string root, sandbox;
};

TEST_F(LauncherOldKernel, ImageAndSubmountsStayReadOnlyNosuidWithoutMountSetattr) {
  auto r = run_old({"--user", "nobody", "--scratch-path", "/scratch"},
                   "/srv/suid ids; touch /srv/x /usr/x; mount -o remount,rw /srv 2>/dev/null || echo no-remount; "
                   "probe fds; echo s > /scratch/s; pwd");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "uid=65534 euid=65534 gid=65534 egid=65534\nno-remount\n0 /dev/null\n1 " + path("old.out") + "\n2 " + path("old.err") + "\n" +
                       sandbox + "\n");
  EXPECT_EQ(r.err, "touch: /srv/x: Read-only file system\ntouch: /usr/x: Read-only file system\n");
  EXPECT_EQ(test::read_file(sandbox + "/s"), "s\n");
}

TEST_F(LauncherOldKernel, WithoutIdmappedMountsAUserKeepsItsOwnIdsAndRootIsRefused) {
  // Only the job's own uid is mapped: the image's root-owned files show as the overflow id.
  auto r = run_old({"--user", "nobody"}, "read a b c < /proc/self/uid_map; echo $a $b $c; stat -c %u /bin/busybox; probe ids");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "65534 65534 1\n65534\nuid=65534 euid=65534 gid=65534 egid=65534\n");
  // A job as root is never run unmapped, and never as the host's root.
  auto root_job = run_old({"--user", "root"}, "echo should-not-run");
  EXPECT_EQ(root_job.exit_code, 125);
  EXPECT_EQ(root_job.out, "");
  struct utsname u {};
  ASSERT_EQ(::uname(&u), 0);
  const std::string release = u.release;
  const std::string version = release.substr(0, release.find('.', release.find('.') + 1));
  EXPECT_EQ(root_job.err,
            "chrootctl run: a job as root needs idmapped mounts (open_tree and mount_setattr, Linux 5.12 or later); "
            "this kernel is " +
                version + " (run the job as another user with --user)\n");
}

TEST_F(LauncherOldKernel, SymlinkedTargetsAreRefusedByTheWalk) {
  ASSERT_EQ(::rename((root + "/tmp").c_str(), (root + "/tmp.real").c_str()), 0);
  ASSERT_EQ(::symlink("/etc", (root + "/tmp").c_str()), 0);
  auto r = run_old({"--user", "nobody"}, "echo should-not-run");
  EXPECT_EQ(r.exit_code, 125);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err,
            "chrootctl run: mount target /tmp in the image: /tmp is a symlink (to '/etc'); refusing to resolve a path "
            "through it\n");
}

}  // namespace
}  // namespace chrootctl
