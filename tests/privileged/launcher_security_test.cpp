// The security requirements of `chrootctl run` (issue 5), each as a real attack on a real image
// built in the test. The host's mount table is checked before, during and after.
#include <fcntl.h>
#include <pty.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "chrootctl/common/strings.hpp"
#include "launcher_fixture.hpp"
#include "test_support.hpp"

namespace chrootctl {
namespace {

namespace fx = test::launcher;

class LauncherSecurity : public fx::BusyboxRootTest {
 protected:
  std::vector<std::string> args(const std::vector<std::string>& options, const std::vector<std::string>& cmd) { return run_args("", options, cmd); }
  test::CommandResult run(const std::vector<std::string>& options, const std::vector<std::string>& cmd) {
    return test::run_chrootctl(args(options, cmd));
  }
  test::CommandResult job(const std::string& script, const std::vector<std::string>& options = {"--user", "nobody"}) {
    return run(options, {"/bin/sh", "-c", script});
  }
};

// 1. Symlinked mount targets never get a mount outside the root.

TEST_F(LauncherSecurity, SymlinkedTargetsAreRefusedAbsoluteOrRelative) {
  const std::string outside = path("outside");
  test::mkdirs(outside);
  struct Case {
    std::string target;  // inside the image
    std::string link;
    std::vector<std::string> options;
  };
  const std::vector<Case> cases = {
      {"/tmp", outside, {}},  {"/tmp", "../../../../../../../../" + outside.substr(1), {}}, {"/var/tmp", outside, {}},
      {"/proc", outside, {}}, {"/dev", "../../../../../../../../" + outside.substr(1), {}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.target + " -> " + c.link);
    ASSERT_EQ(::rename((root + c.target).c_str(), (root + c.target + ".real").c_str()), 0);
    ASSERT_EQ(::symlink(c.link.c_str(), (root + c.target).c_str()), 0);
    auto r = job("echo should-not-run", {"--user", "nobody"});
    EXPECT_EQ(r.exit_code, 125);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, "chrootctl run: mount target " + c.target + " in the image: " + c.target + " is a symlink (to " + quote(c.link) +
                         "); refusing to resolve a path through it\n");
    EXPECT_EQ(fx::host_mounts_mentioning(m_dir), mounts_before);
    EXPECT_EQ(test::sh("ls -A '" + outside + "'").out, "");
    ASSERT_EQ(::unlink((root + c.target).c_str()), 0);
    ASSERT_EQ(::rename((root + c.target + ".real").c_str(), (root + c.target).c_str()), 0);
  }
}

TEST_F(LauncherSecurity, SymlinkedSandboxParentIsRefused) {
  // The sandbox's own path inside the image goes through a symlink that leaves the root.
  const std::string outside = path("outside");
  test::mkdirs(outside);
  const std::string jobs = "/srv/chrootctl-test-" + fx::unique_number();
  sandbox = jobs + "/job1";
  test::mkdirs(sandbox);
  ASSERT_EQ(::chown(sandbox.c_str(), 65534, 65534), 0);
  for (const std::string& link : {outside, std::string("../../../../") + outside.substr(1)}) {
    SCOPED_TRACE(link);
    ASSERT_EQ(::symlink(link.c_str(), (root + jobs).c_str()), 0);
    auto r = job("echo should-not-run");
    EXPECT_EQ(r.exit_code, 125);
    EXPECT_EQ(r.err, "chrootctl run: mount target " + sandbox + " in the image: " + jobs + " is a symlink (to " + quote(link) +
                         "); refusing to resolve a path through it\n");
    EXPECT_EQ(test::sh("ls -A '" + outside + "'").out, "");
    EXPECT_EQ(fx::host_mounts_mentioning(jobs), std::vector<std::string>{});
    ASSERT_EQ(::unlink((root + jobs).c_str()), 0);
  }
  test::sh("rm -rf '" + jobs + "'");
}

TEST_F(LauncherSecurity, SymlinkInTheSandboxCannotRedirectScratchDirs) {
  // A previous job left SANDBOX/tmp -> /etc: the scratch bind must not expose /etc writable.
  ASSERT_EQ(::symlink("/etc", (sandbox + "/tmp").c_str()), 0);
  auto r = job("touch /tmp/x");
  EXPECT_EQ(r.exit_code, 125);
  EXPECT_EQ(r.err, "chrootctl run: '" + sandbox + "/tmp' is a symlink or not a directory; refusing to use it as scratch space\n");
  EXPECT_FALSE(fx::exists("/etc/x"));
}

// 2. No host process can be seen or reached.

TEST_F(LauncherSecurity, ProcShowsOnlyTheJobsPidNamespace) {
  const std::string me = std::to_string(::getpid());
  auto r = job("echo /proc/[0-9]*; cat /proc/1/comm; probe open /proc/" + me + "/root; ls /proc/" + me + " 2>&1 | head -1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // init (1), the shell (2); the probe and ls came and went.
  EXPECT_EQ(r.out, "/proc/1 /proc/2\nchrootctl-init\nNo such file or directory\nls: /proc/" + me + ": No such file or directory\n");
}

// 3. No descriptor of the launcher reaches the job; cwd and root are inside; no escape calls.

TEST_F(LauncherSecurity, InheritedDescriptorsCwdRootAndEscapeCalls) {
  const std::string host_dir = m_dir;
  fx::Spawned s(m_dir,
                args({"--user", "nobody"}, {"/bin/sh", "-c",
                                            "probe fds; readlink /proc/self/cwd; readlink /proc/self/root; probe chroot; "
                                            "probe pivot_root; probe unshare"}),
                [&] {
                  // Extra descriptors without O_CLOEXEC: a host directory and a socket.
                  const int d = ::open(host_dir.c_str(), O_RDONLY | O_DIRECTORY);
                  int sv[2];
                  ::socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
                  ::dup2(d, 7);
                  ::dup2(sv[0], 8);
                });
  ASSERT_EQ(s.wait(), 0) << s.err();
  EXPECT_EQ(s.out(), "0 /dev/null\n1 " + s.out_path() + "\n2 " + s.err_path() + "\n" + sandbox +
                         "\n/\nOperation not permitted\nOperation not permitted\nOperation not permitted\n");
}

// 4. No controlling terminal: TIOCSTI into the caller's terminal fails.

TEST_F(LauncherSecurity, JobCannotInjectIntoTheCallersTerminal) {
  int master = -1, unused_slave = -1;
  char name[256];
  ASSERT_EQ(::openpty(&master, &unused_slave, name, nullptr, nullptr), 0);
  ::close(unused_slave);
  auto with_terminal = [&](const std::vector<std::string>& argv_) {
    // Runs argv with the pty as controlling terminal and stdin/stdout/stderr; returns what
    // appeared on the terminal and whether anything was injected into its input.
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::setsid();
      const int slave = ::open(name, O_RDWR);
      ::ioctl(slave, TIOCSCTTY, 0);
      ::dup2(slave, 0);
      ::dup2(slave, 1);
      ::dup2(slave, 2);
      std::vector<char*> v;
      for (auto& a : const_cast<std::vector<std::string>&>(argv_)) v.push_back(a.data());
      v.push_back(nullptr);
      ::execv(v[0], v.data());
      ::_exit(127);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    std::string seen;
    char buf[4096];
    ::fcntl(master, F_SETFL, O_NONBLOCK);
    ssize_t n;
    while ((n = ::read(master, buf, sizeof buf)) > 0) seen.append(buf, static_cast<std::size_t>(n));
    return seen;
  };
  // Control: with the terminal as its controlling terminal, the probe can inject.
  const std::string probe = root + "/bin/probe";
  const std::string control = with_terminal({probe, "tiocsti"});
  EXPECT_NE(control.find("ok\r\n"), std::string::npos) << control;
  EXPECT_NE(control.find('X'), std::string::npos) << control;
  // Given the caller's terminal itself (--no-pty), it cannot (it has no controlling terminal),
  // nor open /dev/tty. (By default it gets a terminal of its own: LauncherBoundary tests it.)
  std::vector<std::string> a{CHROOTCTL_BIN};
  for (const auto& x : args({"--user", "nobody", "--no-pty"}, {"/bin/sh", "-c", "probe tiocsti; probe open /dev/tty"})) a.push_back(x);
  const std::string seen = with_terminal(a);
  EXPECT_NE(seen.find("Operation not permitted\r\nNo such device or address\r\n"), std::string::npos) << seen;
  EXPECT_EQ(seen.find('X'), std::string::npos) << "a character was injected: " << seen;
  ::close(master);
}

// 5. setuid is inert, capabilities are gone, the user comes from the host.

TEST_F(LauncherSecurity, SetuidRootBinaryRunsWithTheJobsUid) {
  ASSERT_EQ(test::sh("cp '" + root + "/bin/probe' '" + root + "/bin/suid-probe' && chown 0:0 '" + root + "/bin/suid-probe' && chmod 4755 '" + root +
                     "/bin/suid-probe'")
                .exit_code,
            0);
  // Control: on the host, nobody running it becomes root.
  chmod(m_dir.c_str(), 0755);
  EXPECT_EQ(test::sh("setpriv --reuid 65534 --regid 65534 --clear-groups '" + root + "/bin/suid-probe' ids").out,
            "uid=65534 euid=0 gid=65534 egid=65534\n");
  auto r = job("suid-probe ids; probe status");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "uid=65534 euid=65534 gid=65534 egid=65534\n"
            "Uid:\t65534\t65534\t65534\t65534\n"
            "Gid:\t65534\t65534\t65534\t65534\n"
            "CapInh:\t0000000000000000\n"
            "CapPrm:\t0000000000000000\n"
            "CapEff:\t0000000000000000\n"
            "CapBnd:\t0000000000000000\n"
            "CapAmb:\t0000000000000000\n"
            "NoNewPrivs:\t1\n");
}

TEST_F(LauncherSecurity, RootJobHasNoCapabilitiesAndReadOnlyProcSys) {
  // uid 0 of the job's own user namespace is not the host's: /proc/sys belongs to the host's
  // root, and is bound read-only as well.
  auto r = job("probe status; probe openw /proc/sys/kernel/domainname; probe openw /proc/sys/vm/overcommit_memory; touch /usr/x", {"--user", "root"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out,
            "Uid:\t0\t0\t0\t0\n"
            "Gid:\t0\t0\t0\t0\n"
            "CapInh:\t0000000000000000\n"
            "CapPrm:\t0000000000000000\n"
            "CapEff:\t0000000000000000\n"
            "CapBnd:\t0000000000000000\n"
            "CapAmb:\t0000000000000000\n"
            "NoNewPrivs:\t1\n"
            "Permission denied\n"
            "Permission denied\n");
  EXPECT_EQ(r.err, "touch: /usr/x: Read-only file system\n");
}

TEST_F(LauncherSecurity, JobDoesNotShareTheCallersSessionKeyring) {
  // The caller (a batch daemon, say) holds a key in its session keyring. A job that shared the
  // keyring would possess the key and see it in /proc/keys; a job with its own does not.
  const std::string desc = "chrootctl-test-secret-" + std::to_string(::getpid());
  auto in_child = [&] {
    ::syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, "chrootctl-test-session");
    ::syscall(SYS_add_key, "user", desc.c_str(), "token", 5, -3 /* KEY_SPEC_SESSION_KEYRING */);
  };
  // Control: a process in that session sees the key.
  fx::Spawned control(m_dir, {"--version"}, [&] {
    in_child();
    ::execl("/bin/grep", "grep", "-c", desc.c_str(), "/proc/keys", nullptr);
    ::_exit(127);
  });
  EXPECT_EQ(control.wait(), 0);
  EXPECT_EQ(control.out(), "1\n");
  fx::Spawned launch(m_dir, args({"--user", "nobody"}, {"/bin/sh", "-c", "grep -c " + desc + " /proc/keys; true"}), in_child);
  EXPECT_EQ(launch.wait(), 0) << launch.err();
  EXPECT_EQ(launch.out(), "0\n");
}

TEST_F(LauncherSecurity, JobUserIsResolvedOnTheHostNeverThroughTheImagesNss) {
  // A hostile image: nsswitch.conf names an "evil" module (tests/support/nss_evil.c) whose
  // constructor leaves a mark in the sandbox (which has the same path inside and outside), and
  // its passwd maps nobody elsewhere.
  const std::string lib = root + "/lib/x86_64-linux-gnu";
  test::mkdirs(lib);
  ASSERT_EQ(test::sh(std::string("cp '") + CHROOTCTL_TEST_NSS_MODULE + "' '" + lib + "/libnss_evil.so.2'").exit_code, 0);
  test::write_file(lib + "/libnss_evil.so.2.mark", sandbox + "/nss-ran\n");
  test::write_file(root + "/etc/nsswitch.conf", "passwd: evil files\ngroup: evil files\nshadow: evil files\n");
  test::write_file(root + "/etc/passwd", "root:x:0:0::/:/bin/sh\nnobody:x:4242:4242::/:/bin/sh\n");
  // Control: where NSS does consult this configuration, the module runs.
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount((root + "/etc/nsswitch.conf").c_str(), "/etc/nsswitch.conf", nullptr, MS_BIND, nullptr) != 0)
      ::_exit(1);
    ::_exit(test::sh("LD_LIBRARY_PATH='" + lib + "' getent passwd nobody >/dev/null 2>&1; true").exit_code);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_EQ(test::read_file(sandbox + "/nss-ran"), "ran") << "the control did not load the module";
  ASSERT_EQ(::unlink((sandbox + "/nss-ran").c_str()), 0);

