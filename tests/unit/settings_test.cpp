#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chrootctl/common/settings.hpp"
#include "chrootctl/common/strings.hpp"
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
  EXPECT_NE(s.error().what().find(cfg + ":1:1: error: unknown key 'stroe' (did you mean 'store'?)"), std::string::npos) << s.error().what();
}

TEST_F(SettingsTest, AConfigOthersCanWriteIsRefused) {
  const std::string cfg = path("config.toml");
  test::write_file(cfg, "require_signature = false\n", 0666);
  ASSERT_EQ(::chmod(cfg.c_str(), 0666), 0);
  ::setenv("CHROOTCTL_CONFIG", cfg.c_str(), 1);
  auto s = load_settings();
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), Errc::permission);
  EXPECT_NE(s.error().what().find("with mode 0666 (it must belong to root and be writable by no one else)"), std::string::npos) << s.error().what();
}

TEST_F(SettingsTest, TheSeccompTableNamesThePolicyAndWhatItAdds) {
  const std::string cfg = path("config.toml");
  test::write_file(cfg,
                   "[seccomp]\npolicy = \"none\"\nallow = [\"ptrace\"]\ndeny = [\"@debug\"]\nerrno = \"EACCES\"\n"
                   "allow_user_namespaces = true\n",
                   0644);
  ::setenv("CHROOTCTL_CONFIG", cfg.c_str(), 1);
  auto s = load_settings();
  ASSERT_TRUE(s) << s.error().what();
  EXPECT_EQ(s->seccomp.policy, "none");
  EXPECT_EQ(s->seccomp.allow, std::vector<std::string>{"ptrace"});
  EXPECT_EQ(s->seccomp.deny, std::vector<std::string>{"@debug"});
  EXPECT_EQ(s->seccomp.errno_name, "EACCES");
  EXPECT_EQ(s->seccomp.allow_user_namespaces, true);
  EXPECT_TRUE(s->seccomp.has_additions());
  EXPECT_EQ(s->config_text, test::read_file(cfg));

  test::write_file(cfg, "[seccomp]\npolicy = \"site.toml\"\nerno = \"EPERM\"\n", 0644);
  auto bad = load_settings();
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().what(), cfg +
                                    ":2:10: error: 'seccomp.policy' must be \"default\", \"none\" or the absolute path of a policy file\n"
                                    " 2 | policy = \"site.toml\"\n"
                                    "   |          ^\n" +
                                    cfg +
                                    ":3:1: error: unknown key 'seccomp.erno' (did you mean 'errno'?)\n"
                                    " 3 | erno = \"EPERM\"\n"
                                    "   | ^\n"
                                    "2 errors in " +
                                    cfg);

  test::write_file(cfg, "store = \"/srv\"\n", 0644);
  auto plain = load_settings();
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->seccomp.policy, "default");
  EXPECT_FALSE(plain->seccomp.has_additions());
}

