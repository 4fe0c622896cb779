// cgroup logic (v2 and v1) against temporary directory trees laid out like cgroupfs: which
// directories are made, which files are written with which values, what is read back, and what
// is removed. The fake adds what the kernel would: control files in new directories, EBUSY for
// controllers in a cgroup that holds processes, process moves, cgroup.kill.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/launcher/cgroups.hpp"
#include "chrootctl/launcher/cleanup.hpp"
#include "test_support.hpp"

namespace chrootctl {
namespace {

namespace cg = launcher::cgroup;
using launcher::Limits;

std::string slurp(const std::string& p) { return test::read_file(p); }

class FakeCgroupFs : public cg::Fs {
 public:
  FakeCgroupFs(std::string root, bool v2) : m_root(std::move(root)), m_v2(v2) {}

  void populate(const std::string& dir, const std::string& controllers) {
    std::vector<std::string> files;
    if (m_v2) {
      files = {"cgroup.procs", "cgroup.subtree_control", "cgroup.events", "cgroup.freeze", "memory.max", "memory.low",
               "memory.peak",  "memory.events",          "cpu.weight",    "cpu.stat",      "pids.max"};
      if (with_swap) files.push_back("memory.swap.max");
      if (with_kill) files.push_back("cgroup.kill");
      test::write_file(dir + "/cgroup.controllers", controllers);
    } else {
      // Each v1 hierarchy has the files of its own controller only.
      files = {"cgroup.procs", "tasks"};
      if (dir.find("/memory/") != std::string::npos) {
        for (const char* f :
             {"memory.limit_in_bytes", "memory.soft_limit_in_bytes", "memory.max_usage_in_bytes", "memory.failcnt", "memory.oom_control"})
          files.push_back(f);
        if (with_swap) files.push_back("memory.memsw.limit_in_bytes");
      }
      if (dir.find("/cpu/") != std::string::npos) files.push_back("cpu.shares");
      if (dir.find("/pids/") != std::string::npos) files.push_back("pids.max");
      if (dir.find("/freezer/") != std::string::npos) files.push_back("freezer.state");
    }
    for (const auto& f : files) test::write_file(dir + "/" + f, "");
  }

  Status make_dir(const std::string& path) override {
    made.push_back(path);
    if (deny_mkdir) return fail_errno(str("mkdir(", quote(path), ", 0755)"), EACCES);
    TRY(cg::Fs::make_dir(path));
    // A new cgroup offers what its parent enabled for its children.
    std::string controllers;
    if (m_v2) {
      auto parent = path.substr(0, path.rfind('/'));
      controllers = slurp(parent + "/cgroup.subtree_control");
    }
    populate(path, controllers);
    return {};
  }
  Status remove_dir(const std::string& path) override {
    removed.push_back(path);
    if (auto procs = read(path + "/cgroup.procs"); procs && !procs->empty()) return fail_errno(str("rmdir(", quote(path), ")"), EBUSY);
    auto dir = sys::open_dir(path);
    if (!dir) return tl::unexpected(dir.error());
    auto entries = sys::read_dir(dir->get());
    if (!entries) return tl::unexpected(entries.error());
    for (const auto& e : *entries)
      if (e.type != DT_DIR) ::unlink((path + "/" + e.name).c_str());
    return cg::Fs::remove_dir(path);
  }
  bool remove_dir_once(const std::string& path) override {
    if (auto procs = read(path + "/cgroup.procs"); procs && !procs->empty()) return false;
    return static_cast<bool>(remove_dir(path));
  }
  Status write(const std::string& path, std::string_view value) override {
    writes.push_back(path.substr(m_root.size()) + "=" + std::string(value));
    const std::string dir = path.substr(0, path.rfind('/'));
    const std::string file = path.substr(path.rfind('/') + 1);
    if (file == "cgroup.subtree_control") {
      if (dir != m_root && !slurp(dir + "/cgroup.procs").empty()) return fail_errno(str("write(", quote(path), ", ", quote(value), ")"), EBUSY);
      std::set<std::string> on;
      for (const auto& w : split(slurp(path), ' '))
        if (!w.empty()) on.insert(w);
      for (const auto& w : split(value, ' ')) {
        if (w.size() < 2) continue;
        if (w[0] == '+') on.insert(w.substr(1));
        if (w[0] == '-') on.erase(w.substr(1));
      }
      test::write_file(path, join(std::vector<std::string>(on.begin(), on.end()), " "));
      return {};
    }
    if (file == "cgroup.procs" && m_v2) {
      // A move: out of every other cgroup, into this one.
      for (const auto& other : all_dirs()) {
        std::string procs;
        for (const auto& l : split(slurp(other + "/cgroup.procs"), '\n'))
          if (!l.empty() && l != value) procs += l + "\n";
        test::write_file(other + "/cgroup.procs", procs);
      }
      test::write_file(path, slurp(path) + std::string(value) + "\n");
      return {};
    }
    if (file == "cgroup.kill") {
      test::write_file(dir + "/cgroup.procs", "");
      return {};
    }
    return cg::Fs::write(path, value);
  }
  Result<std::string> read(const std::string& path) override {
    auto text = TRY(cg::Fs::read(path));
    if (path.ends_with("/cgroup.procs")) {
      // Processes that have died (or are zombies waiting to be reaped) have left the cgroup.
      std::string alive;
      for (const auto& l : split(text, '\n')) {
        if (l.empty()) continue;
        auto stat = test::sh("cut -d' ' -f3 /proc/" + l + "/stat 2>/dev/null").out;
        if (fake_pids.count(l) || (!stat.empty() && stat != "Z\n")) alive += l + "\n";
      }
      return alive;
    }
    return text;
  }
  pid_t self_pid() override { return 4242; }

