// The pure planner: options in, LaunchPlan out, every rule and every refusal.
#include "chrootctl/launcher/launch.hpp"
#include "test_support.hpp"

namespace chrootctl {
namespace {

using namespace launcher;

class PlanTest : public ::testing::Test {
 protected:
  PlanTest() {
    facts.uid = 0;
    facts.euid = 0;
    facts.gid = 0;
    facts.cwd = "/home/admin";
    facts.environ = {"LANG=C.UTF-8", "_CONDOR_SCRATCH_DIR=/scratch/job1", "EMPTY="};
    creds.uid = 1000;
    creds.gid = 1000;
    creds.groups = {1000, 27};
    creds.name = "alice";
    creds.home = "/home/alice";
    opts.root = "/srv/images/el9/root";
    opts.sandbox = "/scratch/job1";
    opts.argv = {"/bin/sh", "-c", "true"};
  }
  Result<LaunchPlan> plan() { return plan_launch(opts, facts, creds); }
  std::string error() {
    auto p = plan();
    return p ? std::string("(no error)") : p.error().what();
  }
  RunOptions opts;
  HostFacts facts;
  Credentials creds;
};

TEST_F(PlanTest, DefaultLayoutSandboxScratchDirsProcAndDevParentsFirst) {
  auto p = plan();
  ASSERT_TRUE(p) << p.error().what();
  EXPECT_EQ(p->mode, LaunchMode::job);
  EXPECT_TRUE(p->user_namespace) << "every job runs in a user namespace of its own";
  EXPECT_FALSE(p->unprivileged);
  EXPECT_FALSE(p->new_net);
  EXPECT_TRUE(p->root_read_only);
  EXPECT_TRUE(p->drop_privileges);
  EXPECT_EQ(p->root, "/srv/images/el9/root");
  EXPECT_EQ(p->cwd, "/scratch/job1");
  EXPECT_EQ(p->sources, (std::vector<HostSource>{{"/scratch/job1", true, ""}, {"/scratch/job1", false, "tmp"}, {"/scratch/job1", false, "var/tmp"}}));
  using K = MountOp::Kind;
  EXPECT_EQ(p->mounts, (std::vector<MountOp>{{K::proc, "/proc", 0, false, false},
                                             {K::dev, "/dev", 0, false, false},
                                             {K::bind, "/tmp", 1, false, false},
                                             {K::bind, "/var/tmp", 2, false, false},
                                             {K::bind, "/scratch/job1", 0, false, false}}));
  EXPECT_EQ(p->creds.uid, 1000u);
  EXPECT_EQ(p->argv, opts.argv);
}

TEST_F(PlanTest, SandboxBelowAScratchDirIsMountedAfterIt) {
  opts.sandbox = "/tmp/condor/execute/dir_1";
  opts.scratch_path = "/scratch";
  auto p = plan();
  ASSERT_TRUE(p) << p.error().what();
  std::vector<std::string> order;
  for (const auto& m : p->mounts) order.push_back(m.target);
  EXPECT_EQ(order, (std::vector<std::string>{"/proc", "/dev", "/tmp", "/scratch", "/var/tmp", "/tmp/condor/execute/dir_1"}));
  EXPECT_EQ(p->mounts[3].source, 0u);
}

TEST_F(PlanTest, BindsAreRecursiveNosuidNodevAndReadOnlyOnRequest) {
  opts.binds = {{"/cvmfs", "/cvmfs", true}, {"data", "/data//in/./x", false}};
  auto p = plan();
  ASSERT_TRUE(p) << p.error().what();
  ASSERT_EQ(p->sources.size(), 5u);
  EXPECT_EQ(p->sources[3].path, "/cvmfs");
  EXPECT_EQ(p->sources[4].path, "/home/admin/data");
  const auto& last = p->mounts.back();
  EXPECT_EQ(last.target, "/data/in/x");
  EXPECT_TRUE(last.recursive);
  EXPECT_FALSE(last.read_only);
  bool found = false;
  for (const auto& m : p->mounts)
    if (m.target == "/cvmfs") {
      found = true;
      EXPECT_TRUE(m.read_only);
      EXPECT_TRUE(m.recursive);
    }
  EXPECT_TRUE(found);
}

TEST_F(PlanTest, EnvironmentIsCleanThenKeptThenSet) {
  opts.keep_env = {"_CONDOR_SCRATCH_DIR", "NOT_SET", "EMPTY"};
  opts.env = {{"OMP_NUM_THREADS", "4"}, {"TMPDIR", "/scratch/job1/tmp"}};
  auto p = plan();
  ASSERT_TRUE(p) << p.error().what();
  EXPECT_EQ(p->env, (std::vector<std::string>{
                        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                        "HOME=/home/alice",
                        "USER=alice",
                        "LOGNAME=alice",
                        "TMPDIR=/scratch/job1/tmp",
                        "TMP=/tmp",
                        "TEMP=/tmp",
                        "_CONDOR_SCRATCH_DIR=/scratch/job1",
                        "EMPTY=",
                        "OMP_NUM_THREADS=4",
                    }));
}

TEST_F(PlanTest, LimitsSwapDefaultsToZeroAndCpusGiveWeightAndShares) {
  opts.memory = 2ull << 30;
  opts.memory_low = 1ull << 30;
  opts.cpus_centi = 150;
  opts.pids = 512;
  auto p = plan();
  ASSERT_TRUE(p) << p.error().what();
  Limits want;
  want.memory_max = 2ull << 30;
  want.memory_low = 1ull << 30;
  want.swap_max = 0;
  want.cpu_weight = 150;
  want.cpu_shares = 150;
  want.pids_max = 512;
  EXPECT_EQ(p->limits, want);

  opts.swap = 512ull << 20;
  opts.cpus_centi = 1;  // --cpus 0.01: the smallest weight, and shares' minimum of 2
  p = plan();
  ASSERT_TRUE(p);
  EXPECT_EQ(p->limits.swap_max, 512ull << 20);
  EXPECT_EQ(p->limits.cpu_weight, 1u);
  EXPECT_EQ(p->limits.cpu_shares, 2u);
  opts.cpus_centi = 25600;  // 256 CPUs: v2 weight is capped at 10000
  p = plan();
  ASSERT_TRUE(p);
  EXPECT_EQ(p->limits.cpu_weight, 10000u);
  EXPECT_EQ(p->limits.cpu_shares, 25600u);
}

TEST_F(PlanTest, NoLimitsMeansNoSwapLimitEither) {
  auto p = plan();
  ASSERT_TRUE(p);
  EXPECT_EQ(p->limits, Limits{});
  EXPECT_FALSE(p->limits.any());
  // --status-json asks for the memory accounting (peak, OOM kills), not for a limit.
  opts.status_json = "/tmp/status.json";
  p = plan();
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->limits.memory_accounting);
  EXPECT_FALSE(p->limits.any());
}

TEST_F(PlanTest, UnprivilegedWhenNotRoot) {
  facts.euid = 1000;
  facts.uid = 1000;
  facts.gid = 100;
  auto p = plan();
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->user_namespace);
  EXPECT_TRUE(p->unprivileged);
  EXPECT_EQ(p->caller_uid, 1000u);
  EXPECT_EQ(p->caller_gid, 100u);
}

