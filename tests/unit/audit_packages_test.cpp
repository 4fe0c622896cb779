// Package lists from dpkg status files and rpm query output; locating databases in an image.
#include <gtest/gtest.h>
#include <unistd.h>

#include "chrootctl/audit/packages.hpp"
#include "test_support.hpp"

namespace chrootctl::audit {
namespace {

const char* k_status =
    "Package: libc6\n"
    "Status: install ok installed\n"
    "Architecture: amd64\n"
    "Version: 2.36-9+deb12u4\n"
    "Description: GNU C Library\n"
    " continuation line\n"
    " .\n"
    "\n"
    "Package: removed-thing\n"
    "Status: deinstall ok config-files\n"
    "Version: 1.0\n"
    "Architecture: all\n"
    "\n"
    "Package: base-files\n"
    "Status: install ok unpacked\n"
    "Version: 12.4+deb12u5\n"
    "Architecture: amd64\n"
    "\n"
    "\n"
    "Package: libc6\n"
    "Status: install ok installed\n"
    "Architecture: i386\n"
    "Version: 2.36-9+deb12u4\n";

TEST(AuditPackages, ParsesDpkgStatus) {
  auto p = parse_dpkg_status(k_status, "status");
  ASSERT_TRUE(p) << p.error().what();
  EXPECT_EQ(
      *p, (std::vector<Package>{{"base-files", "12.4+deb12u5", "amd64"}, {"libc6", "2.36-9+deb12u4", "amd64"}, {"libc6", "2.36-9+deb12u4", "i386"}}));
}

TEST(AuditPackages, DpkgStatusErrorsNameTheLine) {
  EXPECT_EQ(parse_dpkg_status("Status: install ok installed\nVersion: 1\n", "s").error().message(), "s:1: stanza without a Package field");
  EXPECT_EQ(parse_dpkg_status("Package: a\nStatus: install ok installed\n", "s").error().message(), "s:1: package 'a' has no Version field");
  EXPECT_EQ(parse_dpkg_status("Package: a\nStatus: broken\nVersion: 1\n", "s").error().message(), "s:1: package 'a' has no valid Status field");
  EXPECT_EQ(parse_dpkg_status("Package: a\nthis is not a field\n", "s").error().message(), "s:2: not a 'Field: value' line");
  EXPECT_EQ(parse_dpkg_status(" lonely continuation\n", "s").error().message(), "s:1: continuation line outside a stanza");
  auto empty = parse_dpkg_status("", "s");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
}

TEST(AuditPackages, ParsesRpmQueryOutput) {
  auto p = parse_rpm_query("bash\t5.1.8-9.el9\tx86_64\ngpg-pubkey\t8483c65d-5ccc5b19\t(none)\nkernel\t1:5.14.0-1\tx86_64\n");
  ASSERT_TRUE(p) << p.error().what();
  EXPECT_EQ(*p,
            (std::vector<Package>{{"bash", "5.1.8-9.el9", "x86_64"}, {"gpg-pubkey", "8483c65d-5ccc5b19", ""}, {"kernel", "1:5.14.0-1", "x86_64"}}));
  EXPECT_EQ(parse_rpm_query("bash 5.1\n").error().message(), "rpm output line 1: expected NAME, VERSION and ARCH separated by tabs: 'bash 5.1'");
}

class AuditPackageTree : public test::TempDirTest {};

TEST_F(AuditPackageTree, ReadsDpkgStatusInsideTheImage) {
  test::mkdirs(path("root/var/lib/dpkg"));
  test::write_file(path("root/var/lib/dpkg/status"), k_status);
  auto p = read_packages(path("root"));
  ASSERT_TRUE(p) << p.error().what();
  EXPECT_EQ(p->source, PackageList::Source::dpkg);
  EXPECT_EQ(p->database, "/var/lib/dpkg/status");
  EXPECT_EQ(p->packages.size(), 3u);
}

TEST_F(AuditPackageTree, SymlinksAreResolvedInsideTheImage) {
  // An absolute symlink in the image must lead to the image's file, never the host's.
  test::mkdirs(path("root/var/lib/dpkg"));
  test::mkdirs(path("root/srv"));
  test::mkdirs(path("host/srv"));
  test::write_file(path("host/srv/status"), "Package: host-only\nStatus: install ok installed\nVersion: 9\n");
  test::write_file(path("root/srv/status"), "Package: image-only\nStatus: install ok installed\nVersion: 1\n");
  ASSERT_EQ(::symlink((path("host") + "/srv/status").c_str(), path("root/var/lib/dpkg/status").c_str()), 0);
  auto p = read_packages(path("root"));
  // The link's target does not exist inside the image: there is no status file there.
  ASSERT_TRUE(p) << p.error().what();
  EXPECT_EQ(p->source, PackageList::Source::none);
  ASSERT_EQ(::unlink(path("root/var/lib/dpkg/status").c_str()), 0);
  ASSERT_EQ(::symlink("/srv/status", path("root/var/lib/dpkg/status").c_str()), 0);
  auto q = read_packages(path("root"));
  ASSERT_TRUE(q) << q.error().what();
  ASSERT_EQ(q->packages.size(), 1u);
  EXPECT_EQ(q->packages[0].name, "image-only");
}

TEST_F(AuditPackageTree, AStatusThatIsNotAFileIsAnError) {
  test::mkdirs(path("root/var/lib/dpkg/status"));
  auto p = read_packages(path("root"));
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().what(), "opening /var/lib/dpkg/status: /var/lib/dpkg/status in the image is not a regular file");
}

TEST_F(AuditPackageTree, NoDatabaseAndUnreadableDatabases) {
  test::mkdirs(path("root/etc"));
  auto none = read_packages(path("root"));
  ASSERT_TRUE(none) << none.error().what();
  EXPECT_EQ(none->source, PackageList::Source::none);

  test::mkdirs(path("root/var/lib/rpm"));
  auto empty_dir = read_packages(path("root"));
  ASSERT_TRUE(empty_dir);
  EXPECT_EQ(empty_dir->source, PackageList::Source::none);

  test::write_file(path("root/var/lib/rpm/Packages.db"), "ndb");
  auto ndb = read_packages(path("root"));
  ASSERT_TRUE(ndb);
  EXPECT_EQ(ndb->source, PackageList::Source::unknown);
  EXPECT_EQ(ndb->note, "the rpm database /var/lib/rpm/Packages.db is in ndb format, which this host's rpm cannot read");

  test::write_file(path("root/var/lib/rpm/rpmdb.sqlite"), "not really sqlite");
  ASSERT_EQ(::setenv("CHROOTCTL_RPM", path("no-rpm-here").c_str(), 1), 0);
  auto no_rpm = read_packages(path("root"));
  ::unsetenv("CHROOTCTL_RPM");
  ASSERT_TRUE(no_rpm);
  EXPECT_EQ(no_rpm->source, PackageList::Source::unknown);
  EXPECT_EQ(no_rpm->note, "the image has an rpm database (/var/lib/rpm/rpmdb.sqlite) but this host has no rpm (install the Debian package 'rpm')");
}

}  // namespace
}  // namespace chrootctl::audit
