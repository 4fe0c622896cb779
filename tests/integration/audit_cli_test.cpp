// `chrootctl audit` and `chrootctl diff` as an administrator runs them: text and JSON reports,
// the documented schema, the severity gate and exit codes, policy errors and allow-lists.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_support.hpp"

namespace chrootctl {
namespace {

using test::run_chrootctl;

const char* k_validate = R"PY(
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
doc = json.load(sys.stdin)
if sys.argv[2] == "diff":
    schema = {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": "#/$defs/diff"}
jsonschema.Draft202012Validator(schema).validate(doc)
print("valid")
)PY";

// "check path [account] severity" per finding, sorted, one per line.
const char* k_findings = R"PY(
import json, sys
doc = json.load(sys.stdin)
rows = []
for img in doc["images"]:
    for f in img.get("findings", []):
        rows.append(" ".join([f["check"], f["path"]] + ([f["account"]] if f["account"] else []) + [f["severity"]]))
print("\n".join(sorted(rows)))
)PY";

class AuditCli : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    build = path("b");
    root = build + "/root";
    make_tree(root);
    create_manifest(build);
    empty_policy = path("empty.toml");
    test::write_file(empty_policy, "", 0644);
    if (::getuid() != 0) {
      // Everything an ordinary user creates is theirs: keep the reports the same as root's.
      test::write_file(empty_policy, "[[ignore]]\ncheck = \"owner.non-root\"\nreason = \"the test runs as an ordinary user\"\n", 0644);
    }
  }

  void make_tree(const std::string& r) {
    test::mkdirs(r + "/etc");
    test::mkdirs(r + "/srv/drop");
    ASSERT_EQ(::chmod((r + "/srv/drop").c_str(), 0777), 0);
    const std::string me = std::to_string(::getuid()), grp = std::to_string(::getgid());
    std::string passwd = "root:x:0:0:root:/root:/bin/sh\n", group = "root:x:0:\n";
    if (::getuid() != 0) passwd += "me:x:" + me + ":" + grp + "::/:/bin/sh\n";
    if (::getgid() != 0) group += "me:x:" + grp + ":\n";
    test::write_file(r + "/etc/passwd", passwd);
    test::write_file(r + "/etc/group", group);
    test::write_file(r + "/etc/motd", "hello\n", 0666);
    ASSERT_EQ(::symlink("/usr/share/zoneinfo/UTC", (r + "/etc/localtime").c_str()), 0);
  }

  void create_manifest(const std::string& b) {
    auto c = run_chrootctl({"manifest", "create", "-q", b + "/root", "-o", b + "/manifest"});
    ASSERT_EQ(c.exit_code, 0) << c.err;
  }

  test::CommandResult audit(std::vector<std::string> args) {
    args.insert(args.begin(), "audit");
    args.push_back("-q");
    if (std::find(args.begin(), args.end(), "--policy") == args.end()) {
      args.push_back("--policy");
      args.push_back(empty_policy);
    }
    return run_chrootctl(args);
  }

  std::string validate(const std::string& json, const std::string& kind = "audit") {
    auto v = test::run({"python3", "-c", k_validate, test::source_dir() + "/docs/audit.schema.json", kind}, json);
    return v.out + v.err;
  }
  std::string findings(const std::string& json) { return test::run({"python3", "-c", k_findings}, json).out; }

  std::string build, root, empty_policy;
};

TEST_F(AuditCli, TextReportIsGroupedBySeverityWithASummaryLine) {
  auto r = audit({build});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.err, "");
  std::string want =
      "audit of " + build + " (" + root +
      "): 8 entries\n"
      "\n"
      "high (1)\n"
      "  world-writable.dir-no-sticky: in a world-writable directory without the sticky bit anyone can delete or replace anyone's files\n"
      "    /srv/drop  mode 0777: anyone can delete or replace what others put here\n"
      "\n"
      "medium (1)\n"
      "  world-writable.file: any user can change a world-writable file\n"
      "    /etc/motd  mode 0666\n"
      "\n"
      "info (1)\n"
      "  symlink.absolute: an absolute symlink points at the host's files when the tree is read from outside the image\n"
      "    /etc/localtime  -> /usr/share/zoneinfo/UTC\n";
  if (::getuid() != 0) {
    want += "\nignored by policy (1)\n  owner.non-root /: the test runs as an ordinary user\n";
  }
  want +=
      "\n"
      "notes\n"
      "  /etc/shadow does not exist\n"
      "  /etc/gshadow does not exist\n"
      "\n" +
      build + ": 1 high, 1 medium, 0 low, 1 info" + (::getuid() != 0 ? " (1 ignored by policy)" : "") +
      "; matches its manifest; no package database\n";
  EXPECT_EQ(r.out, want);
}

