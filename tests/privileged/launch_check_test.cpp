// launch_check = "periodic" (docs/sealed.md): a directory image that only root can change (here:
// in a store below a directory closed to everyone but root) is launched without the per-launch
// metadata walk, and relies on its last full verification; an image others could reach keeps
// the walk whatever the setting.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_support.hpp"

namespace chrootctl {
namespace {

class LaunchCheck : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    CHROOTCTL_REQUIRE_PRIVILEGE("root");
    CHROOTCTL_REQUIRE_PRIVILEGE("mount-ns");
    CHROOTCTL_REQUIRE_TOOL("busybox");
    ASSERT_EQ(::chmod(m_dir.c_str(), 0755), 0);
    test::mkdirs(path("closed"), 0700);
    ASSERT_EQ(::chmod(path("closed").c_str(), 0700), 0);
    test::mkdirs(path("open"), 0755);
    sandbox = path("sandbox");
    test::mkdirs(sandbox);
    ASSERT_EQ(::chown(sandbox.c_str(), 65534, 65534), 0);
    config = path("config.toml");
  }
  std::map<std::string, std::string> env(const std::string& check) {
    // MIN is readable (docs/catalogue.md, "Who can read what"): its build directory is open, so
    // in the open store every host user can reach its tree; the closed store keeps them out.
    test::write_file(config, "launch_check = \"" + check + "\"\nreadable_images = [\"MIN\"]\n", 0644);
    return {{"CHROOTCTL_CONFIG", config}, {"CHROOTCTL_STATE_DIR", path("state")}};
  }
  // Builds the minimal image into STORE, registers it as MIN, and changes the ctime of one of
  // its files (same contents, same mode): the metadata check now refuses it.
  void prepare(const std::string& store) {
    auto b = test::run_chrootctl({"build", "minimal", "--store", store, "--register", "MIN", "-q"}, env("metadata"));
    ASSERT_EQ(b.exit_code, 0) << b.err;
    auto r = test::run_chrootctl({"resolve", "MIN", "--store", store}, env("metadata"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::string root = r.out.substr(0, r.out.size() - 1);
    ASSERT_EQ(::chmod((root + "/etc/os-release").c_str(), 0644), 0);
  }
  test::CommandResult run(const std::string& store, const std::string& check) {
    return test::run_chrootctl({"run", "MIN", "--store", store, "--sandbox", sandbox, "--user", "nobody", "--", "/bin/true"}, env(check));
  }
  std::string sandbox, config;
};

TEST_F(LaunchCheck, PeriodicSkipsTheWalkOnlyWhereOnlyRootCanChangeTheTree) {
  const std::string closed = path("closed/store"), open = path("open/store");
  prepare(closed);
  prepare(open);
  // The metadata check (the default) refuses both: a file's ctime is not the recorded one.
  for (const auto& store : {closed, open}) {
    auto r = run(store, "metadata");
    EXPECT_EQ(r.exit_code, 125) << store;
    EXPECT_NE(r.err.find("the metadata check failed"), std::string::npos) << r.err;
  }
  // Periodic: the closed store's image runs on the strength of its last full verification ...
  auto closed_run = run(closed, "periodic");
  EXPECT_EQ(closed_run.exit_code, 0) << closed_run.err;
  // ... the open store's keeps the walk, and so its refusal.
  auto open_run = run(open, "periodic");
  EXPECT_EQ(open_run.exit_code, 125) << open_run.out;
  EXPECT_NE(open_run.err.find("the metadata check failed"), std::string::npos) << open_run.err;
  // A full verification finds the same contents and renews both.
  for (const auto& store : {closed, open}) {
    auto v = test::run_chrootctl({"verify", "MIN", "--store", store, "-q"}, env("metadata"));
    EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
    EXPECT_EQ(run(store, "metadata").exit_code, 0);
  }
}

}  // namespace
}  // namespace chrootctl
