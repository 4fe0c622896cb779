// The whole story on one machine: build a recipe, register it, run a job in it by name.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_support.hpp"

namespace chrootctl {
namespace {

using test::run_chrootctl;

class EndToEnd : public test::TempDirTest {
protected:
  void SetUp() override {
    TempDirTest::SetUp();
    ASSERT_EQ(::chmod(m_dir.c_str(), 0755), 0);  // the catalogue refuses roots below writable dirs
    store = path("store");
    sandbox = path("sandbox");
    test::mkdirs(sandbox);
    ASSERT_EQ(::chown(sandbox.c_str(), 65534, 65534), 0);
  }
  std::string store, sandbox;
};

TEST_F(EndToEnd, BuildRegisterAndRunByName) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  CHROOTCTL_REQUIRE_PRIVILEGE("mount-ns");
  CHROOTCTL_REQUIRE_TOOL("busybox");
  auto b = run_chrootctl({"build", "minimal", "--store", store, "--register", "MINIMAL", "-q"});
  ASSERT_EQ(b.exit_code, 0) << b.err;

  // A marker only the image has, read by a job started by name, as nobody, in its sandbox.
  auto r = run_chrootctl({"run", "MINIMAL", "--store", store, "--sandbox", sandbox, "--user", "nobody", "--", "/bin/sh", "-c",
                          "cat /etc/os-release >/dev/null && id -u && pwd && echo scratch > /tmp/x && cat /tmp/x"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "65534\n" + sandbox + "\nscratch\n");
  EXPECT_EQ(test::read_file(sandbox + "/tmp/x"), "scratch\n");  // /tmp is backed by the sandbox

  auto fast = run_chrootctl({"run", "MINIMAL", "--store", store, "--verify-fast", "--sandbox", sandbox, "--user", "nobody", "--",
                             "/bin/true"});
  EXPECT_EQ(fast.exit_code, 0) << fast.err;

  // An unknown name never runs anything.
  auto unknown = run_chrootctl({"run", "MINIMUM", "--store", store, "--sandbox", sandbox, "--user", "nobody", "--", "/bin/true"});
  EXPECT_EQ(unknown.exit_code, 125);
  EXPECT_NE(unknown.err.find("'MINIMUM'"), std::string::npos) << unknown.err;

  // The registered root replaced by another directory at the same path: refused.
  auto root = run_chrootctl({"resolve", "MINIMAL", "--store", store});
  ASSERT_EQ(root.exit_code, 0) << root.err;
  const std::string dir = root.out.substr(0, root.out.size() - 1);
  ASSERT_EQ(test::sh("mv '" + dir + "' '" + dir + ".old' && cp -a '" + dir + ".old' '" + dir + "'").exit_code, 0);
  auto swapped = run_chrootctl({"run", "MINIMAL", "--store", store, "--sandbox", sandbox, "--user", "nobody", "--", "/bin/true"});
  EXPECT_EQ(swapped.exit_code, 125) << swapped.out;
  EXPECT_NE(swapped.err.find("MINIMAL"), std::string::npos) << swapped.err;
}

}  // namespace
}  // namespace chrootctl
