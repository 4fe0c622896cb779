// The strip step on a real tree: setuid policies and allow-list, capabilities, devices,
// globs, shadow hashes, mtime clamping, and the report.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "chrootctl/builder/strip.hpp"
#include "chrootctl/common/strings.hpp"
#include "test_support.hpp"

namespace chrootctl::builder {
namespace {

const std::string k_cap("\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 20);

class BuilderStrip : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    root = path("root");
    for (const char* d : {"/usr/bin", "/usr/sbin", "/usr/share/doc/bash", "/etc/ssh", "/dev", "/opt"}) test::mkdirs(root + d);
    file("/usr/bin/su", 04755);
    file("/usr/bin/passwd", 04755);
    file("/usr/bin/wall", 02755);
    file("/usr/sbin/unix_chkpwd", 02755);
    file("/usr/bin/ping", 0755);
    file("/usr/bin/ls", 0755);
    file("/usr/share/doc/bash/copyright", 0644);
    file("/etc/ssh/ssh_host_ed25519_key", 0600);
    file("/etc/ssh/sshd_config", 0644);
    file("/etc/machine-id", 0444);
    test::write_file(root + "/etc/shadow",
                     "root:$y$j9T$salt$hash:19000:0:99999:7:::\n"
                     "daemon:*:19000:0:99999:7:::\n"
                     "locked:!$6$s$h:19000::::::\n"
                     "nopass::19000::::::\n"
                     "already:!:19000::::::\n",
                     0640);
    test::write_file(root + "/etc/gshadow", "root:*::\nadm:$6$x$y::\n", 0640);
  }
  void file(const std::string& p, mode_t mode) {
    test::write_file(root + p, "contents of " + p, mode);
    ASSERT_EQ(::chmod((root + p).c_str(), mode), 0);
  }
  mode_t mode_of(const std::string& p) {
    struct stat st {};
    if (::lstat((root + p).c_str(), &st) != 0) return static_cast<mode_t>(-1);
    return st.st_mode & 07777;
  }
  bool exists(const std::string& p) {
    struct stat st {};
    return ::lstat((root + p).c_str(), &st) == 0;
  }
  std::string root;
};

TEST_F(BuilderStrip, RemovePolicyWithAllowListCapabilitiesDevicesGlobsAndShadow) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  CHROOTCTL_REQUIRE_PRIVILEGE("mknod");
  ASSERT_EQ(::setxattr((root + "/usr/bin/ping").c_str(), "security.capability", k_cap.data(), k_cap.size(), 0), 0);
  ASSERT_EQ(::mknod((root + "/dev/null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  ASSERT_EQ(::mknod((root + "/opt/sda").c_str(), S_IFBLK | 0660, makedev(8, 0)), 0);
  ASSERT_EQ(::symlink("/etc/shadow", (root + "/opt/link").c_str()), 0);

  Strip s;
  s.setuid = SetuidPolicy::remove;
  s.allow_setuid = {"/usr/bin/su"};
  s.remove = {"/usr/share/doc/**", "/etc/ssh/ssh_host_*", "/etc/machine-id"};
  auto r = strip_tree(root, s, 1600000000);
  ASSERT_TRUE(r) << r.error().what();

  EXPECT_EQ(mode_of("/usr/bin/su"), 04755u) << "on the allow-list";
  EXPECT_FALSE(exists("/usr/bin/passwd"));
  EXPECT_FALSE(exists("/usr/bin/wall")) << "setgid counts too";
  EXPECT_FALSE(exists("/usr/sbin/unix_chkpwd"));
  EXPECT_EQ(mode_of("/usr/bin/ls"), 0755u);
  char buf[64];
  EXPECT_LT(::getxattr((root + "/usr/bin/ping").c_str(), "security.capability", buf, sizeof buf), 0);
  EXPECT_TRUE(exists("/usr/bin/ping"));
  EXPECT_FALSE(exists("/dev/null")) << "devices under /dev go too: jobs get their own /dev";
  EXPECT_FALSE(exists("/opt/sda"));
  EXPECT_TRUE(exists("/opt/link")) << "symlinks are never followed or removed";
  EXPECT_TRUE(exists("/usr/share/doc")) << "a trailing ** keeps the directory";
  EXPECT_FALSE(exists("/usr/share/doc/bash"));
  EXPECT_FALSE(exists("/etc/ssh/ssh_host_ed25519_key"));
  EXPECT_TRUE(exists("/etc/ssh/sshd_config"));
  EXPECT_FALSE(exists("/etc/machine-id"));
  EXPECT_EQ(test::read_file(root + "/etc/shadow"),
            "root:*:19000:0:99999:7:::\n"
            "daemon:*:19000:0:99999:7:::\n"
            "locked:!:19000::::::\n"
            "nopass:*:19000::::::\n"
            "already:!:19000::::::\n");
  EXPECT_EQ(mode_of("/etc/shadow"), 0640u);
  EXPECT_EQ(test::read_file(root + "/etc/gshadow"), "root:*::\nadm:*::\n");

  EXPECT_EQ(r->entries_removed, 9u) << "doc dir and file, host key, machine-id, three setuid files, two devices";
  const std::string log = r->log_text();
  EXPECT_NE(log.find("strip: password-locked /etc/shadow (root: password hash -> *)\n"), std::string::npos) << log;
  EXPECT_NE(log.find("strip: password-locked /etc/shadow (locked: password hash -> !)\n"), std::string::npos) << log;
  EXPECT_NE(log.find("strip: password-locked /etc/shadow (nopass: empty password -> *)\n"), std::string::npos) << log;
  EXPECT_NE(log.find("strip: removed /etc/machine-id (matches /etc/machine-id)\n"), std::string::npos) << log;
  EXPECT_NE(log.find("strip: removed /usr/share/doc/bash (matches /usr/share/doc/**)\n"), std::string::npos) << log;
  EXPECT_NE(log.find("strip: device-removed /opt/sda (b 8,0)\n"), std::string::npos) << log;
  EXPECT_NE(log.find("strip: setuid-removed /usr/bin/passwd (mode 4755)\n"), std::string::npos) << log;
  EXPECT_NE(log.find("strip: setuid-kept /usr/bin/su (mode 4755, on allow_setuid)\n"), std::string::npos) << log;
  EXPECT_NE(log.find("strip: capability-dropped /usr/bin/ping (security.capability=0100000200200000000000000000000000000000)\n"), std::string::npos)
      << log;

  // The JSON report, read by an independent parser.
  const std::string json = r->json(s);
  auto py = test::run({"python3", "-c",
                       "import json,sys; d=json.load(sys.stdin); s=d['summary'];"
                       "print(s['removed'], s['setuid-removed'], s['setuid-kept'], s['capability-dropped'], s['device-removed'],"
                       " s['password-locked'], d['policy']['setuid'], d['actions'][0]['action'])"},
                      json);
  EXPECT_EQ(py.exit_code, 0) << py.err;
  EXPECT_EQ(py.out, "3 3 1 1 2 4 remove password-locked\n") << json;

  // Every mtime is clamped to the epoch, directories included.
  auto newer = test::sh("find '" + root + "' -newermt @1600000000 | wc -l");
  EXPECT_EQ(newer.out, "0\n");
}

TEST_F(BuilderStrip, ClearBitAndKeepPolicies) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  Strip clear;
  clear.setuid = SetuidPolicy::clear_bit;
  clear.shadow = false;
  clear.capabilities = false;
  ASSERT_EQ(::setxattr((root + "/usr/bin/ping").c_str(), "security.capability", k_cap.data(), k_cap.size(), 0), 0);
  auto r = strip_tree(root, clear, std::nullopt);
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(mode_of("/usr/bin/su"), 0755u);
  EXPECT_EQ(mode_of("/usr/bin/wall"), 0755u);
  EXPECT_NE(r->log_text().find("strip: setuid-cleared /usr/bin/wall (2755 -> 0755)\n"), std::string::npos) << r->log_text();
  char buf[64];
  EXPECT_EQ(::getxattr((root + "/usr/bin/ping").c_str(), "security.capability", buf, sizeof buf), 20) << "capabilities = false keeps them";
  EXPECT_NE(test::read_file(root + "/etc/shadow").find("$y$j9T$salt$hash"), std::string::npos) << "shadow = false";

  file("/usr/bin/newgrp", 04755);
  Strip keep;
  keep.setuid = SetuidPolicy::keep;
  keep.allow_capabilities = {"/usr/bin/ping"};
  auto k = strip_tree(root, keep, std::nullopt);
  ASSERT_TRUE(k) << k.error().what();
  EXPECT_EQ(mode_of("/usr/bin/newgrp"), 04755u);
  EXPECT_EQ(::getxattr((root + "/usr/bin/ping").c_str(), "security.capability", buf, sizeof buf), 20);
  EXPECT_NE(k->log_text().find("strip: setuid-kept /usr/bin/newgrp (mode 4755, policy keep)\n"), std::string::npos);
  EXPECT_NE(k->log_text().find("strip: capability-kept /usr/bin/ping"), std::string::npos);
}

TEST_F(BuilderStrip, ShadowThroughASymlinkIsRefused) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  const std::string host = path("host-shadow");
  test::write_file(host, "root:$6$host$hash:1::::::\n");
  ASSERT_EQ(::unlink((root + "/etc/shadow").c_str()), 0);
  ASSERT_EQ(::symlink(host.c_str(), (root + "/etc/shadow").c_str()), 0);
  auto r = strip_tree(root, Strip{}, std::nullopt);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().what().find("reading /etc/shadow (a symlink there is refused)"), std::string::npos) << r.error().what();
  EXPECT_EQ(test::read_file(host), "root:$6$host$hash:1::::::\n");
}

}  // namespace
}  // namespace chrootctl::builder