  std::vector<std::string> all_dirs() {
    std::vector<std::string> out;
    auto r = test::sh("find '" + m_root + "' -type d");
    for (const auto& l : split(r.out, '\n'))
      if (!l.empty()) out.push_back(l);
    return out;
  }

  bool with_swap = true;
  bool with_kill = true;
  bool deny_mkdir = false;
  std::set<std::string> fake_pids{"4242", "4343"};  // pids that exist only in this fake
  std::vector<std::string> made, removed, writes;

 private:
  std::string m_root;
  bool m_v2;
};

Limits all_limits() {
  Limits l;
  l.memory_max = 1ull << 30;
  l.memory_low = 256ull << 20;
  l.swap_max = 0;
  l.cpu_weight = 150;
  l.cpu_shares = 150;
  l.pids_max = 100;
  return l;
}

// ---- v2 ----

class CgroupV2Test : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    cgroot = path("cg");
    test::mkdirs(cgroot);
    layout.v2_mount = cgroot;
  }
  FakeCgroupFs make_fs() {
    FakeCgroupFs fs(cgroot, true);
    fs.populate(cgroot, "cpuset cpu io memory pids");
    return fs;
  }
  std::string cgroot;
  cg::Layout layout;
  std::vector<std::string> notes;
};

TEST_F(CgroupV2Test, RootCallerGetsABaseAtTheRootWithEveryLimitWritten) {
  auto fs = make_fs();
  layout.v2_own = "/";
  auto job = cg::JobCgroup::create(fs, layout, "77.88.0", all_limits(), true, notes);
  ASSERT_TRUE(job) << job.error().what();
  EXPECT_EQ(job->version(), cg::Version::v2);
  EXPECT_TRUE(job->limits_applied());
  EXPECT_TRUE(notes.empty());
  const std::string dir = cgroot + "/chrootctl/77.88.0";
  EXPECT_EQ(job->dirs(), std::vector<std::string>{dir});
  EXPECT_EQ(fs.writes, (std::vector<std::string>{
                           "/cgroup.subtree_control=+cpu +memory +pids",
                           "/chrootctl/cgroup.subtree_control=+cpu +memory +pids",
                           "/chrootctl/77.88.0/memory.max=1073741824",
                           "/chrootctl/77.88.0/memory.low=268435456",
                           "/chrootctl/77.88.0/memory.swap.max=0",
                           "/chrootctl/77.88.0/cpu.weight=150",
                           "/chrootctl/77.88.0/pids.max=100",
                       }));
  EXPECT_EQ(slurp(dir + "/cgroup.controllers"), "cpu memory pids");
  // Torn down: the job directory goes, the shared base stays.
  ASSERT_TRUE(job->destroy(fs));
  EXPECT_FALSE(fs.exists(dir));
  EXPECT_TRUE(fs.exists(cgroot + "/chrootctl"));
}

