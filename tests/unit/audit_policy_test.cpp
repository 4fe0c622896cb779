// The audit policy file: allow-lists, severities, ignores, and FILE:LINE:COL errors.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chrootctl/audit/policy.hpp"
#include "test_support.hpp"

namespace chrootctl::audit {
namespace {

const std::string k_sha(64, 'a');

Result<Policy> parse(const std::string& text) {
  auto doc = parse_toml(text, "audit.toml");
  if (!doc) return tl::unexpected(doc.error());
  return parse_policy(*doc);
}

std::string error_of(const std::string& text) {
  auto p = parse(text);
  EXPECT_FALSE(p) << "policy was accepted:\n" << text;
  return p ? std::string() : p.error().message();
}

TEST(AuditPolicy, ParsesEverySection) {
  auto p = parse(
      "[allow]\n"
      "builtin_devices = true\n"
      "[[allow.setuid]]\n"
      "path = \"/usr/bin/passwd\"\n"
      "sha256 = \"" +
      k_sha +
      "\"\n"
      "[[allow.capability]]\n"
      "path = \"/usr/bin/ping\"\n"
      "sha256 = \"" +
      k_sha +
      "\"\n"
      "capabilities = [\"CAP_NET_RAW\"]\n"
      "[[allow.device]]\n"
      "path = \"/dev/fuse\"\n"
      "type = \"char\"\n"
      "major = 10\n"
      "minor = 229\n"
      "[[allow.device]]\n"
      "path = \"/run/initctl\"\n"
      "type = \"fifo\"\n"
      "[[allow.account]]\n"
      "name = \"toor\"\n"
      "uid = 0\n"
      "[severity]\n"
      "\"symlink.absolute\" = \"low\"\n"
      "[[ignore]]\n"
      "check = \"owner.non-root\"\n"
      "path = \"/var/cache/man/**\"\n"
      "reason = \"  man-db keeps its cache as user man  \"\n");
  ASSERT_TRUE(p) << p.error().what();
  EXPECT_EQ(p->source, "audit.toml");
  ASSERT_EQ(p->setuid.size(), 1u);
  EXPECT_EQ(p->setuid[0].path, "/usr/bin/passwd");
  ASSERT_EQ(p->capabilities.size(), 1u);
  EXPECT_EQ(*p->capabilities[0].capabilities, std::vector<std::string>{"cap_net_raw"});
  // Two of the policy's own and the eight built-in ones.
  ASSERT_EQ(p->devices.size(), 10u);
  EXPECT_EQ(p->devices[0].path, "/dev/fuse");
  EXPECT_EQ(p->devices[0].major, 10u);
  EXPECT_EQ(p->devices[1].type, manifest::Type::fifo);
  ASSERT_EQ(p->accounts.size(), 1u);
  EXPECT_EQ(p->accounts[0].uid, 0u);
  EXPECT_EQ(p->severity_of("symlink.absolute"), Severity::low);
  EXPECT_EQ(p->severity_of("setuid.script"), Severity::high);
  ASSERT_EQ(p->ignores.size(), 1u);
  EXPECT_EQ(p->ignores[0].reason, "man-db keeps its cache as user man");
  Finding f{"owner.non-root", Severity::low, "/var/cache/man/de", "", "", {}, {}};
  EXPECT_NE(p->ignore_for(f), nullptr);
  f.path = "/var/cache/mandb";
  EXPECT_EQ(p->ignore_for(f), nullptr);
  f.path = "/var/cache/man/de";
  f.check = "owner.unknown-uid";
  EXPECT_EQ(p->ignore_for(f), nullptr);
}

TEST(AuditPolicy, BuiltinDevicesCanBeDroppedOrReplaced) {
  auto none = parse("[allow]\nbuiltin_devices = false\n");
  ASSERT_TRUE(none) << none.error().what();
  EXPECT_TRUE(none->devices.empty());
  auto replaced = parse("[[allow.device]]\npath = \"/dev/null\"\ntype = \"char\"\nmajor = 1\nminor = 99\n");
  ASSERT_TRUE(replaced) << replaced.error().what();
  EXPECT_EQ(replaced->devices.size(), 8u);
  const auto it = std::find_if(replaced->devices.begin(), replaced->devices.end(), [](const DeviceAllow& d) { return d.path == "/dev/null"; });
  EXPECT_EQ(it->minor, 99u);
  EXPECT_EQ(default_policy().devices.size(), 8u);
}

TEST(AuditPolicy, UnknownKeyHasLineColumnAndSuggestion) {
  EXPECT_EQ(error_of("[[allow.setuid]]\npath = \"/usr/bin/su\"\nsha265 = \"x\"\n"),
            "audit.toml:1:1: error: missing required key 'allow.setuid[1].sha256' (a string)\n"
            " 1 | [[allow.setuid]]\n"
            "   | ^\n"
            "audit.toml:3:1: error: unknown key 'allow.setuid[1].sha265' (did you mean 'sha256'?)\n"
            " 3 | sha265 = \"x\"\n"
            "   | ^\n"
            "2 errors in audit.toml");
}

TEST(AuditPolicy, EveryMistakeIsReportedAtOnce) {
  const std::string msg = error_of(
      "[[allow.setuid]]\n"                  // 1
      "path = \"usr/bin/su\"\n"             // 2
      "sha256 = \"ABC\"\n"                  // 3
      "[[allow.device]]\n"                  // 4
      "path = \"/dev/sda\"\n"               // 5
      "type = \"disk\"\n"                   // 6
      "[[allow.device]]\n"                  // 7
      "path = \"/run/fifo\"\n"              // 8
      "type = \"fifo\"\n"                   // 9
      "major = 1\n"                         // 10
      "[severity]\n"                        // 11
      "\"setuid.unlistd\" = \"high\"\n"     // 12
      "\"setuid.script\" = \"critical\"\n"  // 13
      "[[ignore]]\n"                        // 14
      "check = \"owner.non-root\"\n"        // 15
      "reason = \"   \"\n"                  // 16
      "[[ignore]]\n"                        // 17
      "check = \"owner.nonroot\"\n"         // 18
      "path = \"var/x\"\n"                  // 19
      "reason = \"x\"\n"                    // 20
      "[[allow.account]]\n"                 // 21
      "name = \"svc\"\n");                  // 22
  for (const char* want : {
           "audit.toml:2:1: error: path must be an absolute path without '.', '..', '//' or a trailing '/' ('usr/bin/su')\n",
           "audit.toml:3:1: error: sha256 must be 64 lowercase hex digits ('ABC')\n",
           "audit.toml:6:1: error: type must be 'char', 'block', 'fifo' or 'socket', not 'disk'\n",
           "audit.toml:10:1: error: major is only for 'char' and 'block' devices\n",
           "audit.toml:12:1: error: unknown check 'setuid.unlistd' (did you mean 'setuid.unlisted'?)\n",
           "audit.toml:13:19: error: severity of 'setuid.script' must be 'info', 'low', 'medium' or 'high'\n",
           "audit.toml:16:1: error: reason must say why the finding is ignored\n",
           "audit.toml:18:1: error: unknown check 'owner.nonroot' (did you mean 'owner.non-root'?)\n",
           "audit.toml:19:1: error: path must be an absolute path pattern ('var/x')\n",
           "audit.toml:22:1: error: allow.account 'svc' allows nothing: give 'uid' or 'password = true'\n",
       })
    EXPECT_NE(msg.find(want), std::string::npos) << "missing: " << want << "in:\n" << msg;
  EXPECT_NE(msg.find("\n10 errors in audit.toml"), std::string::npos) << msg;
}

TEST(AuditPolicy, MissingReasonAndDuplicatePaths) {
  EXPECT_EQ(error_of("[[ignore]]\ncheck = \"symlink.absolute\"\n"),
            "audit.toml:1:1: error: missing required key 'ignore[1].reason' (a string)\n"
            " 1 | [[ignore]]\n"
            "   | ^");
  const std::string dup = error_of("[[allow.setuid]]\npath = \"/usr/bin/su\"\nsha256 = \"" + k_sha +
                                   "\"\n[[allow.setuid]]\npath = \"/usr/bin/su\"\nsha256 = \"" + k_sha + "\"\n");
  EXPECT_EQ(dup.substr(0, dup.find('\n')), "audit.toml:5:1: error: duplicate path '/usr/bin/su' in allow.setuid (first on line 2)");
  EXPECT_NE(error_of("[[allow.capability]]\npath = \"/x\"\nsha256 = \"" + k_sha + "\"\ncapabilities = [\"cap_fly\"]\n")
                .find("audit.toml:4:1: error: unknown capability 'cap_fly' (names look like 'cap_net_raw')"),
            std::string::npos);
}

TEST(AuditPolicy, PathPatterns) {
  EXPECT_TRUE(path_matches("/usr/bin/su", "/usr/bin/su"));
  EXPECT_FALSE(path_matches("/usr/bin/su", "/usr/bin/sudo"));
  EXPECT_TRUE(path_matches("/home/*/.bash_history", "/home/alice/.bash_history"));
  EXPECT_FALSE(path_matches("/home/*/.bash_history", "/home/alice/x/.bash_history"));
  EXPECT_TRUE(path_matches("/home/**/.bash_history", "/home/alice/x/.bash_history"));
  EXPECT_TRUE(path_matches("/a/**/b", "/a/b"));
  EXPECT_TRUE(path_matches("/var/**", "/var/a/b/c"));
  EXPECT_FALSE(path_matches("/var/**", "/var"));
  EXPECT_TRUE(path_matches("/dev/tty?", "/dev/tty1"));
  EXPECT_FALSE(path_matches("/dev/tty?", "/dev/tty/"));
  EXPECT_TRUE(path_matches("/etc/*.key", "/etc/x.key"));
}

class AuditPolicyFile : public test::TempDirTest {};

TEST_F(AuditPolicyFile, RefusesAPolicyOthersCanWrite) {
  const std::string f = path("audit.toml");
  test::write_file(f, "[severity]\n\"symlink.absolute\" = \"high\"\n", 0666);
  auto p = load_policy(f);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().message(),
            "audit policy " + f + " is writable by group or others: whoever can write it can hide findings (chmod go-w " + f + ")");
  ASSERT_EQ(::chmod(f.c_str(), 0644), 0);
  auto ok = load_policy(f);
  ASSERT_TRUE(ok) << ok.error().what();
  EXPECT_EQ(ok->severity_of("symlink.absolute"), Severity::high);
  auto missing = load_policy(path("nope.toml"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().what(),
            "reading audit policy " + path("nope.toml") + ": open('" + path("nope.toml") + "', O_RDONLY|O_NOFOLLOW): No such file or directory");
}

TEST_F(AuditPolicyFile, ExplicitPathThenEnvironment) {
  const std::string f = path("env.toml");
  test::write_file(f, "[severity]\n\"symlink.absolute\" = \"medium\"\n", 0600);
  ASSERT_EQ(::setenv("CHROOTCTL_AUDIT_POLICY", f.c_str(), 1), 0);
  auto p = load_site_policy(std::nullopt);
  ASSERT_EQ(::unsetenv("CHROOTCTL_AUDIT_POLICY"), 0);
  ASSERT_TRUE(p) << p.error().what();
  EXPECT_EQ(p->source, f);
  EXPECT_EQ(p->severity_of("symlink.absolute"), Severity::medium);
}

}  // namespace
}  // namespace chrootctl::audit
