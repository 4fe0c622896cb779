// dm-verity under sealed images (docs/sealed.md): the kernel checks every block a job reads.
// Needs device-mapper with dm-verity, which the development machine's kernel lacks: this suite
// is not registered as a test there (tests/CMakeLists.txt) and runs in the VM stage, on
// Debian's 6.1 kernel (tests/vm/suites.txt).
#include <gtest/gtest.h>

#include "sealed_fixture.hpp"

namespace chrootctl {
namespace {

using namespace test::sealed;
using test::read_file;

class VerityImage : public SealedFixture {
 protected:
  void SetUp() override {
    SealedFixture::SetUp();
    if (HasFatalFailure()) return;
    CHROOTCTL_REQUIRE_PRIVILEGE("root");
    CHROOTCTL_REQUIRE_PRIVILEGE("mount-ns");
    CHROOTCTL_REQUIRE_TOOL("mkfs.erofs");
    ASSERT_TRUE(have_device_mapper()) << "no /dev/mapper/control: this kernel has no device-mapper (the VM stage has)";
  }
};

TEST_F(VerityImage, AFlippedByteFailsTheReadThatTouchesItWithEio) {
  build("eio");
  ASSERT_GT(flip_byte_of(image, marker_text()), 0);
  const std::string status = path("status.json");
  // The launch goes ahead (nothing is read at launch); the read of the changed block fails,
  // and the launch reports what dm-verity saw.
  auto r = ctl({"run", "eio", "--store", store, "--sandbox", sandbox, "--user", "nobody", "--status-json", status, "--", "/bin/sh", "-c",
                "cat /etc/passwd >/dev/null && echo passwd=ok; cat /srv/marker >/dev/null; echo marker=$?"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "passwd=ok\nmarker=1\n");
  EXPECT_NE(r.err.find("cat: read error: Input/output error"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("chrootctl run: error: dm-verity found a corrupted block in the sealed image " + image +
                       ": a read of it failed with EIO (the image file was changed on disk; run 'chrootctl verify eio')"),
            std::string::npos)
      << r.err;
  const std::string json = read_file(status);
  EXPECT_EQ(json_value(json, "verity"), "corrupted") << json;
  expect_nothing_left();
}

TEST_F(VerityImage, AnIntactImageReportsVerified) {
  build("intact");
  const std::string status = path("status.json");
  auto r = ctl({"run", "intact", "--store", store, "--sandbox", sandbox, "--user", "nobody", "--status-json", status, "--", "/bin/sh", "-c",
                "cat /srv/marker | wc -c"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "16384\n");
  EXPECT_EQ(json_value(read_file(status), "verity"), "verified");
  // While a mount is held, the dm-verity device is the filesystem's: read-only, named chrootctl-*.
  ASSERT_EQ(ctl({"mount", "intact", "--store", store}).exit_code, 0);
  EXPECT_EQ(chrootctl_dm_devices().size(), 1u);
  const std::string name = chrootctl_dm_devices().empty() ? "" : chrootctl_dm_devices()[0];
  EXPECT_EQ(test::sh("for d in /sys/block/dm-*; do [ \"$(cat $d/dm/name)\" = '" + name + "' ] && cat $d/ro; done").out, "1\n");
  ASSERT_EQ(ctl({"unmount", "intact", "--store", store}).exit_code, 0);
  expect_nothing_left();
}

}  // namespace
}  // namespace chrootctl