TEST_F(AuditCli, SeverityGatesTheExitStatus) {
  EXPECT_EQ(audit({build, "--severity", "high"}).exit_code, 1);
  EXPECT_EQ(audit({build, "--severity", "info"}).exit_code, 1);
  ASSERT_EQ(::chmod((root + "/srv/drop").c_str(), 01777), 0);  // now only medium and info remain
  create_manifest(build);
  EXPECT_EQ(audit({build, "--severity", "high"}).exit_code, 0);
  EXPECT_EQ(audit({build, "--severity", "medium"}).exit_code, 1);
  ASSERT_EQ(::chmod((root + "/etc/motd").c_str(), 0644), 0);
  create_manifest(build);
  EXPECT_EQ(audit({build}).exit_code, 0);  // info does not fail the default gate
  EXPECT_EQ(audit({build, "--severity", "info"}).exit_code, 1);
  auto bad = audit({build, "--severity", "critical"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(bad.err, "chrootctl audit: unknown severity 'critical' (info, low, medium or high)\nTry 'chrootctl audit --help'.\n");
}

TEST_F(AuditCli, JsonValidatesAgainstTheDocumentedSchema) {
  auto r = audit({build, "--json"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(validate(r.out), "valid\n") << r.out;
  EXPECT_EQ(findings(r.out),
            "symlink.absolute /etc/localtime info\n"
            "world-writable.dir-no-sticky /srv/drop high\n"
            "world-writable.file /etc/motd medium\n");
  auto py = test::run(
      {"python3", "-c",
       "import json,sys; d=json.load(sys.stdin); i=d['images'][0];"
       "print(d['gate'], d['summary']['failed'], i['entries'], i['drift'], i['counts'], i['packages']['source'], i['tree_digest'] is not None)"},
      r.out);
  EXPECT_EQ(py.out, "low True 8 {'checked': True, 'differences': 0} {'high': 1, 'medium': 1, 'low': 0, 'info': 1} none True\n") << py.err;

  // An image that cannot be audited is an entry with its error; the others are still reported.
  auto two = audit({build, path("missing"), "--json"});
  EXPECT_EQ(two.exit_code, 2);
  EXPECT_EQ(validate(two.out), "valid\n") << two.out;
  EXPECT_NE(two.out.find("\"error\": \"auditing " + path("missing") + ": stat('" + path("missing") + "'): No such file or directory\""),
            std::string::npos)
      << two.out;
  EXPECT_EQ(two.err, "chrootctl: error: auditing " + path("missing") + ": stat('" + path("missing") + "'): No such file or directory\n");
}

TEST_F(AuditCli, DriftFromTheManifestIsAHighFinding) {
  test::write_file(root + "/etc/motd", "changed\n", 0666);
  test::write_file(root + "/etc/new", "x\n", 0644);
  auto r = audit({build, "--json"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(findings(r.out),
            "drift.added /etc/new high\n"
            "drift.changed /etc/motd high\n"
            "drift.mtime-only /etc info\n"  // a new entry changed the directory's mtime
            "symlink.absolute /etc/localtime info\n"
            "world-writable.dir-no-sticky /srv/drop high\n"
            "world-writable.file /etc/motd medium\n");
  auto t = audit({build});
  EXPECT_NE(t.out.find("\n  drift.changed: an entry differs from the manifest: the image changed after it was recorded\n"
                       "    /etc/motd  size 6 -> 8; sha256 "),
            std::string::npos)
      << t.out;
  EXPECT_NE(t.out.find("; 2 differences from its manifest; no package database\n"), std::string::npos) << t.out;
}

TEST_F(AuditCli, AllowListEntrySuppressesExactlyThatFinding) {
  test::mkdirs(root + "/usr/bin");
  test::write_file(root + "/usr/bin/tool",
                   "\x7f"
                   "ELF tool",
                   04755);
  ASSERT_EQ(::mkfifo((root + "/srv/fifo").c_str(), 0644), 0);
  create_manifest(build);
  const std::string all = findings(audit({build, "--json"}).out);
  ASSERT_NE(all.find("setuid.unlisted /usr/bin/tool medium\n"), std::string::npos) << all;
  ASSERT_NE(all.find("device.fifo /srv/fifo low\n"), std::string::npos) << all;
  auto without = [&](const std::string& line) {
    std::string s = all;
    const auto at = s.find(line + "\n");
    EXPECT_NE(at, std::string::npos) << line;
    return at == std::string::npos ? s : s.erase(at, line.size() + 1);
  };

  const auto sha = run_chrootctl({"manifest", "create", root}).out;
  const auto pos = sha.find("/usr/bin/tool type=f");
  ASSERT_NE(pos, std::string::npos);
  const auto h = sha.find("sha256=", pos);
  const std::string digest = sha.substr(h + 7, 64);
  const std::string base = test::read_file(empty_policy);

  const std::string p1 = path("p1.toml");
  test::write_file(p1, base + "[[allow.setuid]]\npath = \"/usr/bin/tool\"\nsha256 = \"" + digest + "\"\n");
  EXPECT_EQ(findings(audit({build, "--json", "--policy", p1}).out), without("setuid.unlisted /usr/bin/tool medium"));

  const std::string p2 = path("p2.toml");
  test::write_file(p2, base + "[[allow.device]]\npath = \"/srv/fifo\"\ntype = \"fifo\"\n");
  EXPECT_EQ(findings(audit({build, "--json", "--policy", p2}).out), without("device.fifo /srv/fifo low"));

  // The same path with other contents is a mismatch, not a pass.
  const std::string p3 = path("p3.toml");
  test::write_file(p3, base + "[[allow.setuid]]\npath = \"/usr/bin/tool\"\nsha256 = \"" + std::string(64, '0') + "\"\n");
  EXPECT_NE(findings(audit({build, "--json", "--policy", p3}).out).find("setuid.allowlist-mismatch /usr/bin/tool high\n"), std::string::npos);
}

TEST_F(AuditCli, PolicyMistakesAreReportedWithLineAndColumn) {
  const std::string p = path("bad.toml");
  test::write_file(p, "[[allow.setuid]]\npath = \"/usr/bin/su\"\nsha265 = \"x\"\n[severity]\n\"setuid.unlistd\" = \"high\"\n");
  auto r = audit({build, "--policy", p});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, p +
                       ":1:1: error: missing required key 'allow.setuid[1].sha256' (a string)\n"
                       " 1 | [[allow.setuid]]\n"
                       "   | ^\n" +
                       p +
                       ":3:1: error: unknown key 'allow.setuid[1].sha265' (did you mean 'sha256'?)\n"
                       " 3 | sha265 = \"x\"\n"
                       "   | ^\n" +
                       p +
                       ":5:1: error: unknown check 'setuid.unlistd' (did you mean 'setuid.unlisted'?)\n"
                       " 5 | \"setuid.unlistd\" = \"high\"\n"
                       "   | ^\n"
                       "3 errors in " +
                       p + "\n");
}

TEST_F(AuditCli, UsageAndTargetErrors) {
  auto none = run_chrootctl({"audit"});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_EQ(none.err, "chrootctl audit: missing argument: an image name, a build directory or --all\nTry 'chrootctl audit --help'.\n");
  auto both = run_chrootctl({"audit", "--all", build});
  EXPECT_EQ(both.exit_code, 2);
  EXPECT_EQ(both.err, "chrootctl audit: give image names or --all, not both\nTry 'chrootctl audit --help'.\n");
  test::mkdirs(path("nomanifest/root"));
  auto nm = audit({path("nomanifest")});
  EXPECT_EQ(nm.exit_code, 2);
  EXPECT_EQ(nm.err, "chrootctl: error: " + path("nomanifest") + " is not a build directory: " + path("nomanifest/manifest") +
                        " is missing or not a regular file\n");
  test::mkdirs(path("store"));
  auto name = audit({"no-such-image", "--store", path("store")});
  EXPECT_EQ(name.exit_code, 2);
  EXPECT_EQ(name.err,
            "chrootctl: error: 'no-such-image' is not in the catalogue " + path("store") + "/catalogue.toml and is not a build directory\n");
}

TEST_F(AuditCli, PackagesFromDpkgStatusAreListedAndDiffed) {
  const std::string other = path("b2");
  make_tree(other + "/root");
  test::mkdirs(root + "/var/lib/dpkg");
  test::mkdirs(other + "/root/var/lib/dpkg");
  test::write_file(root + "/var/lib/dpkg/status",
                   "Package: bash\nStatus: install ok installed\nVersion: 5.2.15-2\nArchitecture: amd64\n\n"
                   "Package: gone\nStatus: install ok installed\nVersion: 1\nArchitecture: all\n");
  test::write_file(other + "/root/var/lib/dpkg/status",
                   "Package: bash\nStatus: install ok installed\nVersion: 5.2.15-2+b7\nArchitecture: amd64\n\n"
                   "Package: sudo\nStatus: install ok installed\nVersion: 1.9.13p3-1\nArchitecture: amd64\n");
  test::mkdirs(other + "/root/usr/bin");
  test::write_file(other + "/root/usr/bin/sudo",
                   "\x7f"
                   "ELF sudo",
                   04755);
  test::write_file(other + "/root/etc/motd", "hello!\n", 0644);
  create_manifest(build);
  create_manifest(other);

  auto a = audit({build});
  EXPECT_NE(a.out.find("; matches its manifest; 2 packages (dpkg)\n"), std::string::npos) << a.out;

  auto d = run_chrootctl({"diff", build, other});
  EXPECT_EQ(d.exit_code, 1) << d.err;
  const std::string sudo_line = "  added /usr/bin/sudo: setuid uid " + std::to_string(::getuid()) + "\n";
  EXPECT_EQ(d.out.substr(0, d.out.find("\nentries:")),
            "diff " + build + " -> " + other + "\n\nsetuid, setgid and capability changes (1)\n" + sudo_line);
  EXPECT_NE(d.out.find("  changed /etc/motd mode 0666 -> 0644\n  changed /etc/motd size 6 -> 7\n"), std::string::npos) << d.out;
  EXPECT_NE(d.out.find("\npackages: 1 added, 1 removed, 1 changed version\n"
                       "  changed bash 5.2.15-2 -> 5.2.15-2+b7 (amd64)\n"
                       "  removed gone 1 (all)\n"
                       "  added sudo 1.9.13p3-1 (amd64)\n"),
            std::string::npos)
      << d.out;
  EXPECT_NE(
      d.out.find("\n" + build + " -> " + other + ": 1 privilege change, 3 added, 0 removed, 2 changed; packages 1 added, 1 removed, 1 changed\n"),
      std::string::npos)
      << d.out;

  auto j = run_chrootctl({"diff", "--json", build, other});
  EXPECT_EQ(j.exit_code, 1);
  EXPECT_EQ(validate(j.out, "diff"), "valid\n") << j.out;

  // A bare manifest has no root: no package diff, and the output says so.
  auto bare = run_chrootctl({"diff", build + "/manifest", other});
  EXPECT_EQ(bare.exit_code, 1);
  EXPECT_NE(
      bare.out.find("\npackages: package diff not available: " + build + "/manifest is a bare manifest (no image root to read packages from)\n"),
      std::string::npos)
      << bare.out;
  EXPECT_EQ(validate(run_chrootctl({"diff", "--json", build + "/manifest", other}).out, "diff"), "valid\n");

  auto same = run_chrootctl({"diff", build, build});
  EXPECT_EQ(same.exit_code, 0) << same.out;
  EXPECT_NE(same.out.find(": 0 privilege changes, 0 added, 0 removed, 0 changed; packages 0 added, 0 removed, 0 changed\n"), std::string::npos);

  auto missing = run_chrootctl({"diff", build, path("nothing")});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_EQ(missing.err, "chrootctl: error: '" + path("nothing") + "' is not a catalogue name, a build directory or a manifest\n");
}

}  // namespace
}  // namespace chrootctl