  auto r = job("probe ids");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "uid=65534 euid=65534 gid=65534 egid=65534\n");
  EXPECT_FALSE(fx::exists(sandbox + "/nss-ran")) << "the image's NSS module ran";
}

// 6. Mounts never propagate: the sandbox's parent is a shared mount.

TEST_F(LauncherSecurity, NothingPropagatesThroughASharedSandboxParent) {
  // All of it in a child with its own mount namespace, whose table the child compares.
  const std::string shared = path("shared");
  const std::string peer = path("peer");
  test::mkdirs(shared);
  test::mkdirs(peer);
  const std::string report = path("report");
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::string why;
    auto check = [&](bool ok, const std::string& what) {
      if (!ok && why.empty()) why = what;
    };
    check(::unshare(CLONE_NEWNS) == 0, "unshare");
    check(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0, "make / private");
    check(::mount("tmpfs", shared.c_str(), "tmpfs", 0, "mode=0755") == 0, "tmpfs");
    check(::mount(nullptr, shared.c_str(), nullptr, MS_SHARED, nullptr) == 0, "make shared");
    check(::mount(shared.c_str(), peer.c_str(), nullptr, MS_BIND, nullptr) == 0, "peer");
    sandbox = shared + "/job";
    test::mkdirs(sandbox);
    check(::chown(sandbox.c_str(), 65534, 65534) == 0, "chown");
    const std::string before = fx::whole_mountinfo();
    fx::Spawned s(m_dir, args({"--user", "nobody"}, {"/bin/sh", "-c", "touch running; sleep 1; echo done"}));
    check(fx::eventually([&] { return fx::exists(sandbox + "/running"); }), "job did not start");
    const std::string during = fx::whole_mountinfo();
    const int rc = s.wait();
    const std::string after = fx::whole_mountinfo();
    check(rc == 0, "exit " + std::to_string(rc) + ": " + s.err());
    check(before == during, "mountinfo changed during the job:\n" + before + "---\n" + during);
    check(before == after, "mountinfo changed after the job");
    check(test::sh("ls -A '" + peer + "/job'").out == test::sh("ls -A '" + sandbox + "'").out, "peer view differs");
    test::write_file(report, why);
    ::_exit(why.empty() ? 0 : 1);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << test::read_file(report);
}

