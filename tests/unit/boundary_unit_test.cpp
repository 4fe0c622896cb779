// The host boundary's pure parts: terminal-safe text, TOML diagnostics that quote hostile
// input, manifest size limits and strip records, the privilege policy shared by builds and
// imports, and the import's strip plan. The job-ad parser is in boundary_jobad_test.cpp.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "chrootctl/common/manifest.hpp"
#include "chrootctl/common/privilege.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/toml.hpp"
#include "chrootctl/distribution/export.hpp"
#include "test_support.hpp"

namespace chrootctl {
namespace {

namespace cat = catalogue;
namespace dist = distribution;
namespace mf = manifest;

// ---- terminal-safe text ----

TEST(TerminalSafe, ControlBytesAndInvalidUtf8AreEscapedValidTextIsKept) {
  EXPECT_EQ(terminal_safe("plain text, tabs\tand all"), "plain text, tabs\tand all");
  EXPECT_EQ(terminal_safe("\x1b]0;owned\x07 \x1b[2J"), "\\x1b]0;owned\\x07 \\x1b[2J");
  EXPECT_EQ(terminal_safe(std::string("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(terminal_safe("\xff\xfe"), "\\xff\\xfe");
  EXPECT_EQ(terminal_safe("caf\xc3\xa9 \xe2\x9c\x93"), "caf\xc3\xa9 \xe2\x9c\x93") << "valid UTF-8 is shown as it is";
  EXPECT_EQ(terminal_safe("\xc2\x9b"
                          "31m"),
            "\\xc2\\x9b31m")
      << "C1 CSI encoded in UTF-8";
  EXPECT_EQ(terminal_safe("\xe2\x80\xae"
                          "txt.exe"),
            "\\xe2\\x80\\xaetxt.exe")
      << "a right-to-left override";
  EXPECT_EQ(terminal_safe("\xc0\xaf"), "\\xc0\\xaf") << "an overlong form";
  EXPECT_EQ(terminal_safe("\xed\xa0\x80"), "\\xed\\xa0\\x80") << "a surrogate";
  EXPECT_EQ(terminal_safe("a\nb\r"), "a\\x0ab\\x0d");
  EXPECT_EQ(terminal_safe("a\nb\r", true), "a\nb\\x0d");
  EXPECT_EQ(terminal_safe("\x7f"), "\\x7f");
  // Safe text comes back unchanged, so printing applies it again harmlessly.
  const std::string once = terminal_safe("\x1b[31m\xff");
  EXPECT_EQ(terminal_safe(once), once);
}

TEST(TerminalSafe, QuoteEscapesEverythingTerminalSafeDoesAndItsOwnDelimiters) {
  EXPECT_EQ(quote("it's a\\b"), "'it\\x27s a\\x5cb'");
  EXPECT_EQ(quote(std::string("\x1b\x07\0\xff\t\n", 6)), "'\\x1b\\x07\\x00\\xff\\x09\\x0a'");
  EXPECT_EQ(quote("M\xc3\xbcller"), "'M\xc3\xbcller'");
}

TEST(TerminalSafe, TomlDiagnosticsShowTheSourceLineEscapedWithTheCaretInPlace) {
  // ESC and BEL in a recipe: TOML refuses control characters in strings, and the diagnostic
  // that shows the line holds none of them raw.
  auto esc = parse_toml("name = \"x\"\npakages = \"\x1b]0;pwned\x07\"\n", "recipes/x.toml");
  ASSERT_FALSE(esc);
  EXPECT_NE(esc.error().what().find("\n 2 | pakages = \"\\x1b]0;pwned\\x07\"\n"), std::string::npos) << esc.error().what();
  // A key reader's error on such a line (as a catalogue or recipe error would be shown).
  TomlDocument doc{"recipes/x.toml", "name = \"x\"\npakages = \"\x1b]0;pwned\x07\"\n", {}};
  EXPECT_EQ(render_diagnostic(doc, {2, 1}, "unknown key 'pakages'"),
            "recipes/x.toml:2:1: error: unknown key 'pakages'\n 2 | pakages = \"\\x1b]0;pwned\\x07\"\n   | ^\n");
  // The caret stays under its character when escapes come before it.
  TomlDocument doc2{"c.toml", "a = \"\x1b\x07\" # \xc3\xa9 x", {}};
  const std::string r2 = render_diagnostic(doc2, {1, 14}, "here");
  EXPECT_EQ(r2, "c.toml:1:14: error: here\n 1 | a = \"\\x1b\\x07\" # \xc3\xa9 x\n   |                    ^\n");
  // A syntax error on a line with NUL and 0xff, and a file name with ESC.
  auto bad = parse_toml(std::string("x = \"\0\xff\"\n", 9), "\x1b[2Jevil.toml");
  ASSERT_FALSE(bad);
  const std::string msg = bad.error().what();
  for (char c : msg) {
    const auto u = static_cast<unsigned char>(c);
    EXPECT_TRUE(u == '\n' || (u >= 0x20 && u < 0x7f)) << "raw byte " << int(u) << " in: " << msg;
  }
  EXPECT_TRUE(msg.starts_with("\\x1b[2Jevil.toml:1:")) << msg;
}

// ---- manifests: size limits and strip records ----

class ManifestLimits : public test::TempDirTest {};

TEST_F(ManifestLimits, LoadRefusesDevicesAndOversizeFilesBeforeReadingThem) {
  auto z = mf::load("/dev/zero");
  ASSERT_FALSE(z);
  EXPECT_EQ(z.error().what(), "reading manifest /dev/zero: not a regular file");
  const std::string big = path("big");
  {
    test::write_file(big, "");
    ASSERT_EQ(::truncate(big.c_str(), static_cast<off_t>(mf::k_manifest_limit) + 1), 0);
  }
  auto b = mf::load(big);
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().what(), str("reading manifest ", big, ": it is 512.0 MiB, larger than the limit of 512.0 MiB"));
  test::write_file(path("zeros"), std::string(4096, '\0'));
  auto zs = mf::load(path("zeros"));
  ASSERT_FALSE(zs);
  EXPECT_EQ(zs.error().what(), str(path("zeros"), ":1: not a chrootctl manifest (expected '#chrootctl-manifest 1' on the first line)"));
}

mf::Entry entry(std::string path, mf::Type t, std::uint32_t mode) {
  mf::Entry e;
  e.path = std::move(path);
  e.type = t;
  e.mode = mode;
  if (t == mf::Type::file) e.sha256 = std::string(64, 'a');
  return e;
}

mf::Manifest privileged_tree() {
  mf::Manifest m;
  m.entries.push_back(entry("/", mf::Type::dir, 0755));
  m.entries.push_back(entry("/dev", mf::Type::dir, 0755));
  auto null = entry("/dev/null", mf::Type::chardev, 0666);
  null.rdev_major = 1;
  null.rdev_minor = 3;
  m.entries.push_back(null);
  m.entries.push_back(entry("/usr", mf::Type::dir, 0755));
  auto ping = entry("/usr/ping", mf::Type::file, 0755);
  ping.xattrs.push_back({"security.capability", std::string("\x01\x00\x00\x02\x00\x20\x00\x00", 8) + std::string(12, '\0')});
  m.entries.push_back(ping);
  m.entries.push_back(entry("/usr/su", mf::Type::file, 04755));
  auto sg = entry("/usr/wall", mf::Type::file, 02755);
  sg.gid = 5;
  m.entries.push_back(sg);
  m.entries.push_back(entry("/usr/zz", mf::Type::file, 0644));
  return m;
}

TEST(PrivilegePolicy, OneDecisionForBuildsAndImports) {
  PrivilegePolicy p;  // the builder's defaults: clear-bit, drop capabilities, remove devices
  auto m = privileged_tree();
  auto a = privilege_actions(*m.find("/usr/su"), p);
  EXPECT_TRUE(a.clear_setuid);
  EXPECT_FALSE(a.remove);
  EXPECT_TRUE(privilege_actions(*m.find("/dev/null"), p).remove);
  EXPECT_TRUE(privilege_actions(*m.find("/usr/ping"), p).drop_capability);
  EXPECT_FALSE(privilege_actions(*m.find("/usr/zz"), p).changes());
  p.setuid = SetuidPolicy::remove;
  p.allow_setuid = {"/usr/wall"};
  p.allow_capabilities = {"/usr/ping"};
  p.devices = false;
  EXPECT_TRUE(privilege_actions(*m.find("/usr/su"), p).remove);
  EXPECT_EQ(privilege_actions(*m.find("/usr/wall"), p).setuid_kept, PrivilegeActions::Kept::allow_list);
  EXPECT_EQ(privilege_actions(*m.find("/usr/ping"), p).capability_kept, PrivilegeActions::Kept::allow_list);
  EXPECT_FALSE(privilege_actions(*m.find("/dev/null"), p).changes());
  EXPECT_EQ(mf::privilege_of(*m.find("/usr/su")), "setuid root (mode 4755)");
  EXPECT_EQ(mf::privilege_of(*m.find("/usr/wall")), "setgid gid 5 (mode 2755)");
  EXPECT_EQ(mf::privilege_of(*m.find("/dev/null")), "character device 1,3");
  EXPECT_EQ(mf::privilege_of(*m.find("/usr/ping")), "file capability");
  EXPECT_EQ(mf::privilege_of(*m.find("/usr/zz")), std::nullopt);
}

TEST(StripRecords, AStrippedManifestLeadsBackToTheSignedDigestAndRoundTrips) {
  const auto m = privileged_tree();
  auto plan = dist::plan_import_strip(m, PrivilegePolicy{});
  ASSERT_TRUE(plan) << plan.error().what();
  ASSERT_EQ(plan->changes.size(), 4u);
  EXPECT_EQ(plan->changes[0].path, "/dev/null");
  EXPECT_EQ(plan->changes[0].action, "device-removed");
  EXPECT_EQ(plan->changes[1].action, "capability-dropped");
  EXPECT_EQ(plan->changes[2].action, "setuid-cleared");
  const auto& d = plan->result;
  EXPECT_EQ(d.stripped_from, mf::digest(m));
  EXPECT_EQ(d.find("/dev/null"), nullptr);
  EXPECT_EQ(d.find("/usr/su")->mode, 0755u);
  EXPECT_TRUE(d.find("/usr/ping")->xattrs.empty());
  EXPECT_EQ(mf::original_digest(d).value(), mf::digest(m));
  const std::string text = mf::serialize(d);
  EXPECT_NE(text.find("\n#stripped-from sha256:" + mf::digest(m) + "\n#stripped device-removed /dev/null type=c mode=0666 uid=0 gid=0 rdev=1,3\n"),
            std::string::npos)
      << text;
  auto back = mf::parse(text, "m");
  ASSERT_TRUE(back) << back.error().what();
  EXPECT_EQ(mf::digest(*back), mf::digest(d));
  EXPECT_EQ(back->stripped.size(), 4u);
  EXPECT_NE(mf::digest(d), mf::digest(m)) << "the records are part of the digest";
}

TEST(StripRecords, ARecordThatHidesMoreThanAPrivilegeIsRefused) {
  const auto m = privileged_tree();
  auto plan = dist::plan_import_strip(m, PrivilegePolicy{});
  ASSERT_TRUE(plan);
  // A forged derivation: a "setuid-cleared" record whose entry has other contents now. The
  // signed digest still comes out right, so only the check of each record catches it.
  auto forged = plan->result;
  for (auto& e : forged.entries)
    if (e.path == "/usr/su") e.sha256 = std::string(64, 'b');
  auto o = mf::original_digest(forged);
  ASSERT_FALSE(o);
  EXPECT_EQ(o.error().message(), "strip record '/usr/su' differs from its record by more than 'setuid-cleared'");
  // A record that claims a plain file was removed for being setuid.
  auto removed = plan->result;
  std::erase_if(removed.entries, [](const mf::Entry& e) { return e.path == "/usr/zz"; });
  removed.stripped.push_back({"setuid-removed", *m.find("/usr/zz")});
  std::sort(removed.stripped.begin(), removed.stripped.end(), [](const auto& a, const auto& b) { return a.original.path < b.original.path; });
  o = mf::original_digest(removed);
  ASSERT_FALSE(o);
  EXPECT_EQ(o.error().message(), "strip record '/usr/zz' is not in the tree, but its record says 'setuid-removed'");
  // Such a manifest does not parse either.
  auto p = mf::parse(mf::serialize(forged), "forged");
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().what(), "forged: strip record '/usr/su' differs from its record by more than 'setuid-cleared'");
}

TEST(StripRecords, HardLinksTreatedDifferentlyAreRefused) {
  auto m = privileged_tree();
  auto a = entry("/usr/su", mf::Type::file, 04755);
  a.link = "/usr/su";
  auto b = entry("/usr/su2", mf::Type::file, 04755);
  b.link = "/usr/su";
  for (auto& e : m.entries)
    if (e.path == "/usr/su") e = a;
  m.entries.insert(m.entries.begin() + 6, b);
  PrivilegePolicy p;
  p.allow_setuid = {"/usr/su2"};
  auto plan = dist::plan_import_strip(m, p);
  ASSERT_FALSE(plan);
  EXPECT_EQ(plan.error().what(),
            "'/usr/su' and '/usr/su2' are hard links to one file, but the strip policy treats them differently "
            "(list every path of the group on the allow-list, or none)");
}

}  // namespace
}  // namespace chrootctl
