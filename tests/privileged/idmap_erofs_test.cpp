// Can this kernel mount an EROFS image idmapped? The launcher's table (launcher/src/idmap.cpp)
// says from which Linux version; this asks the kernel itself (open_tree + mount_setattr with
// MOUNT_ATTR_IDMAP on a loop-mounted image) and checks that the two agree, here (Linux 6.18)
// and in the VM stage (Debian's 6.1).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/mount.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "chrootctl/launcher/idmap.hpp"
#include "test_support.hpp"

namespace chrootctl {
namespace {

constexpr std::uint64_t k_erofs_magic = 0xE0F5E1E2;

class IdmapErofs : public test::TempDirTest {};

TEST_F(IdmapErofs, TheKernelAgreesWithTheLaunchersTable) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  CHROOTCTL_REQUIRE_PRIVILEGE("mount-ns");
  CHROOTCTL_REQUIRE_TOOL("mkfs.erofs");
  test::mkdirs(path("tree/etc"));
  test::write_file(path("tree/etc/hosts"), "127.0.0.1 localhost\n");
  auto mk = test::run({"mkfs.erofs", "--quiet", path("image.erofs"), path("tree")});
  ASSERT_EQ(mk.exit_code, 0) << mk.err;
  test::mkdirs(path("mnt"));
  // In a child with a mount namespace of its own: nothing of the test is mounted on the host.
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  const pid_t child = ::fork();
  if (child == 0) {
    ::close(pipefd[0]);
    auto say = [&](const std::string& s) {
      (void)!::write(pipefd[1], s.data(), s.size());
      ::_exit(0);
    };
    if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) say("setup: unshare");
    auto loop = test::run({"mount", "-o", "ro,loop", path("image.erofs"), path("mnt")});
    if (loop.exit_code != 0) say("setup: mount: " + loop.err);
    // A user namespace to map through, held by a child that waits.
    int go[2];
    if (::pipe(go) != 0) say("setup: pipe");
    const pid_t holder = ::fork();
    if (holder == 0) {
      ::unshare(CLONE_NEWUSER);
      (void)!::write(go[1], "x", 1);
      ::pause();
      ::_exit(0);
    }
    char c;
    (void)!::read(go[0], &c, 1);
    for (const char* f : {"uid_map", "gid_map"}) {
      const std::string p = "/proc/" + std::to_string(holder) + "/" + f;
      const int fd = ::open(p.c_str(), O_WRONLY);
      (void)!::write(fd, "0 1879048192 65536", 18);
      ::close(fd);
    }
    const int ns = ::open(("/proc/" + std::to_string(holder) + "/ns/user").c_str(), O_RDONLY);
    const int tree = static_cast<int>(::syscall(SYS_open_tree, AT_FDCWD, path("mnt").c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
    struct mount_attr attr {};
    attr.attr_set = MOUNT_ATTR_IDMAP;
    attr.userns_fd = static_cast<__u64>(ns);
    const long r = ::syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof attr);
    const int err = errno;
    ::kill(holder, SIGKILL);
    ::waitpid(holder, nullptr, 0);
    if (ns < 0 || tree < 0) say("setup: open_tree");
    say(r == 0 ? "idmapped" : "refused: " + std::string(std::strerror(err)));
  }
  ::close(pipefd[1]);
  std::string answer;
  char buf[256];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0) answer.append(buf, static_cast<std::size_t>(n));
  ::close(pipefd[0]);
  ::waitpid(child, nullptr, 0);
  ASSERT_EQ(answer.rfind("setup:", 0), std::string::npos) << answer;

  struct utsname u {};
  ::uname(&u);
  int major = 0, minor = 0;
  std::sscanf(u.release, "%d.%d", &major, &minor);
  const auto why = launcher::idmap_unsupported(k_erofs_magic, major, minor);
  if (answer == "idmapped") EXPECT_FALSE(why) << "Linux " << u.release << " mounts EROFS idmapped, but the table says: " << *why;
  else EXPECT_TRUE(why) << "Linux " << u.release << " refuses an idmapped EROFS mount (" << answer << "), but the table allows it";
}

}  // namespace
}  // namespace chrootctl