TEST_F(CgroupV2Test, OnlyMissingControllersAreEnabledAndCpuOnlyWhenAsked) {
  auto fs = make_fs();
  test::write_file(cgroot + "/cgroup.subtree_control", "memory pids");
  Limits l;
  l.memory_max = 64 << 20;
  auto job = cg::JobCgroup::create(fs, layout, "1.2.3", l, true, notes);
  ASSERT_TRUE(job) << job.error().what();
  EXPECT_EQ(fs.writes, (std::vector<std::string>{"/chrootctl/cgroup.subtree_control=+memory +pids", "/chrootctl/1.2.3/memory.max=67108864"}));
}

TEST_F(CgroupV2Test, DelegatedCgroupHoldingOnlyTheLauncherIsUsedAfterMovingIntoALeaf) {
  auto fs = make_fs();
  test::mkdirs(cgroot + "/user.slice/u");
  fs.populate(cgroot + "/user.slice", "cpu memory pids");
  fs.populate(cgroot + "/user.slice/u", "cpu memory pids");
  test::write_file(cgroot + "/user.slice/u/cgroup.procs", "4242\n");
  layout.v2_own = "/user.slice/u";
  Limits l;
  l.pids_max = 10;
  auto job = cg::JobCgroup::create(fs, layout, "5.6.7", l, false, notes);
  ASSERT_TRUE(job) << job.error().what();
  const std::string base = cgroot + "/user.slice/u/chrootctl";
  EXPECT_EQ(job->dirs(), (std::vector<std::string>{base + "/5.6.7", base + "/launcher.5.6.7"}));
  EXPECT_EQ(slurp(base + "/launcher.5.6.7/cgroup.procs"), "4242\n");
  EXPECT_EQ(slurp(cgroot + "/user.slice/u/cgroup.procs"), "");
  EXPECT_EQ(slurp(cgroot + "/user.slice/u/cgroup.subtree_control"), "memory pids");
  EXPECT_EQ(slurp(base + "/5.6.7/pids.max"), "10");
  // The job's directory goes; the launcher's leaf, which the launcher still occupies, is left
  // for cleanup (its name says whose it is).
  ASSERT_TRUE(job->destroy(fs));
  EXPECT_EQ(fs.removed, (std::vector<std::string>{base + "/5.6.7"}));
}

TEST_F(CgroupV2Test, SharedCallerCgroupMeansNoLimitsUnprivilegedAndTheRootPrivileged) {
  auto fs = make_fs();
  test::mkdirs(cgroot + "/user.slice/u");
  fs.populate(cgroot + "/user.slice/u", "cpu memory pids");
  test::write_file(cgroot + "/user.slice/u/cgroup.procs", "4242\n4343\n");
  layout.v2_own = "/user.slice/u";
  auto job = cg::JobCgroup::create(fs, layout, "5.6.7", all_limits(), false, notes);
  ASSERT_TRUE(job) << job.error().what();
  EXPECT_EQ(job->version(), cg::Version::none);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0], "cgroup v2: cannot create job cgroups under " + cgroot + "/user.slice/u (write('" + cgroot +
                          "/user.slice/u/cgroup.subtree_control', '+cpu +memory +pids'): Device or resource busy); it "
                          "must be delegated to you and hold no other process");

  notes.clear();
  auto rooted = cg::JobCgroup::create(fs, layout, "5.6.8", all_limits(), true, notes);
  ASSERT_TRUE(rooted) << rooted.error().what();
  EXPECT_EQ(rooted->version(), cg::Version::v2);
  EXPECT_EQ(rooted->dirs(), std::vector<std::string>{cgroot + "/chrootctl/5.6.8"});
}

TEST_F(CgroupV2Test, MissingSwapAccountingIsANoteAndLimitsAreNotAllApplied) {
  auto fs = make_fs();
  fs.with_swap = false;
  auto job = cg::JobCgroup::create(fs, layout, "1.1.1", all_limits(), true, notes);
  ASSERT_TRUE(job) << job.error().what();
  EXPECT_FALSE(job->limits_applied());
  EXPECT_EQ(notes, std::vector<std::string>{"cgroup v2: memory.swap.max is missing (swap accounting is off); swap is not limited"});
}

