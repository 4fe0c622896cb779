// Resolving paths inside a tree: openat2(RESOLVE_IN_ROOT) and the walk used on kernels without
// it must agree, refuse symlinks the same way, and never leave the tree. Also mountinfo parsing.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chrootctl/common/sys.hpp"
#include "chrootctl/launcher/mountinfo.hpp"
#include "chrootctl/launcher/open_in_tree.hpp"
#include "test_support.hpp"

namespace chrootctl {
namespace {

using launcher::open_in_tree;
using launcher::Symlinks;

class TreeFixture : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    root = path("root");
    test::mkdirs(root + "/a/b");
    test::write_file(root + "/a/file", "x");
    ASSERT_EQ(::symlink("/etc", (root + "/abs").c_str()), 0);
    ASSERT_EQ(::symlink("../../../../../../etc", (root + "/a/rel").c_str()), 0);
    ASSERT_EQ(::symlink("b", (root + "/a/inner").c_str()), 0);
    rootfd = ::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(rootfd, 0);
  }
  void TearDown() override {
    ::close(rootfd);
    TempDirTest::TearDown();
  }
  ino_t ino(int fd) { return sys::fstat(fd)->st_ino; }
  ino_t ino(const std::string& p) { return sys::lstat_path(p)->st_ino; }
  std::string root;
  int rootfd = -1;
};

class OpenInTreeTest : public TreeFixture, public ::testing::WithParamInterface<bool> {
 protected:
  bool walk() const { return GetParam(); }
};

TEST_P(OpenInTreeTest, OpensDirectoriesAndFilesInsideTheTree) {
  auto fd = open_in_tree(rootfd, "/a/b", Symlinks::refuse, walk());
  ASSERT_TRUE(fd) << fd.error().what();
  EXPECT_EQ(ino(fd->get()), ino(root + "/a/b"));
  auto file = open_in_tree(rootfd, "/a/file", Symlinks::refuse, walk());
  ASSERT_TRUE(file) << file.error().what();
  EXPECT_EQ(ino(file->get()), ino(root + "/a/file"));
  auto top = open_in_tree(rootfd, "/", Symlinks::refuse, walk());
  ASSERT_TRUE(top);
  EXPECT_EQ(ino(top->get()), ino(root));
}

TEST_P(OpenInTreeTest, SymlinksAnywhereAreRefusedWithTheirTarget) {
  auto abs = open_in_tree(rootfd, "/abs/passwd", Symlinks::refuse, walk());
  ASSERT_FALSE(abs);
  EXPECT_EQ(abs.error().code(), Errc::permission);
  EXPECT_EQ(abs.error().what(), "/abs is a symlink (to '/etc'); refusing to resolve a path through it");
  auto rel = open_in_tree(rootfd, "/a/rel", Symlinks::refuse, walk());
  ASSERT_FALSE(rel);
  EXPECT_EQ(rel.error().what(), "/a/rel is a symlink (to '../../../../../../etc'); refusing to resolve a path through it");
  auto inner = open_in_tree(rootfd, "/a/inner", Symlinks::refuse, walk());
  ASSERT_FALSE(inner);
  EXPECT_EQ(inner.error().what(), "/a/inner is a symlink (to 'b'); refusing to resolve a path through it");
}

TEST_P(OpenInTreeTest, MissingComponentsAreNotFound) {
  auto fd = open_in_tree(rootfd, "/a/missing/x", Symlinks::refuse, walk());
  ASSERT_FALSE(fd);
  EXPECT_EQ(fd.error().code(), Errc::not_found);
}

INSTANTIATE_TEST_SUITE_P(Openat2AndWalk, OpenInTreeTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& p) { return p.param ? std::string("Walk") : std::string("Openat2"); });

class OpenInTreeInsideRootTest : public TreeFixture {};

TEST_F(OpenInTreeInsideRootTest, SymlinksLeavingTheTreeResolveInsideIt) {
  // "/abs" -> "/etc" and "/a/rel" -> "../../../../../../etc" both land on ROOT/etc, never on the
  // host's /etc.
  test::mkdirs(root + "/etc");
  auto abs = open_in_tree(rootfd, "/abs", Symlinks::inside_root);
  ASSERT_TRUE(abs) << abs.error().what();
  EXPECT_EQ(ino(abs->get()), ino(root + "/etc"));
  auto rel = open_in_tree(rootfd, "/a/rel", Symlinks::inside_root);
  ASSERT_TRUE(rel) << rel.error().what();
  EXPECT_EQ(ino(rel->get()), ino(root + "/etc"));
  EXPECT_NE(ino(rel->get()), ino(std::string("/etc")));
}

TEST_F(OpenInTreeInsideRootTest, DeepestExistingDirectoryOfAMissingPath) {
  auto p = launcher::deepest_existing(rootfd, "/a/b/c/d");
  ASSERT_TRUE(p) << p.error().what();
  EXPECT_EQ(p->path, "/a/b");
  EXPECT_EQ(ino(p->fd.get()), ino(root + "/a/b"));
  auto none = launcher::deepest_existing(rootfd, "/x/y");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->path, "/");
  auto through = launcher::deepest_existing(rootfd, "/abs/x");
  ASSERT_FALSE(through);
  EXPECT_EQ(through.error().what(), "/abs is a symlink (to '/etc'); refusing to resolve a path through it");
  // A file on the way stops the descent (the caller then reports it is not a directory).
  auto file = launcher::deepest_existing(rootfd, "/a/file/x");
  ASSERT_TRUE(file);
  EXPECT_EQ(file->path, "/a");
}

TEST(MountInfo, ParsesFieldsOptionalTagsAndEscapes) {
  const auto m = launcher::parse_mountinfo(
      "36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 shared:2 - ext3 /dev/root rw,errors=continue\n"
      "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
      "garbage line\n");
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].id, 36);
  EXPECT_EQ(m[0].parent, 35);
  EXPECT_EQ(m[0].root, "/mnt1");
  EXPECT_EQ(m[0].mount_point, "/mnt/with space");
  EXPECT_EQ(m[0].options, "rw,noatime");
  EXPECT_EQ(m[0].fstype, "ext3");
  EXPECT_EQ(m[0].source, "/dev/root");
  EXPECT_EQ(m[0].super_options, "rw,errors=continue");
  EXPECT_EQ(m[1].mount_point, "/");
}

TEST(MountInfo, PathIsUnder) {
  EXPECT_TRUE(launcher::path_is_under("/a/b", "/a"));
  EXPECT_TRUE(launcher::path_is_under("/a", "/a"));
  EXPECT_FALSE(launcher::path_is_under("/ab", "/a"));
  EXPECT_TRUE(launcher::path_is_under("/x", "/"));
}

}  // namespace
}  // namespace chrootctl
