#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chrootctl/common/settings.hpp"
#include "test_support.hpp"

namespace chrootctl {
namespace {

class SettingsTest : public test::TempDirTest {
protected:
  void TearDown() override {
    ::unsetenv("CHROOTCTL_CONFIG");
    ::unsetenv("CHROOTCTL_STORE");
    TempDirTest::TearDown();
  }
};

TEST_F(SettingsTest, ReadsTheConfigAndTheOverridesInOrder) {
  const std::string cfg = path("config.toml");
  test::write_file(cfg, "store = \"/srv/images\"\nmax_verify_age = 3600\nrequire_signature = true\n", 0644);
  ::setenv("CHROOTCTL_CONFIG", cfg.c_str(), 1);
  auto s = load_settings();
  ASSERT_TRUE(s) << s.error().what();
  EXPECT_EQ(s->store, "/srv/images");
  EXPECT_EQ(s->max_verify_age, 3600);
  EXPECT_TRUE(s->require_signature);
  EXPECT_EQ(s->config_file, cfg);
  ::setenv("CHROOTCTL_STORE", "/srv/other/", 1);
  EXPECT_EQ(load_settings()->store, "/srv/other");
  EXPECT_EQ(load_settings(std::string("/x"))->store, "/x");
}

TEST_F(SettingsTest, SealedImagesAndTheLaunchCheck) {
  const std::string cfg = path("config.toml");
  test::write_file(cfg, "", 0644);
  ::setenv("CHROOTCTL_CONFIG", cfg.c_str(), 1);
  auto d = load_settings();
  ASSERT_TRUE(d) << d.error().what();
  EXPECT_TRUE(d->sealed_verity);
  EXPECT_FALSE(d->sealed_keep_mounted);
  EXPECT_EQ(d->launch_check, Settings::LaunchCheck::metadata);
  test::write_file(cfg, "sealed_verity = false\nsealed_keep_mounted = true\nlaunch_check = \"periodic\"\n", 0644);
  auto s = load_settings();
  ASSERT_TRUE(s) << s.error().what();
  EXPECT_FALSE(s->sealed_verity);
  EXPECT_TRUE(s->sealed_keep_mounted);
  EXPECT_EQ(s->launch_check, Settings::LaunchCheck::periodic);
  test::write_file(cfg, "launch_check = \"never\"\n", 0644);
  auto bad = load_settings();
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().what().find(cfg + ":1:1: error: 'launch_check' must be \"metadata\" or \"periodic\", not 'never'"), std::string::npos)
      << bad.error().what();
}

TEST_F(SettingsTest, MistakesNameTheirPlace) {
  const std::string cfg = path("config.toml");
  test::write_file(cfg, "stroe = \"/srv\"\n", 0644);
  ::setenv("CHROOTCTL_CONFIG", cfg.c_str(), 1);
  auto s = load_settings();
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().what().find(cfg + ":1:1: error: unknown key 'stroe' (did you mean 'store'?)"), std::string::npos)
      << s.error().what();
}

TEST_F(SettingsTest, AConfigOthersCanWriteIsRefused) {
  const std::string cfg = path("config.toml");
  test::write_file(cfg, "require_signature = false\n", 0666);
  ASSERT_EQ(::chmod(cfg.c_str(), 0666), 0);
  ::setenv("CHROOTCTL_CONFIG", cfg.c_str(), 1);
  auto s = load_settings();
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), Errc::permission);
  EXPECT_NE(s.error().what().find("with mode 0666 (it must belong to root and be writable by no one else)"), std::string::npos)
      << s.error().what();
}

}  // namespace
}  // namespace chrootctl
