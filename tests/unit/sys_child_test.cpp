// sys::collect_child and sys::wait_child: what the builder, the rpm audit and the Slurm
// plugin's resolver read from their children, and how they learn how it ended.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <ctime>

#include <gtest/gtest.h>

#include <string>

#include "chrootctl/common/sys.hpp"

namespace chrootctl {
namespace {

struct Child {
  pid_t pid = -1;
  Fd out, err;
};

// /bin/sh -c SCRIPT with its stdout and stderr on pipes.
Child start(const char* script) {
  int o[2], e[2];
  EXPECT_EQ(::pipe2(o, O_CLOEXEC), 0);
  EXPECT_EQ(::pipe2(e, O_CLOEXEC), 0);
  Child c;
  c.pid = ::fork();
  if (c.pid == 0) {
    ::dup2(o[1], 1);
    ::dup2(e[1], 2);
    ::execl("/bin/sh", "sh", "-c", script, static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(o[1]);
  ::close(e[1]);
  c.out.reset(o[0]);
  c.err.reset(e[0]);
  return c;
}

TEST(SysChild, CollectsBothStreamsAndTheExitStatus) {
  auto c = start("echo out; echo err >&2; exit 3");
  auto r = sys::collect_child(c.pid, std::move(c.out), std::move(c.err), 10'000, 1 << 20);
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
  EXPECT_EQ(r->status, 3);
  EXPECT_EQ(r->signal, 0);
  EXPECT_FALSE(r->timed_out);
  EXPECT_FALSE(r->truncated);
  EXPECT_EQ(r->read_errno, 0);
}

TEST(SysChild, KeepsAtMostTheLimitAndSaysSo) {
  auto c = start("head -c 100000 /dev/zero");
  auto r = sys::collect_child(c.pid, std::move(c.out), std::move(c.err), 10'000, 1000);
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(r->out.size(), 1000u);
  EXPECT_TRUE(r->truncated);
  EXPECT_EQ(r->status, 0) << "the rest is read and dropped, so the child is not blocked on a full pipe";
}

TEST(SysChild, KillsAChildThatOutlivesItsTime) {
  auto c = start("sleep 30");
  auto r = sys::collect_child(c.pid, std::move(c.out), std::move(c.err), 200, 1000);
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->signal, SIGKILL);
  EXPECT_EQ(r->status, 128 + SIGKILL);
}

// Closing its output does not buy a child more time: the wait after it keeps the same limit.
TEST(SysChild, KillsAChildThatClosedItsOutputAndOutlivesItsTime) {
  auto c = start("exec >&- 2>&-; exec sleep 30");
  const auto t0 = ::time(nullptr);
  auto r = sys::collect_child(c.pid, std::move(c.out), std::move(c.err), 300, 1000);
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->signal, SIGKILL);
  EXPECT_LT(::time(nullptr) - t0, 20) << "waited for the child past its time";
}

TEST(SysChild, WaitChildReportsASignalAs128Plus) {
  auto c = start("kill -TERM $$");
  c.out.reset();
  c.err.reset();
  auto r = sys::wait_child(c.pid);
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(*r, 128 + SIGTERM);
}

}  // namespace
}  // namespace chrootctl