TEST_F(CgroupV2Test, AccountingIsReadFromPeakEventsAndTheCgroupIsKilledThenRemoved) {
  auto fs = make_fs();
  auto job = cg::JobCgroup::create(fs, layout, "9.9.9", all_limits(), true, notes);
  ASSERT_TRUE(job) << job.error().what();
  const std::string dir = cgroot + "/chrootctl/9.9.9";
  test::write_file(dir + "/memory.peak", "12345\n");
  test::write_file(dir + "/memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n");
  auto acc = job->read_accounting(fs);
  EXPECT_EQ(acc.peak_memory, 12345u);
  EXPECT_EQ(acc.oom_kills, 1u);
  EXPECT_TRUE(acc.memory_limit_hit);
  test::write_file(dir + "/cgroup.procs", "4343\n");
  fs.writes.clear();
  ASSERT_TRUE(job->destroy(fs));
  EXPECT_EQ(fs.writes, std::vector<std::string>{"/chrootctl/9.9.9/cgroup.kill=1"});
  EXPECT_FALSE(fs.exists(dir));
}

TEST_F(CgroupV2Test, WithoutCgroupKillEveryProcessIsKilledWhileFrozen) {
  auto fs = make_fs();
  fs.with_kill = false;
  auto job = cg::JobCgroup::create(fs, layout, "9.9.8", Limits{}, true, notes);
  ASSERT_TRUE(job) << job.error().what();
  const pid_t child = ::fork();
  if (child == 0) {
    ::pause();
    ::_exit(0);
  }
  const std::string dir = cgroot + "/chrootctl/9.9.8";
  test::write_file(dir + "/cgroup.procs", std::to_string(child) + "\n");
  fs.writes.clear();
  ASSERT_TRUE(job->destroy(fs));
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  ASSERT_GE(fs.writes.size(), 2u);
  EXPECT_EQ(fs.writes[0], "/chrootctl/9.9.8/cgroup.freeze=1");
  EXPECT_EQ(fs.writes[1], "/chrootctl/9.9.8/cgroup.freeze=0");
  EXPECT_FALSE(fs.exists(dir));
}

TEST_F(CgroupV2Test, InitJoinsThroughCgroupProcsOrIsClonedIntoTheDirectory) {
  auto fs = make_fs();
  auto job = cg::JobCgroup::create(fs, layout, "3.3.3", Limits{}, true, notes);
  ASSERT_TRUE(job) << job.error().what();
  auto procs = job->open_procs();
  ASSERT_TRUE(procs) << procs.error().what();
  ASSERT_EQ(procs->size(), 1u);
  EXPECT_EQ(*sys::readlink_at(AT_FDCWD, "/proc/self/fd/" + std::to_string((*procs)[0].get())), cgroot + "/chrootctl/3.3.3/cgroup.procs");
  auto dir = job->open_dir();
  ASSERT_TRUE(dir) << dir.error().what();
  EXPECT_EQ(*sys::readlink_at(AT_FDCWD, "/proc/self/fd/" + std::to_string(dir->get())), cgroot + "/chrootctl/3.3.3");
  ASSERT_TRUE(job->destroy(fs));
}

TEST_F(CgroupV2Test, CandidateDirectoriesCoverTheCallersCgroupAndTheRoot) {
  layout.v2_own = "/a/b";
  EXPECT_EQ(cg::JobCgroup::candidate_dirs(layout, Limits{}, "1.2.3"),
            (std::vector<std::string>{cgroot + "/a/b/chrootctl/1.2.3", cgroot + "/a/b/chrootctl/launcher.1.2.3", cgroot + "/chrootctl/1.2.3"}));
}

// ---- v1 ----

class CgroupV1Test : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    for (const char* c : {"memory", "pids", "freezer", "cpu"}) {
      test::mkdirs(path(std::string("v1/") + c));
      layout.v1_mounts[c] = path(std::string("v1/") + c);
    }
  }
  cg::Layout layout;
  std::vector<std::string> notes;
};

