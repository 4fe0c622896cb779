// Every job in its own user namespace (docs/launcher.md, "User namespace and id mapping"): the
// attacks a job run as root made when it was host uid 0 without capabilities, each tried again,
// with a control that shows the probe would see the attack succeed. Runs on cgroup v1 here and
// on v2 in the stock-kernel VM (tests/vm).
#include <linux/capability.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <set>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/launcher/cgroups.hpp"
#include "launcher_fixture.hpp"
#include "test_support.hpp"

namespace chrootctl {
namespace {

namespace fx = test::launcher;
namespace cg = launcher::cgroup;

class LauncherUserns : public fx::BusyboxRootTest {
 protected:
  void SetUp() override {
    BusyboxRootTest::SetUp();
    // Host users other than root must reach the sandbox (to run what a job left there).
    ASSERT_EQ(::chmod(m_dir.c_str(), 0755), 0);
  }
  std::vector<std::string> args(const std::vector<std::string>& options, const std::vector<std::string>& cmd, const std::string& sb = {}) {
    std::vector<std::string> a{"run", "--root", root, "--sandbox", sb.empty() ? sandbox : sb};
    a.insert(a.end(), options.begin(), options.end());
    a.push_back("--");
    a.insert(a.end(), cmd.begin(), cmd.end());
    return a;
  }
  test::CommandResult job(const std::string& script, const std::vector<std::string>& options) {
    return test::run_chrootctl(args(options, {"/bin/sh", "-c", script}));
  }
  // A sandbox of its own for one launch, owned by nobody.
  std::string new_sandbox(const std::string& name) {
    std::string sb = path(name);
    test::mkdirs(sb);
    EXPECT_EQ(::chown(sb.c_str(), 65534, 65534), 0);
    return sb;
  }
};

// The cgroup directories, in every hierarchy, of the process `pid`, as the host sees them.
std::vector<std::string> cgroup_dirs_of(pid_t pid) {
  const auto layout = cg::parse_layout(test::read_file("/proc/self/mountinfo"), test::read_file(str("/proc/", pid, "/cgroup")));
  std::vector<std::string> out;
  if (!layout.v2_mount.empty() && layout.v1_mounts.empty()) out.push_back(layout.v2_mount + layout.v2_own);
  for (const auto& [controller, mount] : layout.v1_mounts) {
    auto own = layout.v1_own.find(controller);
    const std::string dir = mount + (own == layout.v1_own.end() || own->second == "/" ? "" : own->second);
    if (std::find(out.begin(), out.end(), dir) == out.end()) out.push_back(dir);
  }
  return out;
}

pid_t init_of(pid_t launcher) {
  auto r = test::sh("pgrep -x chrootctl-init -P " + std::to_string(launcher));
  return r.exit_code == 0 ? static_cast<pid_t>(std::stol(std::string(trim(r.out)))) : -1;
}

// The file `name` in whichever of `dirs` has it.
std::string cgroup_file(const std::vector<std::string>& dirs, const std::string& name) {
  for (const auto& d : dirs)
    if (fx::exists(d + "/" + name)) return std::string(trim(test::read_file(d + "/" + name)));
  return "(none)";
}

// Lines of the probe's cgroup-escape output that report a write that went through.
std::vector<std::string> successful_writes(const std::string& out) {
  std::vector<std::string> ok;
  for (const auto& line : split(out, '\n'))
    if (line.ends_with(": ok") && !starts_with(line, "mount ")) ok.push_back(line);
  return ok;
}

// Runs the probe as host uid 0 with every capability dropped, in the cgroup `dir`; its output.
std::string probe_as_uncapable_root(const std::string& dir, const std::vector<std::string>& args, const std::string& out) {
  const pid_t child = ::fork();
  if (child == 0) {
    test::write_file(dir + "/cgroup.procs", std::to_string(::getpid()));
    for (int cap = 0; cap <= 63; ++cap)
      if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno == EINVAL) break;
    struct __user_cap_header_struct h {
      _LINUX_CAPABILITY_VERSION_3, 0
    };
    struct __user_cap_data_struct d[2]{};
    if (::syscall(SYS_capset, &h, d) != 0) ::_exit(90);
    const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    std::vector<char*> argv{const_cast<char*>("probe")};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(CHROOTCTL_TEST_PROBE, argv.data());
    ::_exit(127);
  }
  int status = 0;
  EXPECT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  return test::read_file(out);
}

TEST_F(LauncherUserns, TheEscapeProbeSeesAHostRootWithoutCapabilitiesRaiseItsLimit) {
  // The control for the two tests below: what a job run as root could do when it was host uid
  // 0 without capabilities. In a cgroup of the test's own with pids.max 32, such a process may
  // write the limit (only the file's owner, root, guards it); on v1 it also makes a user
  // namespace, mounts cgroupfs there and raises its limit. (On v2 the kernel's nsdelegate, as
  // systemd mounts cgroup2, refuses writes to a namespace's root cgroup from inside it.)
  const auto layout = cg::parse_layout(test::read_file("/proc/self/mountinfo"), test::read_file("/proc/self/cgroup"));
  std::string hierarchy;
  const bool v1 = layout.v1_mounts.count("pids") > 0;
  if (v1) {
    hierarchy = layout.v1_mounts.at("pids");
  } else if (!layout.v2_mount.empty()) {
    hierarchy = layout.v2_mount;
    for (const auto& d : {hierarchy, hierarchy + "/chrootctl"}) {
      test::mkdirs(d);
      (void)test::sh("echo +pids > '" + d + "/cgroup.subtree_control'");
    }
  }
  ASSERT_FALSE(hierarchy.empty()) << "no pids controller";
  const std::string dir = str(hierarchy, "/chrootctl/control-", ::getpid());
  test::mkdirs(dir);
  test::write_file(dir + "/pids.max", "32");
  EXPECT_EQ(probe_as_uncapable_root(dir, {"write", dir + "/pids.max", "64"}, path("write.out")), "ok\n");
  EXPECT_EQ(trim(test::read_file(dir + "/pids.max")), "64");
  const std::string scratch = path("control-mnt");
  test::mkdirs(scratch);
  const std::string escape = probe_as_uncapable_root(dir, {"cgroup-escape", scratch}, path("escape.out"));
  const auto ok = successful_writes(escape);
  if (v1) {
    EXPECT_NE(std::find(ok.begin(), ok.end(), "./pids.max: ok"), ok.end()) << escape;
    EXPECT_EQ(trim(test::read_file(dir + "/pids.max")), "max");
  } else {
    EXPECT_NE(escape.find("./pids.max: Operation not permitted"), std::string::npos) << escape;
  }
  EXPECT_EQ(::rmdir(dir.c_str()), 0);
}

TEST_F(LauncherUserns, ARootJobCannotRaiseItsOwnLimitsThroughAnyCgroupfs) {
  // The default system-call filter refuses the user namespace the attack starts with:
  auto filtered = job("probe cgroup-escape /tmp", {"--user", "root"});
  EXPECT_EQ(filtered.out, "unshare: Operation not permitted\n");
  // without it (--seccomp none, or a site that allows nested namespaces), the user namespace
  // itself stops the attack.
  const std::string status = path("status.json");
  auto r = job("probe cgroup-escape /tmp; cat /proc/self/cgroup",
               {"--user", "root", "--seccomp", "none", "--memory", "64M", "--pids", "32", "--status-json", status});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // It may mount cgroupfs in a namespace of its own, where its own cgroup is the root; no
  // write to a limit goes through, and no other cgroup is in sight.
  EXPECT_EQ(successful_writes(r.out), std::vector<std::string>{}) << r.out;
  EXPECT_NE(r.out.find(": Permission denied"), std::string::npos) << "it tried no write: " << r.out;
  for (const auto& line : split(r.out, '\n')) {
    if (line.empty() || starts_with(line, "mount ")) continue;
    if (std::count(line.begin(), line.end(), ':') == 2) {  // /proc/self/cgroup: its namespace's root
      EXPECT_TRUE(line.ends_with(":/")) << "cgroup namespace: " << line;
      continue;
    }
    EXPECT_TRUE(starts_with(line, "./")) << "a cgroup other than its own: " << line;
  }
  const auto text = test::read_file(status);
  EXPECT_NE(text.find("\"pids_max\": 32"), std::string::npos) << text;
  EXPECT_NE(text.find("\"memory_max_bytes\": 67108864"), std::string::npos) << text;
  EXPECT_NE(text.find("\"limits_changed\": false"), std::string::npos) << text;
}

TEST_F(LauncherUserns, ARootJobCannotChangeAnotherJobsCgroup) {
  const std::string marker = fx::unique_number();
  fx::Spawned victim(m_dir, args({"--user", "nobody", "--pids", "64", "--memory", "96M"}, {"/bin/sh", "-c", "touch ready; exec sleep " + marker},
                                 new_sandbox("victim")));
  ASSERT_TRUE(fx::eventually([&] { return fx::exists(path("victim/ready")); })) << victim.err();
  const auto dirs = cgroup_dirs_of(init_of(victim.pid()));
  ASSERT_FALSE(dirs.empty());
  ASSERT_EQ(cgroup_file(dirs, "pids.max"), "64");
  // The attacker writes pids.max and memory limits everywhere it can see, as root (without the
  // system-call filter, which would stop it at its first step).
  auto r = job("probe cgroup-escape /tmp", {"--user", "root", "--seccomp", "none"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(successful_writes(r.out), std::vector<std::string>{}) << r.out;
  EXPECT_EQ(r.out.find(marker), std::string::npos);
  EXPECT_EQ(cgroup_file(dirs, "pids.max"), "64");
  const std::string memory =
      cgroup_file(dirs, "memory.max") != "(none)" ? cgroup_file(dirs, "memory.max") : cgroup_file(dirs, "memory.limit_in_bytes");
  EXPECT_EQ(memory, "100663296");
  ::kill(victim.pid(), SIGTERM);
  EXPECT_EQ(victim.wait(), 143);
}

TEST_F(LauncherUserns, ASetuidFileARootJobLeavesBelongsToTheSandboxsOwner) {
  // A sandbox whose group is not its owner's primary group is refused: the job's files would
  // carry a group its owner need not be in.
  ASSERT_EQ(::chown(sandbox.c_str(), 65534, 1), 0);
  auto other_group = job("true", {"--user", "root"});
  EXPECT_EQ(other_group.exit_code, 125);
  EXPECT_EQ(other_group.err,
            "chrootctl run: the sandbox has group 1, not its owner nobody's primary group 65534; a job as root "
            "writes its files as nobody and its group (chgrp it)\n");
  ASSERT_EQ(::chown(sandbox.c_str(), 65534, 65534), 0);
  auto r =
      job("cp /bin/probe \"$PWD/suid\" && chmod 6755 \"$PWD/suid\" && mkdir -p d && touch d/f /tmp/t && id -u && ls -ln suid", {"--user", "root"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(starts_with(r.out, "0\n-rwsr-sr-x    1 0        0 ")) << "root inside, owning its file: " << r.out;
  // On disk: every file the job made is the sandbox owner's (nobody:nogroup), none the host root's.
  EXPECT_EQ(test::sh("find '" + sandbox + "' ! -uid 65534 -o ! -gid 65534").out, "");
  for (const char* made : {"/suid", "/d/f", "/tmp/t"}) EXPECT_TRUE(fx::exists(sandbox + made)) << made;
  struct stat st {};
  ASSERT_EQ(::stat((sandbox + "/suid").c_str(), &st), 0);
  EXPECT_TRUE(st.st_mode & S_ISUID);
  // Run by another host user, it gives nobody's rights at most, never root's.
  auto run = test::sh("setpriv --reuid 2 --regid 2 --clear-groups '" + sandbox + "/suid' ids");
  EXPECT_EQ(run.out, "uid=2 euid=65534 gid=2 egid=65534\n") << run.err;
}

TEST_F(LauncherUserns, KeyringsArePrivateBothWays) {
  const std::string tag = str("chrootctl-test-", ::getpid(), "-");
  auto as_nobody = [&](const std::string& what) {
    return test::sh("setpriv --reuid 65534 --regid 65534 --clear-groups '" CHROOTCTL_TEST_PROBE "' " + what).out;
  };
  for (const std::string ring : {"user", "persistent"}) {
    SCOPED_TRACE(ring);
    // Control: two host processes of one uid share its user (and persistent) keyring.
    const std::string shared = as_nobody("key-add " + ring + " " + tag + ring + "-host");
    if (ring == "persistent" && shared != "ok\n") {
      EXPECT_EQ(shared, "Operation not supported\n") << "persistent keyrings: " << shared;
      continue;
    }
    ASSERT_EQ(shared, "ok\n");
    // The host's key goes when the test does: a user keyring of the host lives as long as the
    // machine, and every key in it counts against the uid's quota (200 keys), which the session
    // keyring of every launch as that uid needs a place in.
    struct Remove {
      std::function<void()> f;
      ~Remove() { f(); }
    } remove{[&] { EXPECT_EQ(as_nobody("key-del " + ring + " " + tag + ring + "-host"), "ok\n"); }};
    EXPECT_EQ(as_nobody("key-find " + ring + " " + tag + ring + "-host"), "ok\n");
    // A key the host has is not the job's, and one the job adds does not reach the host. (The
    // job's user keyring is its user namespace's own; the persistent keyrings of a user
    // namespace belong to its host's root, and a job may not use them at all.) The default
    // system-call filter refuses the keyring calls outright; this is the namespace's boundary,
    // without it.
    auto r = job("probe key-find " + ring + " " + tag + ring + "-host; probe key-add " + ring + " " + tag + ring + "-job; probe key-find " + ring +
                     " " + tag + ring + "-job",
                 {"--user", "nobody", "--seccomp", "none"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto lines = split(std::string(trim(r.out)), '\n');
    ASSERT_EQ(lines.size(), 3u) << r.out;
    EXPECT_NE(lines[0], "ok") << "the job found the host's key";
    if (ring == "user") {
      EXPECT_EQ(r.out, "Required key not available\nok\nok\n");
    }
    EXPECT_EQ(as_nobody("key-find " + ring + " " + tag + ring + "-job"), "Required key not available\n");
  }
}

TEST_F(LauncherUserns, ConcurrentRootJobsGetDisjointIdBlocks) {
  constexpr int k_jobs = 4;
  std::vector<std::unique_ptr<fx::Spawned>> runs;
  runs.reserve(k_jobs);
  for (int i = 0; i < k_jobs; ++i)
    runs.push_back(std::make_unique<fx::Spawned>(
        m_dir, args({"--user", "root"}, {"/bin/sh", "-c", "cat /proc/self/uid_map; sleep 1"}, new_sandbox(str("sb", i)))));
  std::set<std::string> blocks;
  for (auto& s : runs) {
    EXPECT_EQ(s->wait(), 0) << s->err();
    const auto fields = split(std::string(trim(s->out())), ' ');
    std::vector<std::string> words;
    for (const auto& f : fields)
      if (!f.empty()) words.push_back(f);
    ASSERT_EQ(words.size(), 3u) << s->out();
    EXPECT_EQ(words[0], "0");
    EXPECT_EQ(words[2], "65536");
    EXPECT_GE(std::stoull(words[1]), 0x70000000ull);
    blocks.insert(words[1]);
  }
  EXPECT_EQ(blocks.size(), static_cast<std::size_t>(k_jobs)) << "two running jobs shared an id block";
  // Every claim is released with its launch.
  for (auto& s : runs) {
    auto claims = test::sh("grep -l '^" + std::to_string(s->pid()) + "\\.' /run/chrootctl/idblocks/* 2>/dev/null");
    EXPECT_EQ(claims.out, "") << "a claim outlived its launch";
  }
}

TEST_F(LauncherUserns, TheStatusReportsTheLimitsReadBackAndAChange) {
  const std::string status = path("status.json");
  fx::Spawned s(m_dir, args({"--user", "nobody", "--pids", "32", "--status-json", status}, {"/bin/sh", "-c", "touch ready; sleep 1"}));
  ASSERT_TRUE(fx::eventually([&] { return fx::exists(sandbox + "/ready"); })) << s.err();
  // Someone (root, on the host) changes the limit while the job runs: the status says so.
  const auto dirs = cgroup_dirs_of(init_of(s.pid()));
  bool written = false;
  for (const auto& d : dirs)
    if (fx::exists(d + "/pids.max")) {
      test::write_file(d + "/pids.max", "16");
      written = true;
    }
  ASSERT_TRUE(written);
  EXPECT_EQ(s.wait(), 0) << s.err();
  const auto text = test::read_file(status);
  EXPECT_NE(text.find("\"pids_max\": 16"), std::string::npos) << text;
  EXPECT_NE(text.find("\"limits_changed\": true"), std::string::npos) << text;
  EXPECT_NE(text.find("\"mode\": \"mapped\""), std::string::npos) << text;
}

TEST_F(LauncherUserns, ARootJobsSandboxMustBelongToTheUserItRunsFor) {
  const std::string sb = path("root-owned");
  test::mkdirs(sb);
  auto r = test::run_chrootctl(args({"--user", "root"}, {"/bin/true"}, sb));
  EXPECT_EQ(r.exit_code, 125);
  EXPECT_EQ(r.err,
            "chrootctl run: the sandbox belongs to root; a job as root writes its files as its sandbox's owner, so the "
            "sandbox must belong to the user the job runs for (chown it)\n");
  EXPECT_FALSE(fx::exists(sb + "/tmp")) << "nothing is made in a sandbox that is refused";
}

}  // namespace
}  // namespace chrootctl