// 7. Device nodes in the image are inert.

TEST_F(LauncherSecurity, DeviceNodesInTheImageCannotBeOpened) {
  struct stat st {};
  ASSERT_EQ(::stat("/", &st), 0);
  // A block device like the host's root disk, and a character device like /dev/zero, open to all.
  ASSERT_EQ(::mknod((root + "/srv/disk").c_str(), S_IFBLK | 0666, st.st_dev), 0);
  ASSERT_EQ(::mknod((root + "/srv/zero").c_str(), S_IFCHR | 0666, makedev(1, 5)), 0);
  ASSERT_EQ(::chmod((root + "/srv/disk").c_str(), 0666), 0);
  ASSERT_EQ(::chmod((root + "/srv/zero").c_str(), 0666), 0);
  chmod(m_dir.c_str(), 0755);
  // Controls on the host: anyone opens the character device; root the disk, where the host lets
  // root open its disk at all (this development VM does not: EPERM even for /dev/vda). The job's
  // answer is EACCES either way, from nodev, which the kernel checks first.
  const std::string disk_control = test::sh("'" + root + "/bin/probe' open '" + root + "/srv/disk'").out;
  if (test::sh("'" + root + "/bin/probe' open /dev/block/" + std::to_string(major(st.st_dev)) + ":" + std::to_string(minor(st.st_dev))).out ==
      "ok\n") {
    EXPECT_EQ(disk_control, "ok\n");
  }
  EXPECT_EQ(test::sh("setpriv --reuid 65534 --regid 65534 --clear-groups '" + root + "/bin/probe' open '" + root + "/srv/zero'").out, "ok\n");
  auto r = job("probe open /srv/disk; probe open /srv/zero");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Permission denied\nPermission denied\n");
  // Also for a job run as root (uid 0 of its own user namespace, without capabilities), with
  // a sandbox of its own (a root job's sandbox belongs to the user it runs for).
  sandbox = path("sandbox-root");
  test::mkdirs(sandbox);
  ASSERT_EQ(::chown(sandbox.c_str(), 65534, 65534), 0);
  r = job("probe open /srv/disk; probe open /srv/zero", {"--user", "root"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Permission denied\nPermission denied\n");
}

// 8. The root cannot be made writable.

TEST_F(LauncherSecurity, RemountAndWritesUnderUsrFail) {
  for (const char* user : {"nobody", "root"}) {
    SCOPED_TRACE(user);
    sandbox = path(std::string("sandbox-") + user);
    test::mkdirs(sandbox);
    ASSERT_EQ(::chown(sandbox.c_str(), 65534, 65534), 0);
    auto r = job("mount -o remount,rw /; echo mount=$?; probe remount; touch /usr/x; echo touch=$?; probe openw /usr/bin/new", {"--user", user});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "mount=1\nOperation not permitted\ntouch=1\nRead-only file system\n");
    EXPECT_EQ(r.err, "mount: permission denied (are you root?)\ntouch: /usr/x: Read-only file system\n");
  }
  EXPECT_FALSE(fx::exists(root + "/usr/x"));
  EXPECT_FALSE(fx::exists(root + "/usr/bin/new"));
}

// 9. Containment and cleanup: daemons, memory, pids.

TEST_F(LauncherSecurity, DoubleForkedDaemonIsKilledWithTheJob) {
  const std::string marker = fx::unique_number();
  fx::Spawned s(m_dir, args({"--user", "nobody"}, {"/bin/probe", "daemon", marker}));
  ASSERT_EQ(s.wait(), 0) << s.err();
  EXPECT_EQ(s.out(), "daemonized\n");
  EXPECT_NE(test::sh("pgrep -f 'slee[p] " + marker + "'").exit_code, 0) << "the daemon survived";
  EXPECT_EQ(fx::job_cgroups_of(s.pid()), std::vector<std::string>{});
}

TEST_F(LauncherSecurity, MemoryHogIsOomKilledAndReported) {
  CHROOTCTL_REQUIRE_PRIVILEGE("cgroup");
  const std::string status = path("status.json");
  fx::Spawned s(m_dir, args({"--user", "nobody", "--memory", "32M", "--status-json", status}, {"/bin/probe", "alloc", "256"}));
  EXPECT_EQ(s.wait(), 137) << s.err();
  EXPECT_EQ(s.out(), "");
  const std::string json = test::read_file(status);
  EXPECT_NE(json.find("\"outcome\": \"signaled\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"signal_name\": \"SIGKILL\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"memory_limit_hit\": true"), std::string::npos) << json;
  EXPECT_NE(json.find("\"oom_kills\": 1"), std::string::npos) << json;
  EXPECT_NE(json.find("\"memory_limit_bytes\": 33554432"), std::string::npos) << json;
  EXPECT_NE(json.find("\"limits_applied\": true"), std::string::npos) << json;
  EXPECT_EQ(fx::job_cgroups_of(s.pid()), std::vector<std::string>{});
}

TEST_F(LauncherSecurity, ForksStopAtThePidsLimitAndAllAreCleanedUp) {
  CHROOTCTL_REQUIRE_PRIVILEGE("cgroup");
  fx::Spawned s(m_dir, args({"--user", "nobody", "--pids", "20"}, {"/bin/probe", "forks", "200"}));
  ASSERT_EQ(s.wait(), 0) << s.err();
  // init and the probe count too: 18 children fit.
  EXPECT_EQ(s.out(), "forked 18\n");
  EXPECT_EQ(fx::job_cgroups_of(s.pid()), std::vector<std::string>{});
  EXPECT_NE(test::sh("pgrep -f '/bin/prob[e] forks 200'").exit_code, 0) << "a forked child survived";
}

}  // namespace
}  // namespace chrootctl