TEST_F(CgroupV1Test, OneDirectoryPerHierarchyWithLimitsInEach) {
  FakeCgroupFs fs(path("v1"), false);
  auto job = cg::JobCgroup::create(fs, layout, "10.20.1", all_limits(), true, notes);
  ASSERT_TRUE(job) << job.error().what();
  EXPECT_EQ(job->version(), cg::Version::v1);
  EXPECT_TRUE(job->limits_applied());
  EXPECT_EQ(job->dirs(), (std::vector<std::string>{path("v1/freezer/chrootctl/10.20.1"), path("v1/cpu/chrootctl/10.20.1"),
                                                   path("v1/memory/chrootctl/10.20.1"), path("v1/pids/chrootctl/10.20.1")}));
  EXPECT_EQ(fs.writes, (std::vector<std::string>{
                           "/memory/chrootctl/10.20.1/memory.limit_in_bytes=1073741824",
                           "/memory/chrootctl/10.20.1/memory.memsw.limit_in_bytes=1073741824",
                           "/memory/chrootctl/10.20.1/memory.soft_limit_in_bytes=268435456",
                           "/cpu/chrootctl/10.20.1/cpu.shares=150",
                           "/pids/chrootctl/10.20.1/pids.max=100",
                       }));
  // Init joins through "tasks" in each hierarchy (a thread moving itself needs no RCU grace period).
  auto procs = job->open_procs();
  ASSERT_TRUE(procs);
  ASSERT_EQ(procs->size(), 4u);
  EXPECT_EQ(*sys::readlink_at(AT_FDCWD, "/proc/self/fd/" + std::to_string((*procs)[2].get())), path("v1/memory/chrootctl/10.20.1/tasks"));
  ASSERT_TRUE(job->destroy(fs));
  EXPECT_EQ(fs.removed, job->dirs());
  for (const char* c : {"memory", "pids", "freezer", "cpu"}) EXPECT_FALSE(fs.exists(path(std::string("v1/") + c + "/chrootctl/10.20.1")));
}

TEST_F(CgroupV1Test, JobsStayInsideTheCallersOwnCgroupAndItsBaseGoesWithTheLastJob) {
  // The caller runs in a batch system's cgroup in the memory hierarchy (a slot with its own
  // limit): the job's cgroup goes below it, so that limit, its accounting and its freezer
  // keep covering the job.
  test::mkdirs(path("v1/memory/slot1"));
  layout.v1_own["memory"] = "/slot1";
  layout.v1_own["pids"] = "/";
  FakeCgroupFs fs(path("v1"), false);
  auto job = cg::JobCgroup::create(fs, layout, "10.20.2", all_limits(), true, notes);
  ASSERT_TRUE(job) << job.error().what();
  EXPECT_EQ(job->dirs(), (std::vector<std::string>{path("v1/freezer/chrootctl/10.20.2"), path("v1/cpu/chrootctl/10.20.2"),
                                                   path("v1/memory/slot1/chrootctl/10.20.2"), path("v1/pids/chrootctl/10.20.2")}));
  EXPECT_EQ(cg::JobCgroup::candidate_dirs(layout, all_limits(), "10.20.2"), job->dirs());
  ASSERT_TRUE(job->destroy(fs));
  EXPECT_FALSE(fs.exists(path("v1/memory/slot1/chrootctl"))) << "an empty base inside another cgroup is removed";
  EXPECT_TRUE(fs.exists(path("v1/memory/slot1")));
  EXPECT_TRUE(fs.exists(path("v1/pids/chrootctl"))) << "a base at a hierarchy's root is kept";
}

TEST(CgroupLayout, TheCallersV1CgroupsAreReadPerController) {
  const std::string mi =
      "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct\n"
      "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
      "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n";
  auto l = cg::parse_layout(mi,
                            "9:name=systemd:/user.slice\n4:memory:/condor/slot1_1\n2:cpu,cpuacct:/\n"
                            "7:pids:/gone (deleted)\n0::/\n");
  EXPECT_EQ(l.v1_own, (std::map<std::string, std::string>{{"cpu", "/"}, {"cpuacct", "/"}, {"memory", "/condor/slot1_1"}, {"pids", "/"}}));
}

