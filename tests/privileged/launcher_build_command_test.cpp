// run_build_command: the builder's [run] and [packages] steps in a writable tree, as root, in
// private namespaces, leaving nothing mounted or running on the host.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "chrootctl/launcher/build_command.hpp"
#include "launcher_fixture.hpp"
#include "test_support.hpp"

namespace chrootctl {
namespace {

using launcher::BuildCommand;
using launcher::run_build_command;
namespace fx = test::launcher;

class BuildCommandTest : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    root = path("tree");
    fx::make_busybox_root(root);
    out_path = path("out.log");
    out_fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ASSERT_GE(out_fd, 0);
    mounts_before = fx::host_mounts_mentioning(m_dir);
  }
  void TearDown() override {
    if (out_fd >= 0) ::close(out_fd);
    // Nothing of the command may remain mounted in the host's namespace.
    EXPECT_EQ(fx::host_mounts_mentioning(m_dir), mounts_before);
    TempDirTest::TearDown();
  }
  BuildCommand command(const std::string& script) {
    BuildCommand c;
    c.root = root;
    c.argv = {"/bin/sh", "-c", script};
    c.env = {{"PATH", "/usr/bin:/bin"}};
    c.stdout_fd = out_fd;
    c.stderr_fd = out_fd;
    return c;
  }
  std::string output() { return test::read_file(out_path); }
  std::string root, out_path;
  int out_fd = -1;
  std::vector<std::string> mounts_before;
};