TEST_F(PlanTest, TheJobIdRangeComesFromTheOptions) {
  EXPECT_EQ(plan()->job_ids, IdRange{});
  opts.job_ids = IdRange{200000, 65536 * 4};
  EXPECT_EQ(plan()->job_ids, (IdRange{200000, 65536 * 4}));
}

TEST_F(PlanTest, NetNoneAsksForANetworkNamespace) {
  opts.net = NetMode::none;
  auto p = plan();
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->new_net);
}

TEST_F(PlanTest, RelativeSandboxIsTakenFromTheCwd) {
  opts.sandbox = "jobs/./j1/";
  auto p = plan();
  ASSERT_TRUE(p) << p.error().what();
  EXPECT_EQ(p->cwd, "/home/admin/jobs/j1");
}

TEST_F(PlanTest, RefusalsAreCollectedAndReportedTogether) {
  opts.binds = {{"/a", "relative", false}, {"/b", "/x/../etc", false}, {"/c", "/proc/sys", false}, {"/d", "/tmp", false}};
  opts.swap = 1;
  opts.argv.clear();
  EXPECT_EQ(error(),
            "no command given (put it after '--'); --bind target 'relative' must be an absolute path; --bind target "
            "'/x/../etc' must not contain '..'; --bind target /proc/sys is inside /proc or /dev, which chrootctl "
            "provides; --bind target /tmp is mounted twice; --swap needs --memory (swap is limited on top of memory)");
}