TEST_F(CgroupV1Test, SwapWithoutMemswIsANote) {
  FakeCgroupFs fs(path("v1"), false);
  fs.with_swap = false;
  Limits l;
  l.memory_max = 1 << 20;
  l.swap_max = 0;
  auto job = cg::JobCgroup::create(fs, layout, "1.1.1", l, true, notes);
  ASSERT_TRUE(job) << job.error().what();
  EXPECT_FALSE(job->limits_applied());
  EXPECT_EQ(notes, std::vector<std::string>{"cgroup v1: memory.memsw.limit_in_bytes is missing (boot with swapaccount=1); swap is not limited"});
  ASSERT_TRUE(job->destroy(fs));
}

TEST_F(CgroupV1Test, EveryHierarchyWithOrWithoutLimits) {
  // A plain launch is in a cgroup of its own in every hierarchy too: it stays in none of the
  // caller's, and its cgroup namespace is rooted at its own cgroup in each.
  FakeCgroupFs fs(path("v1"), false);
  const std::vector<std::string> all{path("v1/freezer/chrootctl/5.5.1"), path("v1/cpu/chrootctl/5.5.1"), path("v1/memory/chrootctl/5.5.1"),
                                     path("v1/pids/chrootctl/5.5.1")};
  auto plain = cg::JobCgroup::create(fs, layout, "5.5.1", Limits{}, true, notes);
  ASSERT_TRUE(plain) << plain.error().what();
  EXPECT_EQ(plain->dirs(), all);
  EXPECT_EQ(cg::JobCgroup::candidate_dirs(layout, Limits{}, "5.5.1"), plain->dirs());
  EXPECT_TRUE(notes.empty());
  EXPECT_TRUE(fs.writes.empty());
  // Named hierarchies without a controller (systemd's) are not used.
  test::mkdirs(path("v1/systemd"));
  layout.v1_mounts.erase("freezer");
  auto no_freezer = cg::JobCgroup::create(fs, layout, "5.5.4", Limits{}, true, notes);
  ASSERT_TRUE(no_freezer) << no_freezer.error().what();
  EXPECT_EQ(no_freezer->dirs(),
            (std::vector<std::string>{path("v1/cpu/chrootctl/5.5.4"), path("v1/memory/chrootctl/5.5.4"), path("v1/pids/chrootctl/5.5.4")}));
  for (auto* job : {&*plain, &*no_freezer}) ASSERT_TRUE(job->destroy(fs));
}

TEST_F(CgroupV1Test, ACpusetCgroupGetsItsParentsCpusAndMemoryNodes) {
  // A new cpuset cgroup has none, and no task can join it until it has both.
  test::mkdirs(path("v1/cpuset"));
  layout.v1_mounts["cpuset"] = path("v1/cpuset");
  test::write_file(path("v1/cpuset/cpuset.cpus"), "0-3\n");
  test::write_file(path("v1/cpuset/cpuset.mems"), "0\n");
  class CpusetFs : public FakeCgroupFs {
   public:
    using FakeCgroupFs::FakeCgroupFs;
    Status make_dir(const std::string& p) override {
      TRY(FakeCgroupFs::make_dir(p));
      if (p.find("/cpuset/") != std::string::npos)
        for (const char* f : {"/cpuset.cpus", "/cpuset.mems"}) test::write_file(p + f, "\n");
      return {};
    }
  } fs(path("v1"), false);
  auto job = cg::JobCgroup::create(fs, layout, "6.6.1", Limits{}, true, notes);
  ASSERT_TRUE(job) << job.error().what();
  EXPECT_EQ(test::read_file(path("v1/cpuset/chrootctl/cpuset.cpus")), "0-3");
  EXPECT_EQ(test::read_file(path("v1/cpuset/chrootctl/6.6.1/cpuset.cpus")), "0-3");
  EXPECT_EQ(test::read_file(path("v1/cpuset/chrootctl/6.6.1/cpuset.mems")), "0");
  ASSERT_TRUE(job->destroy(fs));
}