TEST_F(BuildCommandTest, RunsAsRootWithAPackageManagersCapabilitiesInAWritableTree) {
  CHROOTCTL_REQUIRE_PRIVILEGE("mount-ns");
  auto rc = run_build_command(
      command("id -u; grep -E '^(CapEff|CapPrm|CapBnd|CapAmb|NoNewPrivs)' /proc/self/status; echo made > /etc/created; chown 1:1 /etc/created"));
  ASSERT_TRUE(rc) << rc.error().what();
  EXPECT_EQ(*rc, 0);
  // chown, dac_override, fowner, fsetid, kill, setgid, setuid, net_bind_service, sys_chroot,
  // audit_write, setfcap: nothing that reaches past the namespaces (no sys_admin, no
  // dac_read_search for open_by_handle_at, no mknod, no net_admin on the host's network).
  EXPECT_EQ(output(),
            "0\nCapPrm:\t00000000a00404fb\nCapEff:\t00000000a00404fb\nCapBnd:\t00000000a00404fb\n"
            "CapAmb:\t0000000000000000\nNoNewPrivs:\t1\n");
  EXPECT_EQ(test::read_file(root + "/etc/created"), "made\n");
  struct stat st {};
  ASSERT_EQ(::stat((root + "/etc/created").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1u);
}

TEST_F(BuildCommandTest, DeviceNodesAreNeitherMadeNorOpenedAndMountsAreRefused) {
  CHROOTCTL_REQUIRE_PRIVILEGE("mount-ns");
  CHROOTCTL_REQUIRE_PRIVILEGE("mknod");
  // A device node the tree brought in (an archive can carry one): the tree is nodev.
  test::mkdirs(root + "/opt");
  ASSERT_EQ(::mknod((root + "/opt/zero").c_str(), S_IFCHR | 0666, makedev(1, 5)), 0);
  auto rc =
      run_build_command(command("head -c1 /opt/zero >/dev/null 2>&1 && echo opened; mknod /opt/null c 1 3 2>/dev/null && echo made;"
                                " mount -t tmpfs none /mnt 2>/dev/null && echo mounted; echo done"));
  ASSERT_TRUE(rc) << rc.error().what();
  EXPECT_EQ(output(), "done\n");
  struct stat st {};
  EXPECT_NE(::lstat((root + "/opt/null").c_str(), &st), 0);
}

TEST_F(BuildCommandTest, ExitCodesAndSignalsPassThrough) {
  CHROOTCTL_REQUIRE_PRIVILEGE("mount-ns");
  auto rc = run_build_command(command("exit 7"));
  ASSERT_TRUE(rc) << rc.error().what();
  EXPECT_EQ(*rc, 7);
  rc = run_build_command(command("kill -TERM $$"));
  ASSERT_TRUE(rc) << rc.error().what();
  EXPECT_EQ(*rc, 128 + SIGTERM);
}

TEST_F(BuildCommandTest, CommandIsLookedUpWithThePathOfItsEnvironment) {
  CHROOTCTL_REQUIRE_PRIVILEGE("mount-ns");
  test::mkdirs(root + "/opt/tools");
  test::write_file(root + "/opt/tools/hello", "#!/bin/sh\necho hello from the tree\n", 0755);
  BuildCommand c = command("");
  c.argv = {"hello"};
  c.env = {{"PATH", "/opt/tools"}};
  auto rc = run_build_command(c);
  ASSERT_TRUE(rc) << rc.error().what();
  EXPECT_EQ(*rc, 0);
  EXPECT_EQ(output(), "hello from the tree\n");
}

TEST_F(BuildCommandTest, MissingCommandIsAnError) {
  CHROOTCTL_REQUIRE_PRIVILEGE("mount-ns");
  BuildCommand c = command("");
  c.argv = {"apt-get", "update"};
  auto rc = run_build_command(c);
  ASSERT_FALSE(rc);
  EXPECT_EQ(rc.error().code(), Errc::not_found);
  EXPECT_EQ(rc.error().what(), "build command in " + root + ": command 'apt-get' not found in the root (PATH=/usr/bin:/bin)");
}

TEST_F(BuildCommandTest, PrivateProcMinimalDevAndOwnPidNamespace) {
  CHROOTCTL_REQUIRE_PRIVILEGE("pid-ns");
  auto rc = run_build_command(command("echo /proc/[0-9]*; ls /dev | tr '\\n' ' '; echo; echo $$"));
  ASSERT_TRUE(rc) << rc.error().what();
  EXPECT_EQ(*rc, 0);
  // PID 1 (init) and the shell, and nothing of the host.
  EXPECT_EQ(output(), "/proc/1 /proc/2\nfd full null ptmx pts random shm stderr stdin stdout tty urandom zero \n2\n");
}

TEST_F(BuildCommandTest, ReadOnlyBindIsCreatedAsAnEmptyMountPoint) {
  CHROOTCTL_REQUIRE_PRIVILEGE("mount-ns");
  test::write_file(path("resolv.conf"), "nameserver 192.0.2.53\n");
  BuildCommand c = command("cat /etc/resolv.conf; echo x > /etc/resolv.conf && echo wrote");
  c.binds = {{path("resolv.conf"), "/etc/resolv.conf"}};
  auto rc = run_build_command(c);
  ASSERT_TRUE(rc) << rc.error().what();
  EXPECT_EQ(*rc, 1);
  EXPECT_EQ(output(), "nameserver 192.0.2.53\n/bin/sh: can't create /etc/resolv.conf: Read-only file system\n");
  // The mount point stays (an empty file); the host file is untouched.
  struct stat st {};
  ASSERT_EQ(::stat((root + "/etc/resolv.conf").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 0);
  EXPECT_EQ(test::read_file(path("resolv.conf")), "nameserver 192.0.2.53\n");
}

TEST_F(BuildCommandTest, BindThroughASymlinkLeavingTheTreeStaysInside) {
  CHROOTCTL_REQUIRE_PRIVILEGE("mount-ns");
  // The tree's /etc/resolv.conf points at an absolute path; resolved inside the tree it names
  // TREE/hostdir/file, never the host's.
  test::mkdirs(path("hostdir"));
  test::write_file(path("hostdir/file"), "host\n");
  test::mkdirs(root + path("hostdir"));
  test::write_file(root + path("hostdir/file"), "tree\n");
  ASSERT_EQ(::symlink(path("hostdir/file").c_str(), (root + "/etc/resolv.conf").c_str()), 0);
  test::write_file(path("resolv.conf"), "nameserver 192.0.2.53\n");
  BuildCommand c = command("cat " + path("hostdir/file"));
  c.binds = {{path("resolv.conf"), "/etc/resolv.conf"}};
  auto rc = run_build_command(c);
  ASSERT_TRUE(rc) << rc.error().what();
  EXPECT_EQ(*rc, 0);
  EXPECT_EQ(output(), "nameserver 192.0.2.53\n");
  EXPECT_EQ(test::read_file(path("hostdir/file")), "host\n");
}

TEST_F(BuildCommandTest, ProcessesOfTheCommandDoNotOutliveItAndTheHostnameIsItsOwn) {
  CHROOTCTL_REQUIRE_PRIVILEGE("pid-ns");
  const std::string marker = std::to_string(900000 + ::getpid() % 99999);
  // (Mounting and setting the hostname need CAP_SYS_ADMIN, which build commands no longer
  // have; DeviceNodesAreNeitherMadeNorOpenedAndMountsAreRefused shows the mount refused.)
  auto rc = run_build_command(command("hostname build-test-host 2>/dev/null; (sleep " + marker + " &) ; echo started"));
  ASSERT_TRUE(rc) << rc.error().what();
  EXPECT_EQ(*rc, 0);
  EXPECT_EQ(output(), "started\n");
  EXPECT_NE(test::sh("pgrep -f 'slee[p] " + marker + "'").exit_code, 0) << "a background process survived";
  EXPECT_NE(test::sh("hostname").out, "build-test-host\n");
}

TEST_F(BuildCommandTest, NetworkIsSharedByDefaultAndPrivateOnRequest) {
  CHROOTCTL_REQUIRE_PRIVILEGE("mount-ns");
  const std::string host_ifaces = test::sh("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ' '").out;
  auto rc = run_build_command(command("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ' '"));
  ASSERT_TRUE(rc) << rc.error().what();
  EXPECT_EQ(output(), host_ifaces);
  ASSERT_EQ(::ftruncate(out_fd, 0), 0);
  ASSERT_EQ(::lseek(out_fd, 0, SEEK_SET), 0);
  BuildCommand c = command("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ' '");
  c.network = false;
  rc = run_build_command(c);
  ASSERT_TRUE(rc) << rc.error().what();
  EXPECT_EQ(output(), "lo ");
}

TEST_F(BuildCommandTest, StdinIsDevNull) {
  CHROOTCTL_REQUIRE_PRIVILEGE("mount-ns");
  auto rc = run_build_command(command("readlink /proc/self/fd/0; wc -c"));
  ASSERT_TRUE(rc) << rc.error().what();
  EXPECT_EQ(output(), "/dev/null\n0\n");
}

TEST_F(BuildCommandTest, BadInputIsRefused) {
  BuildCommand c = command("true");
  c.root = "relative/tree";
  auto rc = run_build_command(c);
  ASSERT_FALSE(rc);
  EXPECT_EQ(rc.error().what(), "build command: the tree 'relative/tree' must be an absolute path");
  c = command("true");
  c.binds = {{"/etc/hosts", "/proc/hosts"}};
  rc = run_build_command(c);
  ASSERT_FALSE(rc);
  EXPECT_EQ(rc.error().what(), "build command bind target /proc/hosts is inside /proc or /dev, or is '/'");
}

}  // namespace
}  // namespace chrootctl
