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

  auto skip =
      run_chrootctl({"run", "MINIMAL", "--store", store, "--skip-metadata-check", "--sandbox", sandbox, "--user", "nobody", "--", "/bin/true"});
  EXPECT_EQ(skip.exit_code, 0) << skip.err;

  // A file of the image changed on the host (as a host user owning it could): the next launch
  // is refused, without waiting for a full verification.
  auto res = run_chrootctl({"resolve", "MINIMAL", "--store", store});
  ASSERT_EQ(res.exit_code, 0);
  const std::string image_root = res.out.substr(0, res.out.size() - 1);
  ASSERT_EQ(::chmod((image_root + "/etc/os-release").c_str(), 0666), 0);
  auto tampered = run_chrootctl({"run", "MINIMAL", "--store", store, "--sandbox", sandbox, "--user", "nobody", "--", "/bin/true"});
  EXPECT_EQ(tampered.exit_code, 125) << tampered.out;
  EXPECT_NE(tampered.err.find("MINIMAL"), std::string::npos) << tampered.err;
  ASSERT_EQ(::chmod((image_root + "/etc/os-release").c_str(), 0644), 0);  // ctime still differs
  auto verify = run_chrootctl({"verify", "MINIMAL", "--store", store, "-q"});
  ASSERT_EQ(verify.exit_code, 0) << verify.out << verify.err;

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
