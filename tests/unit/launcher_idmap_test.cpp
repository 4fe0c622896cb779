// The id maps of a job's user namespace and of its idmapped mounts, and the choice between a
// mapped and an identity launch (launcher/idmap.hpp): pure functions.
#include <gtest/gtest.h>

#include "chrootctl/launcher/idmap.hpp"
#include "chrootctl/launcher/launch.hpp"

namespace chrootctl {
namespace {

using namespace launcher;

constexpr std::uint32_t k_base = 0x70000000u;

Credentials user(uid_t uid, gid_t gid, std::vector<gid_t> groups = {}) {
  Credentials c;
  c.uid = uid;
  c.gid = gid;
  c.groups = std::move(groups);
  return c;
}

TEST(IdMaps, ARootJobMapsItsWholeIdSpaceToTheBlock) {
  auto m = job_id_maps(IdMode::mapped, k_base, user(0, 0));
  ASSERT_TRUE(m) << m.error().what();
  EXPECT_EQ(id_map_text(m->uid), "0 1879048192 65536\n");
  EXPECT_EQ(id_map_text(m->gid), "0 1879048192 65536\n");
  EXPECT_EQ(host_id(m->uid, 0), k_base);
  EXPECT_FALSE(host_id(m->uid, 65536));
}

TEST(IdMaps, AUserKeepsItsOwnIdsAndTheRestOfItsIdSpaceIsTheBlock) {
  // uid 1000 and gid 100 map to themselves; no inside id maps to host 0.
  auto m = job_id_maps(IdMode::mapped, k_base, user(1000, 100, {100, 24, 0}));
  ASSERT_TRUE(m) << m.error().what();
  EXPECT_EQ(m->uid, (std::vector<IdExtent>{{0, k_base, 1000}, {1000, 1000, 1}, {1001, k_base + 1001, 64535}}));
  EXPECT_EQ(m->gid, (std::vector<IdExtent>{{0, k_base, 24}, {24, 24, 1}, {25, k_base + 25, 75}, {100, 100, 1}, {101, k_base + 101, 65435}}));
  EXPECT_EQ(host_id(m->uid, 0), k_base);
  EXPECT_EQ(host_id(m->gid, 0), k_base) << "gid 0 is never the host's";
  for (const auto* map : {&m->uid, &m->gid})
    for (const auto& e : *map) EXPECT_FALSE(e.outside == 0) << "an inside id maps to host id 0";
}

TEST(IdMaps, ConsecutiveGroupsShareOneLine) {
  // Sites with directory services give users hundreds of groups, often numbered in runs.
  auto m = job_id_maps(IdMode::mapped, k_base, user(1000, 100, {101, 102, 70000, 70001}));
  ASSERT_TRUE(m) << m.error().what();
  EXPECT_EQ(m->gid, (std::vector<IdExtent>{{0, k_base, 100}, {100, 100, 3}, {103, k_base + 103, 65433}, {70000, 70000, 2}}));
  auto identity = job_id_maps(IdMode::identity, 0, user(1000, 100, {101, 102}));
  ASSERT_TRUE(identity);
  EXPECT_EQ(id_map_text(identity->gid), "100 100 3\n");
}

TEST(IdMaps, IdsAboveTheIdSpaceGetLinesOfTheirOwn) {
  auto m = job_id_maps(IdMode::mapped, k_base, user(70000, 65534));
  ASSERT_TRUE(m) << m.error().what();
  EXPECT_EQ(m->uid, (std::vector<IdExtent>{{0, k_base, 65536}, {70000, 70000, 1}}));
  EXPECT_EQ(m->gid, (std::vector<IdExtent>{{0, k_base, 65534}, {65534, 65534, 1}, {65535, k_base + 65535, 1}}));
}

TEST(IdMaps, IdentityMapsOnlyTheJobsOwnIdsAndRefusesRoot) {
  auto m = job_id_maps(IdMode::identity, 0, user(1000, 100, {24}));
  ASSERT_TRUE(m) << m.error().what();
  EXPECT_EQ(id_map_text(m->uid), "1000 1000 1\n");
  EXPECT_EQ(id_map_text(m->gid), "24 24 1\n100 100 1\n");
  auto root = job_id_maps(IdMode::identity, 0, user(0, 0));
  ASSERT_FALSE(root);
  EXPECT_EQ(root.error().what(), "a job as root needs its own id block, and this launch can only map the job's own ids");
  auto group_root = job_id_maps(IdMode::identity, 0, user(5, 0));
  ASSERT_FALSE(group_root);
  EXPECT_EQ(group_root.error().what(),
            "the job user's group is root (gid 0), which a job may only have in its own id block, and "
            "this launch can only map the job's own ids");
}

TEST(IdMaps, AJobIdInsideTheBlockIsRefused) {
  auto m = job_id_maps(IdMode::mapped, k_base, user(k_base + 5, 100));
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().what(),
            "the job's uid 1879048197 lies in the id block 1879048192-1879113727 claimed for its user namespace; the site's "
            "job_ids range must not hold real users");
}

TEST(IdMaps, TooManyGroupsForTheKernelAreRefused) {
  std::vector<gid_t> groups;
  for (gid_t g = 1; g <= 200; ++g) groups.push_back(g * 2);
  auto m = job_id_maps(IdMode::mapped, k_base, user(1000, 1000, groups));
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().what(), "the job's gids need 403 lines in the id map; the kernel takes at most 340 (too many supplementary groups?)");
}

