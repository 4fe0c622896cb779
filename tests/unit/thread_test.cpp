// chrootctl::Thread: starts away from its creator's CPU, then runs wherever its creator may.
#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>

#include <atomic>

#include "chrootctl/common/thread.hpp"

namespace chrootctl {
namespace {

cpu_set_t affinity() {
  cpu_set_t s;
  CPU_ZERO(&s);
  EXPECT_EQ(::sched_getaffinity(0, sizeof s, &s), 0);
  return s;
}

// Pins the calling thread to one CPU for the test's length, restoring its set after.
class PinnedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    m_saved = affinity();
    if (CPU_COUNT(&m_saved) < 2) GTEST_SKIP() << "needs two usable CPUs";
    for (m_here = 0; !CPU_ISSET(m_here, &m_saved); ++m_here) {
    }
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(m_here, &one);
    ASSERT_EQ(::sched_setaffinity(0, sizeof one, &one), 0);
    // Back to the full set: the creator runs on m_here, from which the thread must start away.
    ASSERT_EQ(::sched_setaffinity(0, sizeof m_saved, &m_saved), 0);
  }
  void TearDown() override { ::sched_setaffinity(0, sizeof m_saved, &m_saved); }

  cpu_set_t m_saved{};
  int m_here = 0;
};

TEST_F(PinnedTest, StartsOnAnotherCpuThenTakesBackTheCreatorsSet) {
  // The thread starts away from the CPU its creator is on when it creates it. The creator may
  // move meanwhile, so the check is made on a creation during which it stayed put (read
  // before and after); one such creation must come within a hundred tries.
  bool checked = false;
  for (int attempt = 0; attempt < 100 && !checked; ++attempt) {
    int first_cpu = -1;
    cpu_set_t inside;
    CPU_ZERO(&inside);
    const int before = ::sched_getcpu();
    {
      Thread t([&] {
        first_cpu = ::sched_getcpu();
        ::sched_getaffinity(0, sizeof inside, &inside);
      });
      EXPECT_TRUE(t.joinable());
    }  // joined here
    if (::sched_getcpu() != before) continue;
    checked = true;
    EXPECT_NE(first_cpu, -1);
    EXPECT_NE(first_cpu, before) << "the thread started on its creator's CPU";
    EXPECT_TRUE(CPU_EQUAL(&inside, &m_saved)) << "the thread kept a narrowed CPU set";
  }
  EXPECT_TRUE(checked) << "the creator never stayed on one CPU across a thread's creation";
}

TEST(Thread, RunsWithOneUsableCpuAndJoinsOnMoveAndDestruction) {
  cpu_set_t saved = affinity();
  int cpu = 0;
  while (!CPU_ISSET(cpu, &saved)) ++cpu;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  ASSERT_EQ(::sched_setaffinity(0, sizeof one, &one), 0);
  std::atomic<int> ran{0};
  int where = -1;
  {
    Thread a([&] {
      where = ::sched_getcpu();
      ++ran;
    });
    Thread b = std::move(a);
    EXPECT_FALSE(a.joinable());
    EXPECT_TRUE(b.joinable());
    b.join();
    EXPECT_FALSE(b.joinable());
    EXPECT_EQ(ran.load(), 1);
    b = Thread([&] { ++ran; });
  }
  ::sched_setaffinity(0, sizeof saved, &saved);
  EXPECT_EQ(ran.load(), 2);
  EXPECT_EQ(where, cpu);
}

}  // namespace
}  // namespace chrootctl
