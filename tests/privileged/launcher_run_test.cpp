// `chrootctl run` end to end: exit statuses, signals, the sandbox and scratch layout, binds,
// the network, reaping, status records, and cleanup after a launcher killed with SIGKILL.
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

#include "chrootctl/common/strings.hpp"
#include "launcher_fixture.hpp"
#include "test_support.hpp"

namespace chrootctl {
namespace {

namespace fx = test::launcher;

class LauncherRun : public fx::BusyboxRootTest {
 protected:
  std::vector<std::string> args(const std::vector<std::string>& options, const std::vector<std::string>& cmd) {
    return run_args("nobody", options, cmd);
  }
  test::CommandResult job(const std::string& script, const std::vector<std::string>& options = {}) {
    return test::run_chrootctl(args(options, {"/bin/sh", "-c", script}));
  }
};

TEST_F(LauncherRun, ExitStatusIsTheJobsOwn) {
  EXPECT_EQ(job("exit 42").exit_code, 42);
  EXPECT_EQ(job("exit 0").exit_code, 0);
  auto killed = job("kill -KILL $$");
  EXPECT_EQ(killed.exit_code, 137);
  EXPECT_EQ(killed.err, "");
}

std::vector<std::string> sorted_group_ids(std::string text) {
  if (starts_with(text, "Groups:")) text.erase(0, 7);
  std::vector<std::string> ids;
  for (const auto& id : split(std::string(trim(text)), ' '))
    if (!trim(id).empty()) ids.emplace_back(trim(id));
  std::sort(ids.begin(), ids.end());
  return ids;
}

TEST_F(LauncherRun, TheJobHasItsUsersGroupsFromTheHost) {
  // The launcher looks another user's groups up on the host and hands them to the job (root,
  // the caller here, keeps its own: see TheCallerRunningTheJobAsItselfKeepsItsOwnGroups).
  std::vector<std::string> users{"nobody"};
  // A host user with supplementary groups too, where this machine has one.
  const auto member = test::sh("getent group | awk -F: '$4 != \"\" {split($4, m, \",\"); print m[1]; exit}'").out;
  if (!trim(member).empty() && trim(member) != "root") users.emplace_back(trim(member));
  for (const auto& user : users) {
    SCOPED_TRACE(user);
    const std::string sb = path("sb-" + user);
    test::mkdirs(sb);
    ASSERT_EQ(test::sh("chown '" + user + "' '" + sb + "'").exit_code, 0);
    auto r = test::run_chrootctl({"run", "--root", root, "--sandbox", sb, "--user", user, "--", "/bin/grep", "^Groups:", "/proc/self/status"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto host = test::sh("id -G '" + user + "'");
    ASSERT_EQ(host.exit_code, 0);
    // /proc's Groups: lists the supplementary groups only; getgrouplist includes the primary one.
    EXPECT_EQ(sorted_group_ids(r.out), sorted_group_ids(host.out)) << r.out;
    EXPECT_FALSE(sorted_group_ids(r.out).empty());
  }
}

TEST_F(LauncherRun, AJobAsRootHasNoHostGroupsAndAUsersJobItsOwn) {
  // A job as root has ids of its own block only: none of the caller's groups, whatever they
  // are; a job of another user gets that user's groups only.
  CHROOTCTL_REQUIRE_TOOL("setpriv");
  auto groups_in_job = [&](const std::string& caller_groups, const std::string& user, const std::string& sandbox_dir) {
    std::vector<std::string> a{"setpriv", "--groups", caller_groups, CHROOTCTL_BIN, "run",      "--root",           root, "--sandbox", sandbox_dir,
                               "--user",  user,       "--",          "/bin/grep",   "^Groups:", "/proc/self/status"};
    auto r = test::run(a);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return sorted_group_ids(r.out);
  };
  EXPECT_EQ(groups_in_job("4242,4343", "root", sandbox), std::vector<std::string>{});
  EXPECT_EQ(groups_in_job("4242,4343", "0", sandbox), std::vector<std::string>{});
  EXPECT_EQ(groups_in_job("4242,4343", "nobody", sandbox), sorted_group_ids(test::sh("id -G nobody").out));
}

TEST_F(LauncherRun, TheJobGetsTheCallersCpuSetBack) {
  // The job runs on the CPUs its caller may use, no fewer.
  const auto mine = test::sh("grep Cpus_allowed_list /proc/self/status");
  auto r = job("grep Cpus_allowed_list /proc/self/status");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, mine.out);
  // A caller limited to some CPUs passes on exactly those.
  const long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  if (cpus < 2) GTEST_SKIP() << "one CPU: no narrower set to give the launcher";
  std::vector<std::string> a{"taskset", "-c", "0," + std::to_string(cpus - 1), CHROOTCTL_BIN};
  for (const auto& x : args({}, {"/bin/grep", "Cpus_allowed_list", "/proc/self/status"})) a.push_back(x);
  auto limited = test::run(a);
  ASSERT_EQ(limited.exit_code, 0) << limited.err;
  EXPECT_EQ(limited.out, "Cpus_allowed_list:\t0" + std::string(cpus == 2 ? "-" : ",") + std::to_string(cpus - 1) + "\n");
}

TEST_F(LauncherRun, SignalsTheCallerIgnoresAreDefaultInTheJob) {
  // SIG_IGN survives exec; a batch daemon that ignores SIGPIPE or SIGINT must not pass that on.
  std::string cmd = "trap '' PIPE INT HUP USR1 40; grep SigIgn /proc/self/status; exec '" + std::string(CHROOTCTL_BIN) + "'";
  for (const auto& a : args({}, {"/bin/grep", "SigIgn", "/proc/self/status"})) cmd += " '" + a + "'";
  auto r = test::sh(cmd);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The shell (the launcher's image before its exec) ignores them; the job ignores nothing.
  EXPECT_EQ(r.out, "SigIgn:\t0000008000001203\nSigIgn:\t0000000000000000\n");
}

TEST_F(LauncherRun, ChrootctlsOwnFailuresAre125To127) {
  auto missing = test::run_chrootctl(args({}, {"no-such-command", "x"}));
  EXPECT_EQ(missing.exit_code, 127);
  EXPECT_EQ(missing.err,
            "chrootctl run: command 'no-such-command' not found in the root "
            "(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)\n");
  auto missing_path = test::run_chrootctl(args({}, {"/bin/nope"}));
  EXPECT_EQ(missing_path.exit_code, 127);
  EXPECT_EQ(missing_path.err, "chrootctl run: execve('/bin/nope') in the root: No such file or directory\n");
  auto not_exec = test::run_chrootctl(args({}, {"/etc/passwd"}));
  EXPECT_EQ(not_exec.exit_code, 126);
  EXPECT_EQ(not_exec.err, "chrootctl run: execve('/etc/passwd') in the root: Permission denied\n");
  auto bad_root = test::run_chrootctl({"run", "--root", path("nope"), "--sandbox", sandbox, "--user", "nobody", "--", "true"});
  EXPECT_EQ(bad_root.exit_code, 125);
  EXPECT_EQ(bad_root.err,
            "chrootctl run: opening the root " + path("nope") + ": open('" + path("nope") + "', O_PATH|O_DIRECTORY): No such file or directory\n");
  auto as_root = test::run_chrootctl({"run", "--root", root, "--sandbox", sandbox, "--", "true"});
  EXPECT_EQ(as_root.exit_code, 125);
  EXPECT_EQ(as_root.err, "chrootctl run: the job would run as root: pass --user USER (or --user root to run it as root on purpose)\n");
  auto usage = test::run_chrootctl({"run", "--root", root, "--sandbox", sandbox, "--memory", "lots", "--", "true"});
  EXPECT_EQ(usage.exit_code, 125);
  EXPECT_EQ(usage.err, "chrootctl run: --memory: 'lots' is not a size (like 512M or 2G)\nTry 'chrootctl run --help'.\n");
  for (const std::string& host_root : {std::string("/"), std::string("/./usr/..")}) {
    auto host = test::run_chrootctl({"run", "--root", host_root, "--sandbox", sandbox, "--user", "nobody", "--", "true"});
    EXPECT_EQ(host.exit_code, 125);
    EXPECT_EQ(host.err, "chrootctl run: the root " + host_root + " is the host's own root; refusing to run on the host\n");
  }
  auto writable = path("writable-root");
  fx::make_busybox_root(writable);
  ASSERT_EQ(::chmod(writable.c_str(), 0777), 0);
  auto w = test::run_chrootctl({"run", "--root", writable, "--sandbox", sandbox, "--user", "nobody", "--", "true"});
  EXPECT_EQ(w.exit_code, 125);
  EXPECT_EQ(w.err, "chrootctl run: the root " + writable + " is writable by group or others (mode 0777)\n");
}

TEST_F(LauncherRun, SignalsToChrootctlReachTheJob) {
  struct Case {
    int sig;
    const char* name;
    int code;
  };
  for (const Case& c :
       {Case{SIGTERM, "TERM", 11}, Case{SIGINT, "INT", 12}, Case{SIGHUP, "HUP", 13}, Case{SIGUSR1, "USR1", 14}, Case{SIGUSR2, "USR2", 15}}) {
    SCOPED_TRACE(c.name);
    ::unlink((sandbox + "/ready").c_str());
    fx::Spawned s(m_dir,
                  args({}, {"/bin/sh", "-c",
                            str("trap 'echo got ", c.name, "; exit ", c.code, "' ", c.name, "; touch ready; while true; do sleep 0.05; done")}));
    ASSERT_TRUE(fx::eventually([&] { return fx::exists(sandbox + "/ready"); })) << s.err();
    ::kill(s.pid(), c.sig);
    EXPECT_EQ(s.wait(), c.code) << s.err();
    EXPECT_EQ(s.out(), str("got ", c.name, "\n"));
  }
  // A stopped job: SIGCONT reaches it too, so the SIGTERM before it ends it (as `timeout` does:
  // TERM, then CONT); without it the launch waited for ever.
  {
    // The state and parent of a host process, from /proc/PID/stat ("PID (COMM) S PPID ...").
    auto stat_of = [](pid_t pid) -> std::pair<char, pid_t> {
      const std::string text = test::read_file(str("/proc/", pid, "/stat"));  // empty once it is gone
      const auto close = text.rfind(')');
      if (close == std::string::npos || close + 4 > text.size()) return {'?', 0};
      return {text[close + 2], static_cast<pid_t>(std::atol(text.c_str() + close + 4))};
    };
    auto child_of = [&](pid_t parent) -> pid_t {
      std::error_code ec;
      for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
        const pid_t pid = static_cast<pid_t>(std::atol(e.path().filename().c_str()));
        if (pid > 0 && stat_of(pid).second == parent) return pid;
      }
      return 0;
    };
    ::unlink((sandbox + "/ready").c_str());
    fx::Spawned stopped(m_dir, args({}, {"/bin/sh", "-c", "touch ready; kill -STOP $$; echo resumed"}));
    ASSERT_TRUE(fx::eventually([&] { return fx::exists(sandbox + "/ready"); })) << stopped.err();
    const pid_t init = child_of(stopped.pid());
    pid_t job = 0;
    ASSERT_TRUE(fx::eventually([&] { return (job = child_of(init)) != 0 && stat_of(job).first == 'T'; })) << "the job never stopped";
    // SIGCONT alone continues it.
    ::kill(stopped.pid(), SIGCONT);
    EXPECT_EQ(stopped.wait(), 0) << stopped.err();
    EXPECT_EQ(stopped.out(), "resumed\n");
    // TERM then CONT, as `timeout` sends them, ends a stopped job.
    ::unlink((sandbox + "/ready").c_str());
    fx::Spawned again(m_dir, args({}, {"/bin/sh", "-c", "touch ready; kill -STOP $$; echo resumed"}));
    ASSERT_TRUE(fx::eventually([&] { return fx::exists(sandbox + "/ready"); })) << again.err();
    const pid_t init2 = child_of(again.pid());
    ASSERT_TRUE(fx::eventually([&] { return (job = child_of(init2)) != 0 && stat_of(job).first == 'T'; })) << "the job never stopped";
    ::kill(again.pid(), SIGTERM);
    ::kill(again.pid(), SIGCONT);
    EXPECT_EQ(again.wait(), 143) << again.err();
    EXPECT_EQ(again.out(), "");
  }
  // A job that ignores nothing dies of SIGTERM as it would outside.
  ::unlink((sandbox + "/ready").c_str());
  const std::string status = path("status.json");
  fx::Spawned s(m_dir, args({"--status-json", status}, {"/bin/sh", "-c", "touch ready; exec sleep 1000"}));
  ASSERT_TRUE(fx::eventually([&] { return fx::exists(sandbox + "/ready"); }));
  ::kill(s.pid(), SIGTERM);
  EXPECT_EQ(s.wait(), 143);
  const std::string json = test::read_file(status);
  EXPECT_NE(json.find("\"signal\": 15"), std::string::npos) << json;
  EXPECT_NE(json.find("\"signal_name\": \"SIGTERM\""), std::string::npos) << json;
}

TEST_F(LauncherRun, SandboxScratchDirsAndEnvironment) {
  auto r =
      job("pwd; echo $TMPDIR $TMP $TEMP $HOME $USER; echo a > /tmp/a; echo b > /var/tmp/b; echo s > /scratch/s; "
          "echo m > /dev/shm/m; ls /dev/shm; echo $FOO $LANG",
          {"--scratch-path", "/scratch", "--env", "FOO=bar", "--keep-env", "LANG"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, sandbox + "\n/tmp /tmp /tmp /nonexistent nobody\nm\nbar C.UTF-8\n");
  EXPECT_EQ(test::read_file(sandbox + "/tmp/a"), "a\n");
  EXPECT_EQ(test::read_file(sandbox + "/var/tmp/b"), "b\n");
  EXPECT_EQ(test::read_file(sandbox + "/s"), "s\n");
  struct stat st {};
  ASSERT_EQ(::stat((sandbox + "/tmp").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_EQ(st.st_uid, 65534u);
  ASSERT_EQ(::stat((sandbox + "/var/tmp").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_EQ(st.st_uid, 65534u);
  // The image's own /tmp got nothing.
  EXPECT_EQ(test::sh("ls -A '" + root + "/tmp' '" + root + "/var/tmp'").out, root + "/tmp:\n\n" + root + "/var/tmp:\n");
}

TEST_F(LauncherRun, NoScratchDirsWhenAskedForNone) {
  auto r = job("touch /tmp/x", {"--mount-under-scratch", ""});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "touch: /tmp/x: Read-only file system\n");
  EXPECT_FALSE(fx::exists(sandbox + "/tmp"));
}

TEST_F(LauncherRun, MissingSandboxPathIsMirroredWithoutWritingTheImage) {
  // The sandbox lives where the image has no directory: /srv/chrootctl-test-N/a/b.
  const std::string base = "/srv/chrootctl-test-" + fx::unique_number();
  sandbox = base + "/a/b";
  test::mkdirs(sandbox);
  ASSERT_EQ(::chown(sandbox.c_str(), 65534, 65534), 0);
  test::mkdirs(root + "/srv/keep");
  test::write_file(root + "/srv/keep/file", "kept\n");
  ASSERT_EQ(::symlink("keep/file", (root + "/srv/link").c_str()), 0);
  const std::string image_before = test::sh("cd '" + root + "' && find . -printf '%p %m %U %s %l\\n' | sort").out;
  auto r = job("pwd; ls /srv; cat /srv/keep/file /srv/link; touch /srv/new; echo ok > here");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, sandbox + "\n" + base.substr(5) + "\nkeep\nlink\nkept\nkept\n");
  EXPECT_EQ(r.err, "touch: /srv/new: Read-only file system\n");
  EXPECT_EQ(test::read_file(sandbox + "/here"), "ok\n");
  EXPECT_EQ(test::sh("cd '" + root + "' && find . -printf '%p %m %U %s %l\\n' | sort").out, image_before);
  EXPECT_EQ(fx::host_mounts_mentioning(base), std::vector<std::string>{});
  test::sh("rm -rf '" + base + "'");
}

TEST_F(LauncherRun, SubmountsOfTheImageAreReadOnlyNosuidNodevToo) {
  // The image has a writable tmpfs submount with a setuid binary: in a child with its own mount
  // namespace, so nothing is mounted on the host.
  const std::string report = path("report");
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::string why;
    if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("tmpfs", (root + "/srv").c_str(), "tmpfs", 0, "mode=0755") != 0)
      why = "setup failed";
    test::sh("cp '" + root + "/bin/probe' '" + root + "/srv/suid' && chmod 4755 '" + root + "/srv/suid'");
    auto r =
        test::run_chrootctl({"run", "--root", root, "--sandbox", sandbox, "--user", "nobody", "--", "/bin/sh", "-c", "/srv/suid ids; touch /srv/x"});
    if (why.empty() && r.out != "uid=65534 euid=65534 gid=65534 egid=65534\n") why = "suid: " + r.out + r.err;
    if (why.empty() && r.err != "touch: /srv/x: Read-only file system\n") why = "touch: " + r.err;
    test::write_file(report, why);
    ::_exit(why.empty() ? 0 : 1);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << test::read_file(report);
}

TEST_F(LauncherRun, BindsAreNosuidNodevAndReadOnlyOnRequest) {
  const std::string data = path("data");
  test::mkdirs(data);
  ASSERT_EQ(test::sh("cp '" + root + "/bin/probe' '" + data + "/suid' && chmod 4755 '" + data + "/suid'").exit_code, 0);
  const std::string out = path("out");
  test::mkdirs(out);
  ASSERT_EQ(::chown(out.c_str(), 65534, 65534), 0);
  auto r = job("/data/suid ids; touch /data/x", {"--bind", data + ":/data:ro"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "uid=65534 euid=65534 gid=65534 egid=65534\n");
  EXPECT_EQ(r.err, "touch: /data/x: Read-only file system\n");
  EXPECT_FALSE(fx::exists(data + "/x"));
  r = job("echo w > /srv/deep/out/w", {"--bind", out + ":/srv/deep/out"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(test::read_file(out + "/w"), "w\n");
  // A bind below another one: its mount point is never made in the host directory, even one
  // the job user owns and could write.
  r = job("true", {"--bind", out + ":/srv/out", "--bind", data + ":/srv/out/sub:ro"});
  EXPECT_EQ(r.exit_code, 125);
  EXPECT_EQ(r.err,
            "chrootctl run: mount target /srv/out/sub is missing below /srv/out, where a host directory is bound, and chrootctl never "
            "makes a mount point in a host directory: make it there first or choose another target\n");
  EXPECT_FALSE(fx::exists(out + "/sub"));
  test::mkdirs(out + "/sub");
  r = job("ls /srv/out/sub", {"--bind", out + ":/srv/out", "--bind", data + ":/srv/out/sub:ro"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "suid\n");
}

TEST_F(LauncherRun, NetNoneLeavesOnlyALoopbackThatIsUp) {
  auto r = job("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; ifconfig lo | grep -c 'UP'", {"--net", "none"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "lo\n1\n");
}

TEST_F(LauncherRun, InitReapsOrphansAndIsFoundByPgrep) {
  const std::string marker = fx::unique_number();
  fx::Spawned s(m_dir, args({"--env", "MARK=" + marker}, {"/bin/sh", "-c",
                                                          "(sleep 0.1 &); sleep 0.5; cut -d' ' -f3 /proc/[0-9]*/stat | "
                                                          "grep -c Z; touch ready; sleep 1; echo " +
                                                              marker}));
  ASSERT_TRUE(fx::eventually([&] { return fx::exists(sandbox + "/ready"); })) << s.err();
  // The launcher and its init, by the command line they share.
  auto found = test::sh("pgrep -f 'chrootctl (run|init).*echo " + marker + "'");
  EXPECT_EQ(split(trim(found.out), '\n').size(), 2u) << found.out;
  EXPECT_EQ(test::sh("pgrep -x chrootctl-init -P " + std::to_string(s.pid())).exit_code, 0);
  EXPECT_EQ(s.wait(), 0) << s.err();
  EXPECT_EQ(s.out(), "0\n" + marker + "\n");
}

TEST_F(LauncherRun, StatusJsonIsWrittenForSuccessAndForSetupFailure) {
  CHROOTCTL_REQUIRE_PRIVILEGE("cgroup");
  const std::string status = path("status.json");
  auto r = job("exit 3", {"--status-json", status, "--memory", "64M", "--cpus", "1.5", "--pids", "50"});
  EXPECT_EQ(r.exit_code, 3);
  auto check = test::run({"python3", "-c",
                          "import json,sys; d=json.load(open(sys.argv[1])); "
                          "print(d['outcome'], d['exit_code'], d['exit_status'], d['signal'], d['cgroup'], d['limits_applied'], "
                          "d['memory_limit_bytes'], d['memory_limit_hit'], d['oom_kills'], d['peak_memory_bytes'] > 0, "
                          "d['wall_seconds'] > 0, d['cpu_user_seconds'] >= 0, d['max_rss_bytes'] > 0)",
                          status});
  EXPECT_EQ(check.out, "exited 3 3 None " + test::cgroup_version() + " True 67108864 False 0 True True True True\n") << check.err;
  auto bad = job("true", {"--status-json", status, "--bind", path("missing") + ":/x"});
  EXPECT_EQ(bad.exit_code, 125);
  check = test::run({"python3", "-c", "import json,sys; d=json.load(open(sys.argv[1])); print(d['outcome'], d['exit_status'], d['error'])", status});
  EXPECT_EQ(check.out, "setup_failed 125 opening " + path("missing") + ": open('" + path("missing") + "', O_PATH): No such file or directory\n");
}

TEST_F(LauncherRun, StatusFileIsNeverWrittenThroughASymlinkTheJobPlanted) {
  // The job leaves SANDBOX/out -> a directory it must not write to, and SANDBOX/status.json ->
  // a file it must not overwrite; root writes the status afterwards.
  const std::string victim = path("victim");
  test::mkdirs(victim);
  test::write_file(victim + "/status.json", "precious\n");
  auto r = job("ln -s " + victim + " out; ln -s " + victim + "/status.json status.json", {"--status-json", sandbox + "/out/status.json"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.err, "chrootctl: warning: cannot write the status file: " + sandbox +
                       "/out is a symlink or not a directory; "
                       "refusing to write " +
                       sandbox + "/out/status.json through it\n");
  r = job("true", {"--status-json", sandbox + "/status.json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(test::read_file(victim + "/status.json"), "precious\n");
  EXPECT_NE(test::read_file(sandbox + "/status.json").find("\"outcome\": \"exited\""), std::string::npos);
  EXPECT_EQ(test::sh("ls -A '" + victim + "'").out, "status.json\n");
}

TEST_F(LauncherRun, InitHoldsNoHostDescriptorsAndIsNotDumpable) {
  fx::Spawned s(m_dir, args({}, {"/bin/sh", "-c", "ls /proc/1/fd 2>&1; touch ready; sleep 1"}));
  ASSERT_TRUE(fx::eventually([&] { return fx::exists(sandbox + "/ready"); })) << s.err();
  const auto init = test::sh("pgrep -x chrootctl-init -P " + std::to_string(s.pid()));
  ASSERT_EQ(init.exit_code, 0);
  // stdin, stdout, stderr, the report pipe and the signalfd (the exec pipe is closed once the
  // job has exec'd), and nothing else: no image, sandbox, bind source or cgroup descriptor.
  auto fds = test::sh("ls -l /proc/" + std::string(trim(init.out)) + "/fd | tail -n +2 | sed 's/.*-> //' | sort");
  EXPECT_EQ(s.wait(), 0);
  EXPECT_EQ(s.out(), "ls: can't open '/proc/1/fd': Permission denied\n");
  EXPECT_EQ(split(trim(fds.out), '\n').size(), 5u) << fds.out;
  for (const auto& line : split(trim(fds.out), '\n'))
    EXPECT_TRUE(line.rfind("pipe:", 0) == 0 || line.rfind("anon_inode:[signalfd]", 0) == 0 || line == "/dev/null" ||
                line.find("spawned.") != std::string::npos)
        << line;
}

TEST_F(LauncherRun, CgroupLimitsAreWrittenAndTheCgroupIsGoneAfterwards) {
  CHROOTCTL_REQUIRE_PRIVILEGE("cgroup");
  const bool v2 = test::cgroup_version() == "v2";
  fx::Spawned s(m_dir, args({"--memory", "96M", "--memory-low", "32M", "--cpus", "2", "--pids", "64"}, {"/bin/sh", "-c", "touch ready; sleep 2"}));
  ASSERT_TRUE(fx::eventually([&] { return fx::exists(sandbox + "/ready"); })) << s.err();
  // v1: a directory in every hierarchy; v2: one.
  const auto dirs = fx::job_cgroups_of(s.pid());
  ASSERT_EQ(dirs.size(), fx::job_cgroup_count()) << s.err();
  std::map<std::string, std::string> values;
  for (const auto& d : dirs) {
    for (const char* f : {"memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.soft_limit_in_bytes", "cpu.shares", "memory.max",
                          "memory.swap.max", "memory.low", "cpu.weight", "pids.max"})
      if (fx::exists(d + "/" + f)) values[f] = trim(test::read_file(d + "/" + f));
    // init and the job are inside, the launcher is not.
    const auto procs = test::read_file(d + "/cgroup.procs");
    EXPECT_EQ(split(trim(procs), '\n').size(), 2u) << d << ": " << procs;  // init, and sh exec'ing sleep
    EXPECT_EQ(procs.find(std::to_string(s.pid()) + "\n"), std::string::npos);
  }
  // No swap beyond the memory limit; 100 CPU shares or weight per CPU.
  if (v2) {
    EXPECT_EQ(values,
              (std::map<std::string, std::string>{
                  {"memory.max", "100663296"}, {"memory.swap.max", "0"}, {"memory.low", "33554432"}, {"cpu.weight", "200"}, {"pids.max", "64"}}));
  } else {
    EXPECT_EQ(values, (std::map<std::string, std::string>{{"memory.limit_in_bytes", "100663296"},
                                                          {"memory.memsw.limit_in_bytes", "100663296"},
                                                          {"memory.soft_limit_in_bytes", "33554432"},
                                                          {"cpu.shares", "200"},
                                                          {"pids.max", "64"}}));
  }
  EXPECT_EQ(s.wait(), 0) << s.err();
  EXPECT_EQ(fx::job_cgroups_of(s.pid()), std::vector<std::string>{});
  EXPECT_EQ(test::sh("ls /run/chrootctl/launches | grep -c '^" + std::to_string(s.pid()) + "\\.'").out, "0\n");
}

TEST_F(LauncherRun, WhatAKilledLauncherLeftIsRemovedByCleanupAndByTheNextRun) {
  CHROOTCTL_REQUIRE_PRIVILEGE("cgroup");
  // A state directory of this test's own: other tests' launches, running in parallel, remove
  // dead launches' leftovers too, but they read only their own records. (A concurrent
  // 'chrootctl cleanup' may still scan the cgroup bases, so who removed a cgroup is not asserted,
  // only that the record's owner did its part and that nothing is left.)
  const std::string state = path("state");
  const std::map<std::string, std::string> env{{"CHROOTCTL_STATE_DIR", state}};
  for (const bool by_cleanup : {true, false}) {
    SCOPED_TRACE(by_cleanup ? "cleanup" : "next run");
    const std::string marker = fx::unique_number();
    ::unlink((sandbox + "/ready").c_str());
    fx::Spawned s(m_dir, args({"--memory", "64M"}, {"/bin/sh", "-c", "touch ready; exec sleep " + marker}),
                  [&] { ::setenv("CHROOTCTL_STATE_DIR", state.c_str(), 1); });
    ASSERT_TRUE(fx::eventually([&] { return fx::exists(sandbox + "/ready"); })) << s.err();
    const auto dirs = fx::job_cgroups_of(s.pid());
    ASSERT_EQ(dirs.size(), fx::job_cgroup_count());
    const std::string name = dirs[0].substr(dirs[0].rfind('/') + 1);
    const std::string record = state + "/launches/" + name;
    ASSERT_TRUE(fx::exists(record));
    for (const auto& d : dirs) EXPECT_NE(test::read_file(record).find("cgroup " + d + "\n"), std::string::npos) << d;
    ::kill(s.pid(), SIGKILL);
    EXPECT_EQ(s.wait(), 137);
    // The kernel takes the job down with its init (which dies with the launcher); the record
    // stays until someone cleans up.
    EXPECT_TRUE(fx::eventually([&] { return test::sh("pgrep -f 'slee[p] " + marker + "'").exit_code != 0; }));
    EXPECT_TRUE(fx::exists(record));
    if (by_cleanup) {
      auto c = test::run_chrootctl({"cleanup", "--json"}, env);
      EXPECT_EQ(c.exit_code, 0) << c.err;
      EXPECT_NE(c.out.find("\"" + record + "\""), std::string::npos) << c.out;
    } else {
      auto r = test::run_chrootctl(args({}, {"true"}), env);
      EXPECT_EQ(r.exit_code, 0) << r.err;
    }
    for (const auto& d : dirs) EXPECT_FALSE(fx::exists(d)) << d;
    EXPECT_FALSE(fx::exists(record));
    EXPECT_EQ(fx::host_mounts_mentioning(m_dir), mounts_before);
  }
}

TEST_F(LauncherRun, CleanupLeavesLiveLaunchesAlone) {
  CHROOTCTL_REQUIRE_PRIVILEGE("cgroup");
  fx::Spawned s(m_dir, args({}, {"/bin/sh", "-c", "touch ready; sleep 1; echo still-here"}));
  ASSERT_TRUE(fx::eventually([&] { return fx::exists(sandbox + "/ready"); })) << s.err();
  // Without limits too, the job has a cgroup of its own in every hierarchy.
  const auto dirs = fx::job_cgroups_of(s.pid());
  ASSERT_EQ(dirs.size(), fx::job_cgroup_count());
  auto c = test::run_chrootctl({"cleanup"});
  EXPECT_EQ(c.exit_code, 0) << c.err;
  for (const auto& d : dirs) EXPECT_TRUE(fx::exists(d)) << d;
  EXPECT_EQ(s.wait(), 0);
  EXPECT_EQ(s.out(), "still-here\n");
}

TEST_F(LauncherRun, TheJobKeepsTheCallersOomScore) {
  // Raising one's own OOM score needs no privilege; the job inherits the caller's, like init.
  std::string cmd = "echo 300 > /proc/self/oom_score_adj && exec '" + std::string(CHROOTCTL_BIN) + "'";
  for (const auto& a : args({}, {"/bin/sh", "-c", "cat /proc/self/oom_score_adj /proc/1/oom_score_adj"})) cmd += " '" + a + "'";
  auto r = test::sh(cmd);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "300\n300\n");
}

TEST_F(LauncherRun, InitKilledWhileTheJobRunsIsReportedAndItsCgroupRemoved) {
  CHROOTCTL_REQUIRE_PRIVILEGE("cgroup");
  // Killed while it supervises the job, init takes the job with it; the launcher reports the
  // end and removes the cgroup.
  const std::string marker = fx::unique_number();
  fx::Spawned s(m_dir, args({}, {"/bin/sh", "-c", "touch ready; exec sleep " + marker}));
  ASSERT_TRUE(fx::eventually([&] { return fx::exists(sandbox + "/ready"); })) << s.err();
  const auto dirs = fx::job_cgroups_of(s.pid());
  ASSERT_EQ(dirs.size(), fx::job_cgroup_count());
  const auto init = test::sh("pgrep -x chrootctl-init -P " + std::to_string(s.pid()));
  ASSERT_EQ(init.exit_code, 0);
  ASSERT_EQ(::kill(static_cast<pid_t>(std::stol(std::string(trim(init.out)))), SIGKILL), 0);
  EXPECT_EQ(s.wait(), 137);
  EXPECT_NE(s.err().find("the launch's init process ended (signal 9) without reporting the job's status"), std::string::npos) << s.err();
  EXPECT_TRUE(fx::eventually([&] { return test::sh("pgrep -f 'slee[p] " + marker + "'").exit_code != 0; }));
  for (const auto& d : dirs) EXPECT_FALSE(fx::exists(d)) << d;
}

TEST_F(LauncherRun, ConcurrentLaunchesLeaveNothingBehind) {
  std::vector<std::unique_ptr<fx::Spawned>> runs;
  for (int i = 0; i < 8; ++i) {
    const std::string sb = path("sb" + std::to_string(i));
    test::mkdirs(sb);
    ASSERT_EQ(::chown(sb.c_str(), 65534, 65534), 0);
    runs.push_back(
        std::make_unique<fx::Spawned>(m_dir, std::vector<std::string>{"run", "--root", root, "--sandbox", sb, "--user", "nobody", "--memory", "64M",
                                                                      "--", "/bin/sh", "-c", "echo " + std::to_string(i)}));
  }
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(runs[static_cast<std::size_t>(i)]->wait(), 0) << runs[static_cast<std::size_t>(i)]->err();
    EXPECT_EQ(runs[static_cast<std::size_t>(i)]->out(), std::to_string(i) + "\n");
    EXPECT_EQ(fx::job_cgroups_of(runs[static_cast<std::size_t>(i)]->pid()), std::vector<std::string>{});
  }
}

// Jobs of one user may share a sandbox, and the first launches into a new one race to make its
// scratch directories (SANDBOX/tmp, SANDBOX/var/tmp). A launch must never see such a directory
// half made (root's, not yet the job user's) and refuse it: each round starts from an empty
// sandbox and runs its launches at once.
TEST_F(LauncherRun, ConcurrentLaunchesShareANewSandbox) {
  for (int round = 0; round < 5; ++round) {
    const std::string sb = path("shared" + std::to_string(round));
    test::mkdirs(sb);
    ASSERT_EQ(::chown(sb.c_str(), 65534, 65534), 0);
    std::vector<std::unique_ptr<fx::Spawned>> runs;
    runs.reserve(6);
    for (int i = 0; i < 6; ++i)
      runs.push_back(std::make_unique<fx::Spawned>(
          m_dir, std::vector<std::string>{"run", "--root", root, "--sandbox", sb, "--user", "nobody", "--", "/bin/sh", "-c",
                                          "echo " + std::to_string(i) + " > /tmp/" + std::to_string(i) + " && echo ok"}));
    for (auto& r : runs) {
      EXPECT_EQ(r->wait(), 0) << r->err();
      EXPECT_EQ(r->out(), "ok\n") << r->err();
    }
    struct stat st {};
    ASSERT_EQ(::lstat((sb + "/tmp").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 65534u);
    EXPECT_EQ(st.st_mode & 07777, 0700u);
    // Nothing is left under a launch's temporary name.
    EXPECT_EQ(test::sh("ls -A '" + sb + "' | sort | tr '\\n' ' '").out, "tmp var ");
  }
}

}  // namespace
}  // namespace chrootctl