TEST_F(CgroupV1Test, TheLimitsAreReadBackAndAChangeShows) {
  FakeCgroupFs fs(path("v1"), false);
  auto job = cg::JobCgroup::create(fs, layout, "7.7.1", all_limits(), true, notes);
  ASSERT_TRUE(job) << job.error().what();
  // The fake's files hold what was written; memsw is memory plus swap.
  launcher::LimitValues want;
  want.memory_max = 1073741824;
  want.memory_low = 268435456;
  want.swap_max = 0;
  want.cpu_shares = 150;
  want.pids_max = 100;
  EXPECT_EQ(job->limits_set(), want);
  EXPECT_EQ(job->read_limits(fs), want);
  test::write_file(path("v1/pids/chrootctl/7.7.1/pids.max"), "max\n");
  auto changed = job->read_limits(fs);
  EXPECT_FALSE(changed.pids_max);
  EXPECT_NE(changed, job->limits_set());
  ASSERT_TRUE(job->destroy(fs));
}

TEST_F(CgroupV1Test, AccountingFromMaxUsageOomControlAndFailcnt) {
  FakeCgroupFs fs(path("v1"), false);
  Limits accounting;
  accounting.memory_accounting = true;
  auto job = cg::JobCgroup::create(fs, layout, "2.2.2", accounting, true, notes);
  ASSERT_TRUE(job) << job.error().what();
  const std::string mem = path("v1/memory/chrootctl/2.2.2");
  test::write_file(mem + "/memory.max_usage_in_bytes", "99999\n");
  test::write_file(mem + "/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
  test::write_file(mem + "/memory.failcnt", "5\n");
  auto acc = job->read_accounting(fs);
  EXPECT_EQ(acc.peak_memory, 99999u);
  EXPECT_EQ(acc.oom_kills, 2u);
  EXPECT_TRUE(acc.memory_limit_hit);
  ASSERT_TRUE(job->destroy(fs));
}

TEST_F(CgroupV1Test, UnprivilegedCallerWithoutAccessRunsWithoutACgroup) {
  FakeCgroupFs fs(path("v1"), false);
  fs.deny_mkdir = true;
  auto job = cg::JobCgroup::create(fs, layout, "3.3.3", all_limits(), false, notes);
  ASSERT_TRUE(job) << job.error().what();
  EXPECT_EQ(job->version(), cg::Version::none);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0], "cgroup v1 is not delegated to unprivileged users (mkdir('" + path("v1/freezer/chrootctl") + "', 0755): Permission denied)");
  // Privileged, the same failure is an error.
  notes.clear();
  auto err = cg::JobCgroup::create(fs, layout, "3.3.4", all_limits(), true, notes);
  ASSERT_FALSE(err);
  EXPECT_EQ(err.error().what(), "mkdir('" + path("v1/freezer/chrootctl") + "', 0755): Permission denied");
}

TEST_F(CgroupV1Test, LeftoverProcessesAreKilledThroughTheFreezer) {
  FakeCgroupFs fs(path("v1"), false);
  auto job = cg::JobCgroup::create(fs, layout, "4.4.4", Limits{}, true, notes);
  ASSERT_TRUE(job) << job.error().what();
  const pid_t child = ::fork();
  if (child == 0) {
    ::pause();
    ::_exit(0);
  }
  test::write_file(path("v1/freezer/chrootctl/4.4.4/cgroup.procs"), std::to_string(child) + "\n");
  fs.writes.clear();
  ASSERT_TRUE(job->destroy(fs));
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  ASSERT_GE(fs.writes.size(), 2u);
  EXPECT_EQ(fs.writes[0], "/freezer/chrootctl/4.4.4/freezer.state=FROZEN");
  EXPECT_EQ(fs.writes[1], "/freezer/chrootctl/4.4.4/freezer.state=THAWED");
}

// ---- detection ----

TEST(CgroupLayout, HybridMachineHasV1ControllersAndAnEmptyUnifiedMount) {
  const std::string mi =
      "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
      "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct\n"
      "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:7 - cgroup cgroup rw,memory\n"
      "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
      "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n"
      "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
  auto l = cg::parse_layout(mi, "4:memory:/x\n0::/\n");
  EXPECT_EQ(l.v2_mount, "/sys/fs/cgroup/unified");
  EXPECT_EQ(l.v2_own, "/");
  EXPECT_EQ(l.v1_mounts, (std::map<std::string, std::string>{{"cpu", "/sys/fs/cgroup/cpu,cpuacct"},
                                                             {"cpuacct", "/sys/fs/cgroup/cpu,cpuacct"},
                                                             {"memory", "/sys/fs/cgroup/memory"},
                                                             {"pids", "/sys/fs/cgroup/pids"}}));
}

