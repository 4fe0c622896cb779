// Unprivileged mode: chrootctl run by an ordinary user (nobody, through setpriv) builds the same
// layout in a user namespace that maps the caller to itself, and says when it cannot apply
// cgroup limits. Privileged only because the test needs root to become nobody.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "launcher_fixture.hpp"
#include "test_support.hpp"

namespace chrootctl {
namespace {

namespace fx = test::launcher;

class LauncherUnprivileged : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    CHROOTCTL_REQUIRE_PRIVILEGE("root");
    CHROOTCTL_REQUIRE_PRIVILEGE("user-ns");
    ASSERT_EQ(::chmod(m_dir.c_str(), 0755), 0);
    root = path("root");
    fx::make_busybox_root(root);
    sandbox = path("sandbox");
    test::mkdirs(sandbox);
    ASSERT_EQ(::chown(sandbox.c_str(), 65534, 65534), 0);
    if (test::sh("setpriv --reuid 65534 --regid 65534 --clear-groups unshare -U true").exit_code != 0) {
      if (test::privileged_required()) FAIL() << "nobody cannot create a user namespace";
      GTEST_SKIP() << "nobody cannot create a user namespace";
    }
    mounts_before = fx::host_mounts_mentioning(m_dir);
  }
  void TearDown() override {
    if (!root.empty()) {
      EXPECT_EQ(fx::host_mounts_mentioning(m_dir), mounts_before);
    }
    TempDirTest::TearDown();
  }
  // chrootctl run as nobody, with a clean environment.
  test::CommandResult as_nobody(const std::vector<std::string>& options, const std::string& script) {
    std::vector<std::string> a{"setpriv",     "--reuid", "65534",  "--regid", "65534",     "--clear-groups", "env", "-i", "PATH=/usr/bin:/bin",
                               CHROOTCTL_BIN, "run",     "--root", root,      "--sandbox", sandbox};
    a.insert(a.end(), options.begin(), options.end());
    a.insert(a.end(), {"--", "/bin/sh", "-c", script});
    return test::run(a);
  }
  std::string root, sandbox;
  std::vector<std::string> mounts_before;
};

TEST_F(LauncherUnprivileged, SameLayoutInAUserNamespaceMappingTheCallerToItself) {
  ASSERT_EQ(test::sh("cp '" + root + "/bin/probe' '" + root + "/bin/suid-probe' && chmod 4755 '" + root + "/bin/suid-probe'").exit_code, 0);
  auto r = as_nobody({},
                     "probe ids; cat /proc/self/uid_map | tr -s ' '; echo /proc/[0-9]*; pwd; echo x > /dev/null && echo null-ok; "
                     "echo t > /tmp/t; suid-probe ids; touch /usr/x; probe status | grep -E 'CapEff|NoNewPrivs'");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "uid=65534 euid=65534 gid=65534 egid=65534\n"
            " 65534 65534 1\n"
            "/proc/1 /proc/2\n" +
                sandbox +
                "\nnull-ok\n"
                "uid=65534 euid=65534 gid=65534 egid=65534\n"
                "CapEff:\t0000000000000000\n"
                "NoNewPrivs:\t1\n");
  EXPECT_EQ(r.err, "touch: /usr/x: Read-only file system\n");
  EXPECT_EQ(test::read_file(sandbox + "/tmp/t"), "t\n");
}

TEST_F(LauncherUnprivileged, LimitsWithoutDelegationAreAWarningOrAnErrorWhenRequired) {
  CHROOTCTL_REQUIRE_PRIVILEGE("cgroup");
  auto r = as_nobody({"--memory", "64M"}, "echo ran");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "ran\n");
  // The job cgroup's name (v1) and the flags of the call that failed (v2) vary; the message
  // around them does not. On v2, nobody may not enable controllers in its own cgroup, which is
  // root's and holds this test too.
  std::string why, head, tail;
  if (test::cgroup_version() == "v2") {
    const std::string own = test::cgroup2_mount() + fx::own_v2_cgroup();
    why = "cgroup v2: cannot create job cgroups under " + own;
    head = "chrootctl: warning: " + why + " (open('" + own + "/cgroup.subtree_control', ";
    tail = "): Permission denied); it must be delegated to you and hold no other process; running without cgroup limits\n";
  } else {
    why = "cgroup v1 is not delegated to unprivileged users";
    head = "chrootctl: warning: " + why + " (mkdir('/sys/fs/cgroup/freezer/chrootctl/";
    tail = "', 0755): Permission denied); running without cgroup limits\n";
  }
  EXPECT_EQ(r.err.substr(0, head.size()), head) << r.err;
  EXPECT_TRUE(r.err.size() > tail.size() && r.err.substr(r.err.size() - tail.size()) == tail) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  auto required = as_nobody({"--memory", "64M", "--require-limits"}, "echo ran");
  EXPECT_EQ(required.exit_code, 125);
  EXPECT_EQ(required.out, "");
  EXPECT_NE(required.err.find("chrootctl run: --require-limits: " + why), std::string::npos) << required.err;
}

TEST_F(LauncherUnprivileged, OnlyTheCallerCanBeTheJobUser) {
  auto r = as_nobody({"--user", "root"}, "true");
  EXPECT_EQ(r.exit_code, 125);
  EXPECT_EQ(r.err, "chrootctl run: --user 'root': an unprivileged launch runs the job as the caller (uid 65534)\n");
}

TEST_F(LauncherUnprivileged, RootIsNeverMappedToRoot) {
  // As root, every job has a user namespace too, and its uid 0 is a block of ids of its own.
  auto r = test::run_chrootctl({"run", "--root", root, "--sandbox", sandbox, "--user", "root", "--", "/bin/sh", "-c",
                                "cat /proc/self/uid_map | tr -s ' '; probe status | grep CapEff"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find(" 0 0 "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" 0 1879"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("CapEff:\t0000000000000000\n"), std::string::npos) << r.out;
  auto implicit = test::run_chrootctl({"run", "--root", root, "--sandbox", sandbox, "--", "true"});
  EXPECT_EQ(implicit.exit_code, 125);
  EXPECT_EQ(implicit.err, "chrootctl run: the job would run as root: pass --user USER (or --user root to run it as root on purpose)\n");
}

}  // namespace
}  // namespace chrootctl