TEST_F(PlanTest, MoreRefusals) {
  opts.sandbox = "/";
  EXPECT_EQ(error(), "--sandbox must not be '/'");
  opts.sandbox = "/s";
  opts.scratch_path = "/s";
  EXPECT_EQ(error(), "--scratch-path /s is mounted twice");
  opts.scratch_path.reset();
  opts.memory = 1 << 20;
  opts.memory_low = 2 << 20;
  EXPECT_EQ(error(), "--memory-low must not exceed --memory");
  opts.memory_low.reset();
  opts.pids = 0;
  EXPECT_EQ(error(), "--pids must be more than 0");
  opts.pids.reset();
  opts.env = {{"A=B", "c"}};
  EXPECT_EQ(error(), "--env: invalid variable name 'A=B'");
  opts.env.clear();
  opts.mount_under_scratch = {"/dev/shm"};
  EXPECT_EQ(error(), "--mount-under-scratch directory /dev/shm is inside /proc or /dev, which chrootctl provides");
  opts.mount_under_scratch.clear();
  opts.root.clear();
  opts.sandbox.clear();
  EXPECT_EQ(error(), "no root given (--root DIR or an image name); no sandbox given (--sandbox DIR)");
}

TEST(NormalizeInnerPath, CollapsesAndRefuses) {
  EXPECT_EQ(*normalize_inner_path("/a//b/./c/", "x"), "/a/b/c");
  EXPECT_EQ(*normalize_inner_path("/", "x"), "/");
  EXPECT_EQ(normalize_inner_path("a/b", "--bind target").error().what(), "--bind target 'a/b' must be an absolute path");
  EXPECT_EQ(normalize_inner_path("/a/../b", "--bind target").error().what(), "--bind target '/a/../b' must not contain '..'");
  EXPECT_EQ(normalize_inner_path(std::string("/a\0b", 4), "p").error().what(), "p contains a NUL byte");
}

TEST(ResolveJobUser, RootMustBeAskedForByName) {
  HostFacts f;
  f.uid = 0;
  f.euid = 0;
  auto c = resolve_job_user(std::nullopt, f, false);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().what(), "the job would run as root: pass --user USER (or --user root to run it as root on purpose)");
  c = resolve_job_user(std::string("root"), f, false);
  ASSERT_TRUE(c) << c.error().what();
  EXPECT_EQ(c->uid, 0u);
  EXPECT_EQ(c->name, "root");
}

TEST(ResolveJobUser, NamesAndUidsComeFromTheHostDatabase) {
  HostFacts f;
  auto c = resolve_job_user(std::string("nobody"), f, false);
  ASSERT_TRUE(c) << c.error().what();
  EXPECT_EQ(c->uid, 65534u);
  EXPECT_EQ(c->gid, 65534u);
  EXPECT_EQ(c->groups, std::vector<gid_t>{65534});
  auto by_uid = resolve_job_user(std::string("65534"), f, false);
  ASSERT_TRUE(by_uid);
  EXPECT_EQ(by_uid->name, "nobody");
  auto missing = resolve_job_user(std::string("no-such-user-xyz"), f, false);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().what(), "--user 'no-such-user-xyz': no such user in the host's user database");
}