TEST_F(SettingsTest, ReadableImagesAndTheImportStripPolicy) {
  const std::string cfg = path("config.toml");
  ::setenv("CHROOTCTL_CONFIG", cfg.c_str(), 1);
  test::write_file(cfg, "", 0644);
  auto d = load_settings();
  ASSERT_TRUE(d) << d.error().what();
  EXPECT_FALSE(d->readable("EL9"));
  // The builder's defaults.
  EXPECT_EQ(d->import_strip.setuid, SetuidPolicy::clear_bit);
  EXPECT_TRUE(d->import_strip.capabilities);
  EXPECT_TRUE(d->import_strip.devices);
  test::write_file(cfg,
                   "readable_images = [\"EL9\", \"DEBIAN12\"]\n[strip]\nsetuid = \"remove\"\nallow_setuid = [\"/usr/bin/ping\"]\n"
                   "capabilities = false\nallow_capabilities = [\"/usr/bin/arping\"]\ndevices = false\n",
                   0644);
  auto s = load_settings();
  ASSERT_TRUE(s) << s.error().what();
  EXPECT_TRUE(s->readable("EL9"));
  EXPECT_FALSE(s->readable("el9")) << "names are case-sensitive";
  EXPECT_EQ(s->import_strip.setuid, SetuidPolicy::remove);
  EXPECT_EQ(s->import_strip.allow_setuid, std::vector<std::string>{"/usr/bin/ping"});
  EXPECT_FALSE(s->import_strip.capabilities);
  EXPECT_EQ(s->import_strip.allow_capabilities, std::vector<std::string>{"/usr/bin/arping"});
  EXPECT_FALSE(s->import_strip.devices);
  test::write_file(cfg, "readable_images = [\"*\"]\n", 0644);
  EXPECT_TRUE(load_settings()->readable("ANY"));
  // Every mistake at once, each at its place.
  test::write_file(cfg, "readable_images = [\"no/slash\"]\n[strip]\nsetuid = \"drop\"\nallow_setuid = [\"usr/bin/su\"]\nshadow = true\n", 0644);
  auto bad = load_settings();
  ASSERT_FALSE(bad);
  const std::string msg = bad.error().what();
  EXPECT_NE(msg.find(cfg + ":1:20: error: 'readable_images' holds 'no/slash', which is not a catalogue name or \"*\""), std::string::npos) << msg;
  EXPECT_NE(msg.find(cfg + ":3:10: error: 'strip.setuid' must be \"remove\", \"clear-bit\" or \"keep\", not 'drop'"), std::string::npos) << msg;
  EXPECT_NE(msg.find(cfg + ":4:17: error: 'strip.allow_setuid' holds 'usr/bin/su': it is not an absolute path"), std::string::npos) << msg;
  EXPECT_NE(msg.find(cfg + ":5:1: error: unknown key 'strip.shadow'"), std::string::npos) << msg;
}

TEST_F(SettingsTest, TheAccountingTableNamesTheLogItsSizeAndRotations) {
  const std::string cfg = path("config.toml");
  ::setenv("CHROOTCTL_CONFIG", path("absent.toml").c_str(), 1);
  EXPECT_FALSE(load_settings());  // $CHROOTCTL_CONFIG must exist
  test::write_file(cfg, "", 0644);
  ::setenv("CHROOTCTL_CONFIG", cfg.c_str(), 1);
  auto d = load_settings();
  ASSERT_TRUE(d) << d.error().what();
  EXPECT_TRUE(d->accounting.enabled);
  EXPECT_EQ(d->accounting.path, default_settings().accounting.path);
  EXPECT_EQ(d->accounting.max_bytes, 64ull << 20);
  EXPECT_EQ(d->accounting.keep, 4u);
  test::write_file(cfg, "[accounting]\nenabled = false\npath = \"/srv/log/launches.jsonl\"\nmax_size = \"1M\"\nkeep = 0\n", 0644);
  auto s = load_settings();
  ASSERT_TRUE(s) << s.error().what();
  EXPECT_FALSE(s->accounting.enabled);
  EXPECT_EQ(s->accounting.path, "/srv/log/launches.jsonl");
  EXPECT_EQ(s->accounting.max_bytes, 1ull << 20);
  EXPECT_EQ(s->accounting.keep, 0u);
  test::write_file(cfg, "[accounting]\npath = \"/srv/../launches.jsonl\"\nmax_size = \"1K\"\nkeep = 1001\nrotate = true\n", 0644);
  auto bad = load_settings();
  ASSERT_FALSE(bad);
  const std::string msg = bad.error().what();
  EXPECT_NE(msg.find(cfg + ":2:8: error: 'accounting.path' must be the absolute path of a file, without '.', '..' or '//'"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find(cfg + ":3:1: error: 'accounting.max_size' must be a size of at least 4K, like 64M, not '1K'"), std::string::npos) << msg;
  EXPECT_NE(msg.find(cfg + ":4:1: error: 'accounting.keep' must be a number of files from 0 to 1000"), std::string::npos) << msg;
  EXPECT_NE(msg.find(cfg + ":5:1: error: unknown key 'accounting.rotate'"), std::string::npos) << msg;
  for (const char* p : {"\"relative.jsonl\"", "\"/var/log/\"", "\"/\"", "\"/var//log\""}) {
    test::write_file(cfg, str("[accounting]\npath = ", p, "\n"), 0644);
    EXPECT_FALSE(load_settings()) << p;
  }
}

}  // namespace
}  // namespace chrootctl
