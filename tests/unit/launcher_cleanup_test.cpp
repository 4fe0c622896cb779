// Launch records and the cleanup of what dead launches left, against a cgroupfs-like tree.
#include <sys/stat.h>
#include <unistd.h>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/launcher/cleanup.hpp"
#include "test_support.hpp"

namespace chrootctl {
namespace {

using namespace launcher;

TEST(LaunchName, CarriesPidAndStartTime) {
  auto o = parse_launch_name("1234.987654.0");
  ASSERT_TRUE(o);
  EXPECT_EQ(o->pid, 1234);
  EXPECT_EQ(o->start_time, 987654u);
  auto leaf = parse_launch_name("launcher.55.66.7");
  ASSERT_TRUE(leaf);
  EXPECT_EQ(leaf->pid, 55);
  for (const char* bad : {"", "abc", "1.2", "1.2.3.4", "0.1.2", "x.1.2", "1.2.x", ".1.2"}) EXPECT_FALSE(parse_launch_name(bad)) << bad;
}

// This process's start time, field 22 of /proc/self/stat (fields resume after the ')' that
// ends the command name).
std::optional<std::uint64_t> self_start_time() {
  const auto stat = test::read_file("/proc/self/stat");
  const auto fields = split(stat.substr(stat.rfind(')') + 2), ' ');
  if (fields.size() < 20) return std::nullopt;
  return parse_u64(fields[19]);
}

TEST(LaunchName, NewNamesAreUniqueAndLive) {
  const auto start = self_start_time();
  ASSERT_TRUE(start);
  const std::string a = new_launch_name(*start);
  const std::string b = new_launch_name(*start);
  EXPECT_NE(a, b);
  auto owner = parse_launch_name(a);
  ASSERT_TRUE(owner);
  EXPECT_EQ(owner->pid, ::getpid());
  EXPECT_TRUE(launch_is_live(*owner));
  EXPECT_FALSE(launch_is_live({owner->pid, owner->start_time + 1}));
}

class StateTest : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    state = path("state");
    claims = path("state/idblocks");
    cg = path("cg");
    for (const char* h : {"memory", "pids"}) test::mkdirs(cg + "/" + h + "/chrootctl");
    layout.v1_mounts = {{"memory", cg + "/memory"}, {"pids", cg + "/pids"}};
  }
  void job_dir(const std::string& name) {
    for (const char* h : {"memory", "pids"}) {
      test::mkdirs(cg + "/" + h + "/chrootctl/" + name);
      test::write_file(cg + "/" + h + "/chrootctl/" + name + "/cgroup.procs", "");
    }
  }
  bool exists(const std::string& p) {
    struct stat st {};
    return ::lstat(p.c_str(), &st) == 0;
  }
  std::string state, claims, cg;
  cgroup::Layout layout;
};

// Removes the (empty) control file the way rmdir removes a cgroup.
class TreeFs : public cgroup::Fs {
 public:
  Status remove_dir(const std::string& path) override {
    ::unlink((path + "/cgroup.procs").c_str());
    return cgroup::Fs::remove_dir(path);
  }
};

bool live_if_pid_1111(const LaunchOwner& o) { return o.pid == 1111; }

TEST_F(StateTest, RecordListsCgroupsAndGoesAwayWithItsGuard) {
  {
    auto r = StateRecord::create(state, "1.2.3", {"/sys/fs/cgroup/memory/chrootctl/1.2.3", "/odd path/x"});
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(r->path(), state + "/launches/1.2.3");
    const auto text = test::read_file(r->path());
    EXPECT_EQ(text, "chrootctl-launch 1\ncgroup /sys/fs/cgroup/memory/chrootctl/1.2.3\ncgroup /odd\\x20path/x\n");
    auto parsed = parse_state_record(text);
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->cgroup_dirs, (std::vector<std::string>{"/sys/fs/cgroup/memory/chrootctl/1.2.3", "/odd path/x"}));
    EXPECT_FALSE(parsed->id_block);
  }
  {
    auto r = StateRecord::create(state, "1.2.4", {}, 1879048192);
    ASSERT_TRUE(r) << r.error().what();
    const auto text = test::read_file(r->path());
    EXPECT_EQ(text, "chrootctl-launch 1\nidblock 1879048192\n");
    EXPECT_EQ(parse_state_record(text)->id_block, 1879048192u);
  }
  EXPECT_FALSE(exists(state + "/launches/1.2.3"));
  EXPECT_FALSE(parse_state_record("something else\n"));
}