TEST(ResolveJobUser, TheCallerKeepsItsOwnGroupsAndOthersGetTheDatabases) {
  HostFacts f;
  f.uid = 0;
  f.euid = 0;
  f.gid = 0;
  f.groups = {4242, 4343};
  // A job as root has no host groups at all: its ids are a block of its own.
  auto self = resolve_job_user(std::string("root"), f, false);
  ASSERT_TRUE(self) << self.error().what();
  EXPECT_TRUE(self->groups.empty());
  auto other = resolve_job_user(std::string("nobody"), f, false);
  ASSERT_TRUE(other) << other.error().what();
  EXPECT_EQ(other->groups, std::vector<gid_t>{65534});
  // Same uid, another primary group: not the caller's identity, so the database decides.
  f.uid = 65534;
  f.gid = 4242;
  auto regrouped = resolve_job_user(std::string("nobody"), f, false);
  ASSERT_TRUE(regrouped) << regrouped.error().what();
  EXPECT_EQ(regrouped->groups, std::vector<gid_t>{65534});
  // A setuid-root launcher started by nobody, running the job as that caller.
  HostFacts n;
  n.uid = 65534;
  n.euid = 0;
  n.gid = 65534;
  n.groups = {65534, 4242};
  auto caller = resolve_job_user(std::nullopt, n, false);
  ASSERT_TRUE(caller) << caller.error().what();
  EXPECT_EQ(caller->groups, (std::vector<gid_t>{65534, 4242}));
}

TEST(ResolveJobUser, UnprivilegedRunsAsTheCallerOnly) {
  HostFacts f;
  f.uid = 65534;
  f.euid = 65534;
  f.gid = 65534;
  auto c = resolve_job_user(std::nullopt, f, true);
  ASSERT_TRUE(c) << c.error().what();
  EXPECT_EQ(c->uid, 65534u);
  EXPECT_EQ(c->name, "nobody");
  EXPECT_TRUE(resolve_job_user(std::string("nobody"), f, true));
  auto other = resolve_job_user(std::string("root"), f, true);
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().what(), "--user 'root': an unprivileged launch runs the job as the caller (uid 65534)");
}

TEST(OutcomeExitStatus, CodesFollowTheShellConvention) {
  Outcome o;
  o.kind = Outcome::Kind::exited;
  o.code = 3;
  EXPECT_EQ(o.exit_status(), 3);
  o.kind = Outcome::Kind::signaled;
  o.code = 15;
  EXPECT_EQ(o.exit_status(), 143);
  o.kind = Outcome::Kind::setup_failed;
  EXPECT_EQ(o.exit_status(), 125);
  o.kind = Outcome::Kind::not_executable;
  EXPECT_EQ(o.exit_status(), 126);
  o.kind = Outcome::Kind::not_found;
  EXPECT_EQ(o.exit_status(), 127);
}

