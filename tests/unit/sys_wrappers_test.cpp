// The sys:: wrappers for path-taking calls: each does the call, tolerates only what its flags
// say, never follows a symlink where its contract says so, and names the call and its
// arguments in the error.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "chrootctl/common/sys.hpp"
#include "test_support.hpp"

namespace chrootctl {
namespace {

class SysWrappers : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    dirfd = ::open(m_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(dirfd, 0);
  }
  void TearDown() override {
    ::close(dirfd);
    TempDirTest::TearDown();
  }
  std::string fd_label() const { return "fd " + std::to_string(dirfd); }
  int dirfd = -1;
};

TEST_F(SysWrappers, MkdirAtToleratesAnExistingEntryOnlyWhenAsked) {
  ASSERT_TRUE(sys::mkdir_at(dirfd, "d", 0755));
  auto again = sys::mkdir_at(dirfd, "d", 0755);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().what(), "mkdirat(" + fd_label() + ", 'd', 0755): File exists");
  EXPECT_EQ(again.error().sys_errno(), EEXIST);
  EXPECT_TRUE(sys::mkdir_at(dirfd, "d", 0755, true));
  auto missing = sys::mkdir_at(dirfd, "no/d", 0755, true);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().what(), "mkdirat(" + fd_label() + ", 'no/d', 0755): No such file or directory");
}

TEST_F(SysWrappers, MkdirPathToleratesAnExistingEntryOnlyWhenAsked) {
  const std::string d = path("d");
  ASSERT_TRUE(sys::mkdir_path(d, 0700));
  EXPECT_EQ(sys::lstat_path(d)->st_mode & 07777 & ~0700, 0u);
  auto again = sys::mkdir_path(d, 0700);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().what(), "mkdir('" + d + "', 0700): File exists");
  EXPECT_TRUE(sys::mkdir_path(d, 0700, true));
}

TEST_F(SysWrappers, ChmodDirChangesADirectoryAndRefusesASymlink) {
  const std::string d = path("d");
  test::mkdirs(d, 0700);
  ASSERT_TRUE(sys::chmod_dir(d, 0755));
  EXPECT_EQ(sys::lstat_path(d)->st_mode & 07777, 0755u);
  ASSERT_EQ(::symlink("d", path("link").c_str()), 0);
  auto through = sys::chmod_dir(path("link"), 0700);
  ASSERT_FALSE(through);
  EXPECT_EQ(through.error().what(), "open('" + path("link") + "', O_RDONLY|O_DIRECTORY|O_NOFOLLOW): Not a directory");
  EXPECT_EQ(sys::lstat_path(d)->st_mode & 07777, 0755u);
}

TEST_F(SysWrappers, ChmodAtChangesTheEntryItself) {
  test::write_file(path("f"), "x", 0644);
  ASSERT_TRUE(sys::chmod_at(dirfd, "f", 0600, AT_SYMLINK_NOFOLLOW));
  EXPECT_EQ(sys::lstat_path(path("f"))->st_mode & 07777, 0600u);
  auto missing = sys::chmod_at(dirfd, "none", 0600, AT_SYMLINK_NOFOLLOW);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().what(), "fchmodat(" + fd_label() + ", 'none', 0600, AT_SYMLINK_NOFOLLOW): No such file or directory");
}

TEST_F(SysWrappers, ChownAtSetsTheOwnerOfASymlinkItself) {
  ASSERT_EQ(::symlink("target", path("link").c_str()), 0);
  ASSERT_TRUE(sys::chown_at(dirfd, "link", ::geteuid(), ::getegid(), AT_SYMLINK_NOFOLLOW));
  auto missing = sys::chown_at(dirfd, "none", 1, 2, AT_SYMLINK_NOFOLLOW);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().what(), "fchownat(" + fd_label() + ", 'none', 1, 2, AT_SYMLINK_NOFOLLOW): No such file or directory");
}

TEST_F(SysWrappers, UtimensAtSetsTheTimesOfASymlinkItself) {
  test::write_file(path("f"), "x");
  ASSERT_EQ(::symlink("f", path("link").c_str()), 0);
  const struct timespec ts[2] = {{1000, 0}, {2000, 0}};
  ASSERT_TRUE(sys::utimens_at(dirfd, "link", ts, AT_SYMLINK_NOFOLLOW));
  EXPECT_EQ(sys::lstat_path(path("link"))->st_mtim.tv_sec, 2000);
  EXPECT_NE(sys::lstat_path(path("f"))->st_mtim.tv_sec, 2000);
  auto missing = sys::utimens_at(dirfd, "none", ts, AT_SYMLINK_NOFOLLOW);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().what(), "utimensat(" + fd_label() + ", 'none', AT_SYMLINK_NOFOLLOW): No such file or directory");
}

TEST_F(SysWrappers, SymlinkAtMakesALinkAndNeverReplacesOne) {
  ASSERT_TRUE(sys::symlink_at("/etc/passwd", dirfd, "link"));
  EXPECT_EQ(*sys::readlink_at(dirfd, "link"), "/etc/passwd");
  auto again = sys::symlink_at("/etc/shadow", dirfd, "link");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().what(), "symlinkat('/etc/shadow', " + fd_label() + ", 'link'): File exists");
  EXPECT_EQ(*sys::readlink_at(dirfd, "link"), "/etc/passwd");
}

