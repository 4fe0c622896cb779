// Changes to a tree that only root can make, each detected by a full check with the right field.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "chrootctl/common/manifest.hpp"
#include "test_support.hpp"

namespace chrootctl {
namespace {

namespace mf = manifest;

class ManifestRootChanges : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    root = path("root");
    test::mkdirs(root + "/usr/bin");
    test::mkdirs(root + "/dev");
    test::write_file(root + "/usr/bin/ping", "ELF pretend\n", 0755);
    auto m = mf::create(root);
    ASSERT_TRUE(m) << m.error().what();
    before = *m;
  }
  std::vector<std::string> fields(const std::string& p) {
    auto d = mf::check(root, before);
    EXPECT_TRUE(d) << d.error().what();
    std::vector<std::string> out;
    if (!d) return out;
    EXPECT_TRUE(d->differs_beyond_mtime());
    for (const auto& x : d->differences)
      if (x.path == p) {
        out.emplace_back(mf::kind_name(x.kind));
        for (const auto& f : x.fields) out.push_back(f.field);
      }
    return out;
  }
  std::string root;
  mf::Manifest before;
};

TEST_F(ManifestRootChanges, OwnerChange) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  ASSERT_EQ(::chown((root + "/usr/bin/ping").c_str(), 1000, static_cast<gid_t>(-1)), 0);
  EXPECT_EQ(fields("/usr/bin/ping"), (std::vector<std::string>{"changed", "uid"}));
}

TEST_F(ManifestRootChanges, GroupChange) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  ASSERT_EQ(::chown((root + "/usr/bin/ping").c_str(), static_cast<uid_t>(-1), 1000), 0);
  EXPECT_EQ(fields("/usr/bin/ping"), (std::vector<std::string>{"changed", "gid"}));
}

TEST_F(ManifestRootChanges, FileCapabilityAddedWithSetcap) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  CHROOTCTL_REQUIRE_TOOL("setcap");
  auto r = test::run({"setcap", "cap_net_raw+ep", root + "/usr/bin/ping"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(fields("/usr/bin/ping"), (std::vector<std::string>{"changed", "xattr:security.capability"}));
  auto m = mf::create(root);
  ASSERT_TRUE(m);
  const auto& xs = m->find("/usr/bin/ping")->xattrs;
  ASSERT_EQ(xs.size(), 1u);
  EXPECT_EQ(xs[0].name, "security.capability");
  EXPECT_NE(mf::serialize(*m).find(" xattr.security.capability="), std::string::npos);
}

TEST_F(ManifestRootChanges, DeviceNodeAdded) {
  CHROOTCTL_REQUIRE_PRIVILEGE("mknod");
  ASSERT_EQ(::mknod((root + "/dev/sda").c_str(), S_IFBLK | 0666, makedev(8, 0)), 0);
  ASSERT_EQ(::chmod((root + "/dev/sda").c_str(), 0666), 0);  // past the umask
  EXPECT_EQ(fields("/dev/sda"), std::vector<std::string>{"added"});
  auto m = mf::create(root);
  ASSERT_TRUE(m);
  const auto* e = m->find("/dev/sda");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->type, mf::Type::blockdev);
  EXPECT_EQ(e->rdev_major, 8u);
  EXPECT_EQ(e->rdev_minor, 0u);
  EXPECT_NE(mf::serialize(*m).find("/dev/sda type=b mode=0666 uid=0 gid=0 rdev=8,0 "), std::string::npos);
}

TEST_F(ManifestRootChanges, DeviceNumberChangeOfAnExistingNode) {
  CHROOTCTL_REQUIRE_PRIVILEGE("mknod");
  ASSERT_EQ(::mknod((root + "/dev/null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  auto m = mf::create(root);
  ASSERT_TRUE(m);
  before = *m;
  ASSERT_EQ(::unlink((root + "/dev/null").c_str()), 0);
  ASSERT_EQ(::mknod((root + "/dev/null").c_str(), S_IFCHR | 0666, makedev(1, 5)), 0);
  EXPECT_EQ(fields("/dev/null"), (std::vector<std::string>{"changed", "rdev"}));
}

}  // namespace
}  // namespace chrootctl