TEST(StatusJson, RecordsOutcomeAndAccounting) {
  Outcome o;
  o.kind = Outcome::Kind::signaled;
  o.code = 9;
  o.wall_seconds = 1.5;
  o.cpu_user_seconds = 0.25;
  o.cpu_system_seconds = 0.125;
  o.max_rss_bytes = 4096;
  o.peak_memory_bytes = 1 << 20;
  o.memory_limit_bytes = 1 << 20;
  o.memory_limit_hit = true;
  o.oom_kills = 1;
  o.cgroup = "v1";
  o.limits_applied = true;
  o.seccomp_policy = "default";
  o.seccomp_digest = std::string(64, 'a');
  EXPECT_EQ(status_json(o),
            "{\n"
            "  \"version\": 1,\n"
            "  \"outcome\": \"signaled\",\n"
            "  \"exit_status\": 137,\n"
            "  \"exit_code\": null,\n"
            "  \"signal\": 9,\n"
            "  \"signal_name\": \"SIGKILL\",\n"
            "  \"error\": null,\n"
            "  \"wall_seconds\": 1.5,\n"
            "  \"cpu_user_seconds\": 0.25,\n"
            "  \"cpu_system_seconds\": 0.125,\n"
            "  \"max_rss_bytes\": 4096,\n"
            "  \"peak_memory_bytes\": 1048576,\n"
            "  \"memory_limit_bytes\": 1048576,\n"
            "  \"memory_limit_hit\": true,\n"
            "  \"oom_kills\": 1,\n"
            "  \"cgroup\": \"v1\",\n"
            "  \"limits_applied\": true,\n"
            "  \"shm_bytes\": null,\n"
            "  \"effective_limits\": null,\n"
            "  \"limits_changed\": false,\n"
            "  \"user_namespace\": null,\n"
            "  \"sealed\": null,\n"
            "  \"seccomp_policy\": \"default\",\n"
            "  \"seccomp_digest\": \"" +
                std::string(64, 'a') +
                "\"\n"
                "}\n");
  // The limits read back at the end, and the job's user namespace.
  o.effective_limits = LimitValues{};
  o.effective_limits->memory_max = 1 << 20;
  o.effective_limits->pids_max = 1;
  o.limits_changed = true;
  o.id_mode = "mapped";
  o.uid_map = "0 1879048192 65536\n";
  o.gid_map = "0 1879048192 65536\n";
  o.id_block = 0;
  const auto with_limits = status_json(o);
  EXPECT_NE(with_limits.find("  \"effective_limits\": {\n"
                             "    \"memory_max_bytes\": 1048576,\n"
                             "    \"memory_low_bytes\": null,\n"
                             "    \"swap_max_bytes\": null,\n"
                             "    \"cpu_weight\": null,\n"
                             "    \"cpu_shares\": null,\n"
                             "    \"pids_max\": 1\n"
                             "  },\n"
                             "  \"limits_changed\": true,\n"
                             "  \"user_namespace\": {\n"
                             "    \"mode\": \"mapped\",\n"
                             "    \"uid_map\": \"0 1879048192 65536\\n\",\n"
                             "    \"gid_map\": \"0 1879048192 65536\\n\",\n"
                             "    \"id_block\": 0\n"
                             "  },\n"),
            std::string::npos)
      << with_limits;
  // A sealed image's launch: what dm-verity saw.
  o.sealed = SealedStatus{"/srv/el9/b1/image.erofs", "/run/chrootctl/sealed/K/root", VerityState::corrupted};
  EXPECT_NE(status_json(o).find("  \"sealed\": {\n"
                                "    \"image\": \"/srv/el9/b1/image.erofs\",\n"
                                "    \"mount\": \"/run/chrootctl/sealed/K/root\",\n"
                                "    \"verity\": \"corrupted\"\n"
                                "  },\n"
                                "  \"seccomp_policy\": \"default\",\n"),
            std::string::npos)
      << status_json(o);
  Outcome failed;
  failed.error = "mount target /tmp in the image: /tmp is a symlink";
  const auto text = status_json(failed);
  EXPECT_NE(text.find("\"outcome\": \"setup_failed\""), std::string::npos);
  EXPECT_NE(text.find("\"exit_status\": 125"), std::string::npos);
  EXPECT_NE(text.find("\"error\": \"mount target /tmp in the image: /tmp is a symlink\""), std::string::npos);
}

// The status JSON and `chrootctl mount --json` name dm-verity's state with these words
// (docs/launcher.md); scripts compare them.
TEST(StatusJson, VerityStatesKeepTheirNames) {
  EXPECT_EQ(verity_state_name(VerityState::verified), "verified");
  EXPECT_EQ(verity_state_name(VerityState::corrupted), "corrupted");
  EXPECT_EQ(verity_state_name(VerityState::none), "none");
  EXPECT_EQ(verity_state_name(VerityState::unknown), "unknown");
  EXPECT_EQ(SealedStatus{}.verity, VerityState::unknown);
}

TEST_F(PlanTest, TheSystemCallFilterIsCarriedOverAsChosen) {
  auto none = plan();
  ASSERT_TRUE(none);
  EXPECT_EQ(none->seccomp, SeccompPlan{});
  opts.seccomp = {"default", std::string(64, 'a'), "/run/chrootctl/seccomp/" + std::string(64, 'a') + ".bpf"};
  auto p = plan();
  ASSERT_TRUE(p) << p.error().what();
  EXPECT_EQ(p->seccomp, opts.seccomp);
  opts.seccomp.digest = "abc";
  EXPECT_EQ(error(), "system-call policy digest 'abc' is not 64 hex digits");
  opts.seccomp = {"default", std::string(64, 'a'), ""};
  EXPECT_EQ(error(), "system-call policy 'default' has no compiled program");
  opts.seccomp = {"default", std::string(64, 'a'), "relative.bpf"};
  EXPECT_EQ(error(), "system-call filter 'relative.bpf' is not an absolute path");
}

}  // namespace
}  // namespace chrootctl
