// Comparing two images: privilege changes first, entries by field, packages by version.
#include <gtest/gtest.h>

#include "chrootctl/audit/audit.hpp"
#include "chrootctl/audit/diff.hpp"

namespace chrootctl::audit {
namespace {

using manifest::Entry;
using manifest::Type;

Entry file(const std::string& p, std::uint32_t mode, const std::string& sha, std::uint32_t uid = 0) {
  Entry e;
  e.path = p;
  e.type = Type::file;
  e.mode = mode;
  e.uid = uid;
  e.size = 10;
  e.sha256 = sha;
  return e;
}
Entry dir(const std::string& p) {
  Entry e;
  e.path = p;
  e.type = Type::dir;
  e.mode = 0755;
  return e;
}
const std::string A(64, 'a'), B(64, 'b');
const std::string k_raw_caps = std::string("\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 20);  // cap_net_raw=ep

manifest::Manifest old_tree() {
  manifest::Manifest m;
  m.entries = {dir("/"),
               dir("/usr"),
               dir("/usr/bin"),
               file("/usr/bin/gone", 04755, A),
               file("/usr/bin/passwd", 04755, A),
               file("/usr/bin/ping", 0755, A),
               file("/usr/bin/plain", 0755, A),
               file("/usr/bin/su", 04755, A),
               file("/usr/bin/wall", 02755, A)};
  m.entries[5].xattrs = {{"security.capability", k_raw_caps}};
  m.entries[6].mtime_sec = 1;
  return m;
}

manifest::Manifest new_tree() {
  manifest::Manifest m;
  m.entries = {dir("/"),
               dir("/usr"),
               dir("/usr/bin"),
               file("/usr/bin/newsuid", 04755, A, 1000),
               file("/usr/bin/passwd", 04755, B),
               file("/usr/bin/ping", 0755, A),
               file("/usr/bin/plain", 0644, A),
               file("/usr/bin/su", 0755, A),
               file("/usr/bin/wall", 02755, A)};
  m.entries[6].mtime_sec = 2;
  return m;
}

TEST(AuditDiff, PrivilegeChangesAreCalledOut) {
  auto d = compare_images(old_tree(), new_tree(), nullptr, nullptr);
  ASSERT_EQ(d.privileged.size(), 5u);
  EXPECT_EQ(d.privileged[0].path, "/usr/bin/gone");
  EXPECT_EQ(d.privileged[0].kind, PrivilegeChange::Kind::removed);
  EXPECT_EQ(d.privileged[0].changes, std::vector<std::string>{"setuid uid 0"});
  EXPECT_EQ(d.privileged[1].path, "/usr/bin/newsuid");
  EXPECT_EQ(d.privileged[1].kind, PrivilegeChange::Kind::added);
  EXPECT_EQ(d.privileged[1].changes, std::vector<std::string>{"setuid uid 1000"});
  EXPECT_EQ(d.privileged[2].path, "/usr/bin/passwd");
  EXPECT_EQ(d.privileged[2].changes, std::vector<std::string>{"contents changed (sha256 " + A + " -> " + B + ")"});
  EXPECT_EQ(d.privileged[3].path, "/usr/bin/ping");
  EXPECT_EQ(d.privileged[3].changes, std::vector<std::string>{"capabilities cap_net_raw=ep -> -"});
  EXPECT_EQ(d.privileged[4].path, "/usr/bin/su");
  EXPECT_EQ(d.privileged[4].changes, std::vector<std::string>{"setuid removed"});
  // /usr/bin/wall is setgid on both sides and unchanged: not listed.
  EXPECT_EQ(d.mtime_only, 0u);  // plain's mode changed too, so it is a real change
  ASSERT_EQ(d.entries.differences.size(), 6u);
  EXPECT_FALSE(d.packages_available);
  EXPECT_TRUE(d.differs());
}

TEST(AuditDiff, MtimeOnlyIsCountedNotListed) {
  auto a = old_tree();
  auto b = old_tree();
  b.entries[4].mtime_sec = 99;
  auto d = compare_images(a, b, nullptr, nullptr);
  EXPECT_FALSE(d.differs());
  EXPECT_EQ(d.mtime_only, 1u);
  EXPECT_TRUE(d.entries.differences.empty());
  EXPECT_TRUE(d.privileged.empty());
}

TEST(AuditDiff, PackagesAddedRemovedAndChanged) {
  PackageList a, b;
  a.source = b.source = PackageList::Source::rpm;
  a.packages = {{"bash", "5.1-1", "x86_64"}, {"kernel", "5.14-1", "x86_64"}, {"kernel", "5.14-2", "x86_64"}, {"old", "1", "noarch"}};
  b.packages = {{"bash", "5.1-2", "x86_64"}, {"kernel", "5.14-2", "x86_64"}, {"kernel", "5.14-3", "x86_64"}, {"new", "2", "noarch"}};
  auto d = compare_images(old_tree(), old_tree(), &a, &b);
  ASSERT_TRUE(d.packages_available);
  ASSERT_EQ(d.packages.size(), 4u);
  EXPECT_EQ(d.packages[0].name, "bash");
  EXPECT_EQ(d.packages[0].kind, PackageChange::Kind::changed);
  EXPECT_EQ(d.packages[0].old_version, "5.1-1");
  EXPECT_EQ(d.packages[0].new_version, "5.1-2");
  EXPECT_EQ(d.packages[1].name, "kernel");  // the installonly kernel: 5.14-1 went, 5.14-3 came
  EXPECT_EQ(d.packages[1].old_version, "5.14-1");
  EXPECT_EQ(d.packages[1].new_version, "5.14-3");
  EXPECT_EQ(d.packages[2].name, "new");
  EXPECT_EQ(d.packages[2].kind, PackageChange::Kind::added);
  EXPECT_EQ(d.packages[3].name, "old");
  EXPECT_EQ(d.packages[3].kind, PackageChange::Kind::removed);
  EXPECT_TRUE(d.differs());

  PackageList unknown;
  unknown.source = PackageList::Source::unknown;
  EXPECT_FALSE(compare_images(old_tree(), old_tree(), &a, &unknown).packages_available);
}

TEST(AuditDiff, TextPutsPrivilegeChangesFirst) {
  PackageList a, b;
  a.source = b.source = PackageList::Source::dpkg;
  a.packages = {{"bash", "5.2-1", "amd64"}};
  b.packages = {{"bash", "5.2-2", "amd64"}};
  auto d = compare_images(old_tree(), new_tree(), &a, &b);
  d.old_side = {"v1", "v1/manifest", "v1/root", {}, {}};
  d.new_side = {"v2", "v2/manifest", "v2/root", {}, {}};
  const std::string text = render_text(d);
  EXPECT_EQ(text.substr(0, text.find("\nentries")),
            "diff v1 -> v2\n"
            "\n"
            "setuid, setgid and capability changes (5)\n"
            "  removed /usr/bin/gone: setuid uid 0\n"
            "  added /usr/bin/newsuid: setuid uid 1000\n"
            "  changed /usr/bin/passwd: contents changed (sha256 " +
                A + " -> " + B +
                ")\n"
                "  changed /usr/bin/ping: capabilities cap_net_raw=ep -> -\n"
                "  changed /usr/bin/su: setuid removed\n");
  EXPECT_NE(text.find("\nentries: 1 added, 1 removed, 4 changed\n"), std::string::npos) << text;
  EXPECT_NE(text.find("  changed /usr/bin/plain mode 0755 -> 0644\n"), std::string::npos) << text;
  EXPECT_NE(text.find("  changed /usr/bin/ping xattr:security.capability AQAAAgAgAAAAAAAAAAAAAAAAAAA= -> -\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\npackages: 0 added, 0 removed, 1 changed version\n  changed bash 5.2-1 -> 5.2-2 (amd64)\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nv1 -> v2: 5 privilege changes, 1 added, 1 removed, 4 changed; packages 0 added, 0 removed, 1 changed\n"), std::string::npos)
      << text;
}

}  // namespace
}  // namespace chrootctl::audit