TEST_F(SysWrappers, MknodAtMakesANodeAndNamesTheDevice) {
  ASSERT_TRUE(sys::mknod_at(dirfd, "fifo", S_IFIFO | 0600, 0));
  EXPECT_TRUE(S_ISFIFO(sys::lstat_path(path("fifo"))->st_mode));
  auto again = sys::mknod_at(dirfd, "fifo", S_IFCHR | 0600, makedev(1, 3));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().what(), "mknodat(" + fd_label() + ", 'fifo', S_IFCHR|0600, 1:3): File exists");
}

TEST_F(SysWrappers, MkdtempMakesAPrivateDirectory) {
  auto made = sys::mkdtemp(path("t.XXXXXX"));
  ASSERT_TRUE(made) << made.error().what();
  EXPECT_EQ(made->substr(0, path("t.").size()), path("t."));
  EXPECT_NE(made->substr(made->size() - 6), "XXXXXX");
  const auto st = sys::lstat_path(*made);
  ASSERT_TRUE(st);
  EXPECT_TRUE(S_ISDIR(st->st_mode));
  EXPECT_EQ(st->st_mode & 07777, 0700u);
  auto bad = sys::mkdtemp(path("none/t.XXXXXX"));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().what(), "mkdtemp('" + path("none/t.XXXXXX") + "'): No such file or directory");
}

TEST_F(SysWrappers, AccessPathReportsWhyNot) {
  test::write_file(path("f"), "x", 0644);
  EXPECT_TRUE(sys::access_path(path("f"), F_OK));
  auto exec = sys::access_path(path("f"), X_OK);
  ASSERT_FALSE(exec);
  EXPECT_EQ(exec.error().what(), "access('" + path("f") + "'): Permission denied");
  auto missing = sys::access_path(path("none"), F_OK);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().sys_errno(), ENOENT);
}

TEST_F(SysWrappers, ChdirAndRealpath) {
  test::mkdirs(path("d"));
  ASSERT_EQ(::symlink("d", path("link").c_str()), 0);
  EXPECT_EQ(*sys::realpath(path("link")), *sys::realpath(path("d")));
  auto missing = sys::realpath(path("none"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().what(), "realpath('" + path("none") + "'): No such file or directory");
  const auto before = sys::realpath(".");
  ASSERT_TRUE(before);
  ASSERT_TRUE(sys::chdir(path("d")));
  EXPECT_EQ(*sys::realpath("."), *sys::realpath(path("d")));
  ASSERT_TRUE(sys::chdir(*before));
  auto bad = sys::chdir(path("none"));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().what(), "chdir('" + path("none") + "'): No such file or directory");
}

TEST_F(SysWrappers, XattrsOfAPathWithoutFollowingIt) {
  test::write_file(path("f"), "x");
  if (::lsetxattr(path("f").c_str(), "user.test", "value", 5, 0) != 0) GTEST_SKIP() << "no user xattrs on " << m_dir << ": " << std::strerror(errno);
  EXPECT_EQ(*sys::get_xattr_path(path("f"), "user.test"), std::optional<std::string>("value"));
  const std::string big(1000, 'v');
  ASSERT_EQ(::lsetxattr(path("f").c_str(), "user.big", big.data(), big.size(), 0), 0);
  EXPECT_EQ(*sys::get_xattr_path(path("f"), "user.big"), std::optional<std::string>(big));
  EXPECT_EQ(*sys::get_xattr_path(path("f"), "user.none"), std::nullopt);
  ASSERT_TRUE(sys::remove_xattr_path(path("f"), "user.test"));
  EXPECT_EQ(*sys::get_xattr_path(path("f"), "user.test"), std::nullopt);
  auto again = sys::remove_xattr_path(path("f"), "user.test");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().what(), "lremovexattr('" + path("f") + "', 'user.test'): No data available");
}

// Temporary names from random_hex: as long as asked, hex, and not the same twice (a pid or a
// counter is: every launch's init is pid 1 in its own namespace).
TEST_F(SysWrappers, RandomHexGivesUnguessableNamesOfTheLengthAsked) {
  auto a = sys::random_hex(8);
  auto b = sys::random_hex(8);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->size(), 16u);
  EXPECT_EQ(a->find_first_not_of("0123456789abcdef"), std::string::npos) << *a;
  EXPECT_NE(*a, *b);
  EXPECT_EQ(sys::random_hex(0).value(), "");
}

// read_fd reads a file of any size, sized from fstat or not (a pipe), and refuses one past the limit.
TEST_F(SysWrappers, ReadFdReadsWholeFilesAndPipesUpToTheLimit) {
  const std::string big(200000, 'x');
  test::write_file(path("big"), big);
  Fd f(::open(path("big").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_GE(f.get(), 0);
  EXPECT_EQ(sys::read_fd(f.get()).value(), big);
  Fd again(::open(path("big").c_str(), O_RDONLY | O_CLOEXEC));
  auto over = sys::read_fd(again.get(), 1000);
  ASSERT_FALSE(over);
  EXPECT_NE(over.error().what().find("larger than"), std::string::npos) << over.error().what();
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  Fd r(fds[0]);
  Fd w(fds[1]);
  const std::string small(70000, 'z');
  std::thread writer([&] {
    (void)sys::write_all(w.get(), small);
    w.reset();
  });
  auto got = sys::read_fd(r.get());
  writer.join();
  ASSERT_TRUE(got) << got.error().what();
  EXPECT_EQ(*got, small);
}

}  // namespace
}  // namespace chrootctl