TEST(IdMaps, TheOwnerMapTurnsTheJobsIdsIntoTheSandboxOwners) {
  const IdMaps m = owner_id_maps(1000, 100, k_base, k_base);
  EXPECT_EQ(id_map_text(m.uid), "1000 1879048192 1\n");
  EXPECT_EQ(id_map_text(m.gid), "100 1879048192 1\n");
}

TEST(IdRanges, WholeBlocksAboveTheUsersAndBelowTheTop) {
  EXPECT_TRUE(check_id_range(IdRange{}));
  EXPECT_EQ(check_id_range(IdRange{100000, 1000}).error().what(), "job_ids: count 1000 must be a positive multiple of 65536");
  EXPECT_EQ(check_id_range(IdRange{1000, 65536}).error().what(),
            "job_ids: start 1000 must be at least 65536 (the range is for ids no host user has)");
  EXPECT_EQ(check_id_range(IdRange{0xFFFF0000u, 65536}).error().what(), "job_ids: the range 4294901760+65536 goes past 4294967294");
}

TEST(IdmapFilesystems, ByTypeAndKernelVersion) {
  EXPECT_FALSE(idmap_unsupported(0xEF53, 5, 12));
  EXPECT_EQ(*idmap_unsupported(0xEF53, 5, 10), "ext4 can be mounted idmapped from Linux 5.12 on; this kernel is 5.10");
  EXPECT_EQ(*idmap_unsupported(0x01021994, 6, 1), "tmpfs can be mounted idmapped from Linux 6.3 on; this kernel is 6.1");
  EXPECT_FALSE(idmap_unsupported(0x01021994, 6, 3));
  EXPECT_EQ(*idmap_unsupported(0x73717368, 6, 1), "squashfs can be mounted idmapped from Linux 6.2 on; this kernel is 6.1");
  // Sealed images: EROFS idmaps on Debian 12's 6.1, not on a 5.14 kernel.
  EXPECT_FALSE(idmap_unsupported(0xE0F5E1E2, 6, 1));
  EXPECT_EQ(*idmap_unsupported(0xE0F5E1E2, 5, 14), "erofs can be mounted idmapped from Linux 5.19 on; this kernel is 5.14");
  EXPECT_EQ(*idmap_unsupported(0x6969, 6, 18),
            "nfs cannot be mounted idmapped (idmapped mounts need ext4, xfs, btrfs, f2fs, vfat, overlay, erofs, squashfs or "
            "tmpfs, and Linux 5.12 or later)");
  EXPECT_EQ(filesystem_name(0x65735546), "fuse");
  EXPECT_EQ(filesystem_name(0x12345678), "filesystem type 0x12345678");
}