TEST_F(StateTest, AStateDirectoryOthersCanWriteIsRefused) {
  test::mkdirs(state);
  ASSERT_EQ(::chmod(state.c_str(), 0777), 0);
  auto r = StateRecord::create(state, "1.2.3", {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().what(), state + " is writable by group or others (mode 0777)");
  ASSERT_EQ(::chmod(state.c_str(), 0755), 0);
  ASSERT_EQ(::symlink(state.c_str(), path("link").c_str()), 0);
  auto via_link = StateRecord::create(path("link"), "1.2.3", {});
  ASSERT_FALSE(via_link);
  EXPECT_EQ(via_link.error().what(), path("link") + " is not a directory");
}

TEST_F(StateTest, DeadLaunchesAreRemovedLiveOnesKept) {
  TreeFs fs;
  // A dead launch with a record, a live one with a record, a dead one whose record was lost,
  // a forged record naming a cgroup that is not its own, and something not ours.
  job_dir("2222.5.0");
  job_dir("1111.5.0");
  job_dir("3333.5.0");
  test::mkdirs(cg + "/memory/other");
  test::write_file(cg + "/memory/other/cgroup.procs", "");
  test::mkdirs(cg + "/memory/chrootctl/not-a-launch");
  auto dead = StateRecord::create(state, "2222.5.0", {cg + "/memory/chrootctl/2222.5.0", cg + "/pids/chrootctl/2222.5.0"});
  auto live = StateRecord::create(state, "1111.5.0", {cg + "/memory/chrootctl/1111.5.0"});
  auto forged = StateRecord::create(state, "4444.5.0", {cg + "/memory/other", cg + "/memory/chrootctl/1111.5.0"});
  ASSERT_TRUE(dead && live && forged);
  dead->release();
  forged->release();

  auto rep = cleanup_stale(fs, layout, state, live_if_pid_1111, true, claims);
  EXPECT_EQ(rep.errors, std::vector<std::string>{});
  std::sort(rep.removed_records.begin(), rep.removed_records.end());
  EXPECT_EQ(rep.removed_records, (std::vector<std::string>{state + "/launches/2222.5.0", state + "/launches/4444.5.0"}));
  std::vector<std::string> removed = rep.removed_cgroups;
  std::sort(removed.begin(), removed.end());
  EXPECT_EQ(removed, (std::vector<std::string>{cg + "/memory/chrootctl/2222.5.0", cg + "/memory/chrootctl/3333.5.0", cg + "/pids/chrootctl/2222.5.0",
                                               cg + "/pids/chrootctl/3333.5.0"}));
  EXPECT_TRUE(exists(cg + "/memory/chrootctl/1111.5.0"));
  EXPECT_TRUE(exists(cg + "/memory/other"));
  EXPECT_TRUE(exists(cg + "/memory/chrootctl/not-a-launch"));
  EXPECT_TRUE(exists(state + "/launches/1111.5.0"));
  EXPECT_EQ(rep.live, std::vector<std::string>{"1111.5.0"});
}

TEST_F(StateTest, RecordsOnlyLeavesUnrecordedCgroupsToAFullCleanup) {
  TreeFs fs;
  job_dir("2222.7.0");
  job_dir("3333.7.0");
  auto dead = StateRecord::create(state, "2222.7.0", {cg + "/memory/chrootctl/2222.7.0", cg + "/pids/chrootctl/2222.7.0"});
  ASSERT_TRUE(dead);
  dead->release();
  auto rep = cleanup_stale(fs, layout, state, live_if_pid_1111, false, claims);
  EXPECT_EQ(rep.removed_cgroups.size(), 2u);
  EXPECT_TRUE(exists(cg + "/memory/chrootctl/3333.7.0"));
  rep = cleanup_stale(fs, layout, state, live_if_pid_1111, true, claims);
  // The two job cgroups, then the two bases, empty by then.
  EXPECT_EQ(rep.removed_cgroups, (std::vector<std::string>{cg + "/memory/chrootctl/3333.7.0", cg + "/pids/chrootctl/3333.7.0",
                                                           cg + "/memory/chrootctl", cg + "/pids/chrootctl"}));
  EXPECT_FALSE(exists(cg + "/memory/chrootctl"));
}

TEST_F(StateTest, RecordsInADirectoryOthersCanWriteAreIgnored) {
  TreeFs fs;
  job_dir("2222.8.0");
  auto dead = StateRecord::create(state, "2222.8.0", {cg + "/memory/chrootctl/2222.8.0"});
  ASSERT_TRUE(dead);
  dead->release();
  ASSERT_EQ(::chmod((state + "/launches").c_str(), 0777), 0);
  auto rep = cleanup_stale(fs, layout, state, live_if_pid_1111, false, claims);
  EXPECT_EQ(rep.errors, std::vector<std::string>{state + "/launches is not a private directory of uid " + std::to_string(::geteuid()) +
                                                 "; its records are ignored"});
  EXPECT_TRUE(rep.removed_cgroups.empty());
  EXPECT_TRUE(exists(cg + "/memory/chrootctl/2222.8.0"));
  ASSERT_EQ(::chmod((state + "/launches").c_str(), 0755), 0);
}

TEST_F(StateTest, NoStateDirectoryStillScansTheBases) {
  TreeFs fs;
  job_dir("2222.6.0");
  test::mkdirs(cg + "/pids/chrootctl/1111.6.0");  // a live launch keeps its base
  auto rep = cleanup_stale(fs, layout, "", live_if_pid_1111, true, claims);
  EXPECT_EQ(rep.removed_cgroups,
            (std::vector<std::string>{cg + "/memory/chrootctl/2222.6.0", cg + "/pids/chrootctl/2222.6.0", cg + "/memory/chrootctl"}));
  EXPECT_TRUE(rep.removed_records.empty());
  EXPECT_TRUE(exists(cg + "/pids/chrootctl/1111.6.0"));
}

// ---- id blocks ----

TEST_F(StateTest, IdBlocksAreClaimedLowestFirstAndReleasedByTheirHolderOnly) {
  const IdRange range{1000000, 3 * k_id_block_size};
  auto a = IdBlockClaim::claim(claims, state, range, "10.1.0");
  auto b = IdBlockClaim::claim(claims, state, range, "10.1.1");
  ASSERT_TRUE(a && b) << (a ? b.error().what() : a.error().what());
  EXPECT_EQ(a->base(), 1000000u);
  EXPECT_EQ(b->base(), 1065536u);
  EXPECT_EQ(test::read_file(claims + "/1000000"), "10.1.0");
  std::optional<IdBlockClaim> first(std::move(*a)), second(std::move(*b));
  second.reset();
  EXPECT_FALSE(exists(claims + "/1065536")) << "a launch's block is freed with it";
  // A claim that names someone else by now is not removed by the old holder.
  test::write_file(claims + "/1000000", "10.9.9");
  first.reset();
  EXPECT_TRUE(exists(claims + "/1000000")) << "a holder removed a claim it no longer held";
}

TEST_F(StateTest, BlocksOfAnotherRangeAreNeverOverlapped) {
  // A launch configured with a range that starts half a block later skips every block that
  // overlaps one held under the first range.
  auto first = IdBlockClaim::claim(claims, state, IdRange{1000000, 2 * k_id_block_size}, "11.1.0");
  ASSERT_TRUE(first);
  auto shifted = IdBlockClaim::claim(claims, state, IdRange{1000000 + k_id_block_size / 2, 3 * k_id_block_size}, "11.1.1");
  ASSERT_TRUE(shifted) << shifted.error().what();
  EXPECT_EQ(shifted->base(), 1000000u + k_id_block_size / 2 + k_id_block_size);
}

TEST_F(StateTest, AFullRangeFreesTheBlocksOfDeadLaunchesWithoutARecord) {
  const IdRange range{1000000, k_id_block_size};
  test::mkdirs(claims);
  test::write_file(claims + "/1000000", "2222.5.0");             // its launcher is gone and left no record
  const std::string live = new_launch_name(*self_start_time());  // this process: live
  auto r = IdBlockClaim::claim(claims, state, range, live);
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(test::read_file(claims + "/1000000"), live);
  // A block still held (its launcher lives) is not taken: the range is full.
  auto full = IdBlockClaim::claim(claims, state, range, "12.1.1");
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().what(),
            "all 1 id blocks of the job id range (1000000+65536) are held by running jobs; enlarge job_ids in the configuration");
}

TEST_F(StateTest, CleanupFreesTheBlocksOfDeadLaunchesAndKeepsThoseOfLiveOnesOrWithACgroupLeft) {
  TreeFs fs;
  test::mkdirs(claims);
  job_dir("2222.5.0");
  auto dead = StateRecord::create(state, "2222.5.0", {cg + "/memory/chrootctl/2222.5.0"}, 1000000);
  ASSERT_TRUE(dead);
  dead->release();
  test::write_file(claims + "/1000000", "2222.5.0");  // freed with its record
  test::write_file(claims + "/1065536", "3333.5.0");  // no record: freed by the scan
  test::write_file(claims + "/1131072", "1111.5.0");  // live: kept
  auto rep = cleanup_stale(fs, layout, state, live_if_pid_1111, true, claims);
  EXPECT_EQ(rep.errors, std::vector<std::string>{});
  std::sort(rep.freed_id_blocks.begin(), rep.freed_id_blocks.end());
  EXPECT_EQ(rep.freed_id_blocks, (std::vector<std::string>{claims + "/1000000", claims + "/1065536"}));
  EXPECT_TRUE(exists(claims + "/1131072"));
}

}  // namespace
}  // namespace chrootctl