TEST(CgroupLayout, UnifiedMachineGivesTheCallersCgroup) {
  auto l = cg::parse_layout("25 1 0:22 / /sys/fs/cgroup rw,nosuid,nodev - cgroup2 cgroup2 rw,nsdelegate\n",
                            "0::/user.slice/user-1000.slice/session-3.scope\n");
  EXPECT_EQ(l.v2_mount, "/sys/fs/cgroup");
  EXPECT_EQ(l.v2_own, "/user.slice/user-1000.slice/session-3.scope");
  EXPECT_TRUE(l.v1_mounts.empty());
}

TEST(CgroupLayout, NoUsableHierarchyIsANote) {
  cg::Layout l;
  cg::Fs fs;
  std::vector<std::string> notes;
  auto job = cg::JobCgroup::create(fs, l, "1.1.1", Limits{}, true, notes);
  ASSERT_TRUE(job);
  EXPECT_EQ(job->version(), cg::Version::none);
  EXPECT_EQ(notes, std::vector<std::string>{"no cgroup hierarchy for jobs was found (neither v2 with memory nor any v1 controller)"});
}

// ---- where launches put job cgroups (what `chrootctl doctor` reports) ----

TEST_F(CgroupV2Test, BaseParentsAreTheCallersCgroupThenTheRootForRoot) {
  auto fs = make_fs();
  test::mkdirs(cgroot + "/slot");
  layout.v2_own = "/slot";
  EXPECT_EQ(cg::launch_version(fs, layout), cg::Version::v2);
  EXPECT_EQ(cg::v2_controllers(fs, layout), (std::set<std::string>{"cpuset", "cpu", "io", "memory", "pids"}));
  EXPECT_EQ(cg::base_parents(fs, layout, true), (std::vector<std::string>{cgroot + "/slot", cgroot}));
  EXPECT_EQ(cg::base_parents(fs, layout, false), std::vector<std::string>{cgroot + "/slot"});
  layout.v2_own = "/";
  EXPECT_EQ(cg::base_parents(fs, layout, true), std::vector<std::string>{cgroot});
  EXPECT_TRUE(cg::base_parents(fs, layout, false).empty());
}

TEST_F(CgroupV2Test, WithoutTheMemoryControllerV1IsUsedIfMountedElseNone) {
  FakeCgroupFs fs(cgroot, true);
  fs.populate(cgroot, "cpu pids");
  EXPECT_EQ(cg::launch_version(fs, layout), cg::Version::none);
  EXPECT_TRUE(cg::base_parents(fs, layout, true).empty());
  test::mkdirs(path("v1/freezer"));
  layout.v1_mounts["freezer"] = path("v1/freezer");
  EXPECT_EQ(cg::launch_version(fs, layout), cg::Version::v1);
  EXPECT_EQ(cg::base_parents(fs, layout, true), std::vector<std::string>{path("v1/freezer")});
}

TEST_F(CgroupV1Test, BaseParentsAreEachHierarchyFreezerFirstInsideTheCallersCgroup) {
  test::mkdirs(path("v1/memory/slot1"));
  FakeCgroupFs fs(path("v1"), false);
  layout.v1_own["memory"] = "/slot1";
  EXPECT_EQ(cg::launch_version(fs, layout), cg::Version::v1);
  EXPECT_EQ(cg::base_parents(fs, layout, false),
            (std::vector<std::string>{path("v1/freezer"), path("v1/cpu"), path("v1/memory/slot1"), path("v1/pids")}));
  // What create uses for the same layout.
  auto job = cg::JobCgroup::create(fs, layout, "10.20.9", {}, true, notes);
  ASSERT_TRUE(job) << job.error().what();
  EXPECT_EQ(job->dirs(), (std::vector<std::string>{path("v1/freezer/chrootctl/10.20.9"), path("v1/cpu/chrootctl/10.20.9"),
                                                   path("v1/memory/slot1/chrootctl/10.20.9"), path("v1/pids/chrootctl/10.20.9")}));
  ASSERT_TRUE(job->destroy(fs));
}

}  // namespace
}  // namespace chrootctl