class DecideIds : public ::testing::Test {
 protected:
  IdFacts facts = [] {
    IdFacts f;
    f.mount_api = true;
    f.kernel_major = 6;
    f.kernel_minor = 1;
    f.image = "/srv/images/el9/root";
    f.image_filesystems = {{"/srv/images/el9/root", 0xEF53}};
    return f;
  }();
};

TEST_F(DecideIds, MappedWithTheMountApiAndAnIdmappableImage) {
  auto d = decide_ids(facts);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->mode, IdMode::mapped);
  EXPECT_TRUE(d->detached);
}

TEST_F(DecideIds, AnUnprivilegedLauncherMapsItsOwnIdsAndBindsByPath) {
  facts.unprivileged = true;
  auto d = decide_ids(facts);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->mode, IdMode::identity);
  EXPECT_FALSE(d->detached);
}

TEST_F(DecideIds, WithoutTheMountApiAUserRunsUnmappedAndRootIsRefused) {
  facts.mount_api = false;
  facts.kernel_major = 4;
  facts.kernel_minor = 18;
  auto d = decide_ids(facts);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->mode, IdMode::identity);
  EXPECT_FALSE(d->detached);
  facts.root_job = true;
  auto root = decide_ids(facts);
  ASSERT_FALSE(root);
  EXPECT_EQ(root.error().what(),
            "a job as root needs idmapped mounts (open_tree and mount_setattr, Linux 5.12 or later); this kernel is 4.18 "
            "(run the job as another user with --user)");
}

TEST_F(DecideIds, AnImageOnNfsOrAnOldTmpfsRunsUsersUnmappedAndRefusesRoot) {
  for (const auto& [fs, why] : {std::pair<std::uint64_t, std::string>{0x6969, "nfs cannot be mounted idmapped"},
                                {0x01021994, "tmpfs can be mounted idmapped from Linux 6.3 on; this kernel is 6.1"},
                                {0x65735546, "fuse cannot be mounted idmapped"}}) {
    facts.image_filesystems = {{facts.image, fs}};
    facts.root_job = false;
    auto d = decide_ids(facts);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->mode, IdMode::identity);
    EXPECT_TRUE(d->detached);
    facts.root_job = true;
    auto root = decide_ids(facts);
    ASSERT_FALSE(root);
    EXPECT_NE(root.error().what().find("a job as root needs its image mounted idmapped, and the image /srv/images/el9/root is on " + why),
              std::string::npos)
        << root.error().what();
  }
}

TEST_F(DecideIds, TheImagesSubmountsAreIdmappedWithItAllOrNothing) {
  facts.image_filesystems.push_back({"/srv/images/el9/root/srv", 0x01021994});
  auto d = decide_ids(facts);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->mode, IdMode::identity);
  facts.root_job = true;
  auto root = decide_ids(facts);
  ASSERT_FALSE(root);
  EXPECT_EQ(root.error().what(),
            "a job as root needs its image mounted idmapped, and the image's submount /srv/images/el9/root/srv "
            "is on tmpfs can be mounted idmapped from Linux 6.3 on; this kernel is 6.1 (run the job as "
            "another user with --user)");
  facts.kernel_minor = 3;
  EXPECT_EQ(decide_ids(facts)->mode, IdMode::mapped);
}

TEST_F(DecideIds, ARootJobsWritableSourcesMustBeIdmappableToo) {
  facts.root_job = true;
  facts.owner_mapped = {{"/scratch/job1", 0xEF53}, {"/home/alice/out", 0x6969}};
  auto d = decide_ids(facts);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().what(),
            "a job as root writes to /home/alice/out through an idmapped mount, and it is on nfs cannot be mounted idmapped "
            "(idmapped mounts need ext4, xfs, btrfs, f2fs, vfat, overlay, erofs, squashfs or tmpfs, and Linux 5.12 or later)");
  facts.root_job = false;
  EXPECT_EQ(decide_ids(facts)->mode, IdMode::mapped) << "a user's job writes as itself: no idmap needed";
}

}  // namespace
}  // namespace chrootctl
