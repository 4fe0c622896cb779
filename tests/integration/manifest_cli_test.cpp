// The manifest verbs as an administrator runs them: exit codes, messages, JSON, mtree.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_support.hpp"

namespace chrootctl {
namespace {

using test::run_chrootctl;

class ManifestCli : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    root = path("root");
    test::mkdirs(root + "/etc");
    test::write_file(root + "/etc/os-release", "ID=test\n");
    test::write_file(root + "/etc/hosts", "127.0.0.1 localhost\n");
    manifest = path("m.txt");
  }
  std::string root, manifest;
};

TEST_F(ManifestCli, CreatePrintsDigestAndCheckPasses) {
  auto c = run_chrootctl({"manifest", "create", "-q", root, "-o", manifest});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  ASSERT_EQ(c.out.size(), 7u + 64u + 1u) << c.out;
  EXPECT_EQ(c.out.substr(0, 7), "sha256:");
  EXPECT_EQ(test::read_file(manifest).substr(0, 22), "#chrootctl-manifest 1\n");
  EXPECT_NE(test::read_file(manifest).find("#end entries=4 sha256=" + c.out.substr(7, 64) + "\n"), std::string::npos);
  auto k = run_chrootctl({"manifest", "check", "-q", root, manifest});
  EXPECT_EQ(k.exit_code, 0) << k.out << k.err;
  EXPECT_EQ(k.out, root + ": match (4 entries)\n");
  auto f = run_chrootctl({"manifest", "check", "--fast", root, manifest});
  EXPECT_EQ(f.exit_code, 0) << f.out << f.err;
}

TEST_F(ManifestCli, CheckListsEveryDifferenceAndExitsOne) {
  ASSERT_EQ(run_chrootctl({"manifest", "create", "-q", root, "-o", manifest}).exit_code, 0);
  test::write_file(root + "/etc/hosts", "127.0.0.1 localhosT\n");
  ASSERT_EQ(::chmod((root + "/etc/os-release").c_str(), 0600), 0);
  auto k = run_chrootctl({"manifest", "check", "-q", root, manifest});
  EXPECT_EQ(k.exit_code, 1);
  EXPECT_NE(k.out.find("changed /etc/hosts sha256 "), std::string::npos) << k.out;
  EXPECT_NE(k.out.find("changed /etc/os-release mode 0644 -> 0600\n"), std::string::npos) << k.out;
  EXPECT_NE(k.out.find(root + ": 2 differences\n"), std::string::npos) << k.out;

  auto j = run_chrootctl({"manifest", "check", "--json", root, manifest});
  EXPECT_EQ(j.exit_code, 1);
  EXPECT_NE(j.out.find("\"match\": false"), std::string::npos) << j.out;
  EXPECT_NE(j.out.find("\"path\": \"/etc/os-release\""), std::string::npos) << j.out;
  EXPECT_NE(j.out.find("\"field\": \"mode\""), std::string::npos) << j.out;
  auto py = test::run({"python3", "-c", "import json,sys; d=json.load(sys.stdin); assert d['match'] is False; print(len(d['differences']))"}, j.out);
  EXPECT_EQ(py.out, "2\n") << py.err;

  auto f = run_chrootctl({"manifest", "check", "--fast", root, manifest});
  EXPECT_EQ(f.exit_code, 1) << f.out << f.err;
}

TEST_F(ManifestCli, ErrorsExitTwoWithAClearMessage) {
  auto notdir = run_chrootctl({"manifest", "create", root + "/etc/hosts"});
  EXPECT_EQ(notdir.exit_code, 2);
  EXPECT_EQ(notdir.err, "chrootctl: error: walking " + root + "/etc/hosts: '" + root + "/etc/hosts' is not a directory\n");

  auto missing = run_chrootctl({"manifest", "check", root, path("nope.txt")});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_EQ(missing.err, "chrootctl: error: reading manifest " + path("nope.txt") + ": open('" + path("nope.txt") +
                             "', O_PATH|O_NOFOLLOW): No such file or directory\n");

  // A device is refused at once, before anything is read from it (issue 18).
  auto zero = run_chrootctl({"manifest", "check", root, "/dev/zero"});
  EXPECT_EQ(zero.exit_code, 2);
  EXPECT_EQ(zero.err, "chrootctl: error: reading manifest /dev/zero: not a regular file\n");

  test::write_file(manifest, "#chrootctl-manifest 1\n/ type=d mode=0755 uid=0 gid=0 mtime=0.000000000\n");
  auto truncated = run_chrootctl({"manifest", "check", root, manifest});
  EXPECT_EQ(truncated.exit_code, 2);
  EXPECT_EQ(truncated.err, "chrootctl: error: " + manifest + ":3: truncated: no end line (the manifest is incomplete)\n");

  auto usage = run_chrootctl({"manifest", "check", root});
  EXPECT_EQ(usage.exit_code, 2);
  EXPECT_NE(usage.err.find("missing argument"), std::string::npos);
  auto bad = run_chrootctl({"manifest", "create", "--fromat", "mtree", root});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("unknown option '--fromat' (did you mean '--format'?)"), std::string::npos) << bad.err;
}

TEST_F(ManifestCli, UnreadableEntryIsAnErrorForAnOrdinaryUser) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");  // to switch to an ordinary user
  CHROOTCTL_REQUIRE_TOOL("setpriv");
  ASSERT_EQ(::chmod(m_dir.c_str(), 0755), 0);
  ASSERT_EQ(::chmod((root + "/etc/hosts").c_str(), 0), 0);
  auto r = test::run({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", CHROOTCTL_BIN, "manifest", "create", "-q", root});
  EXPECT_EQ(r.exit_code, 2) << r.out;
  // The descriptor number in the message depends on the hashing thread.
  const std::string head = "chrootctl: error: walking " + root + ": reading '/etc/hosts': openat(fd ";
  const std::string tail = ", 'hosts', O_RDONLY|O_NOFOLLOW): Permission denied\n";
  EXPECT_EQ(r.err.substr(0, head.size()), head) << r.err;
  EXPECT_TRUE(r.err.size() > tail.size() && r.err.substr(r.err.size() - tail.size()) == tail) << r.err;
}

TEST_F(ManifestCli, DiffComparesTwoManifests) {
  ASSERT_EQ(run_chrootctl({"manifest", "create", "-q", root, "-o", manifest}).exit_code, 0);
  test::write_file(root + "/etc/new", "n");
  ASSERT_EQ(run_chrootctl({"manifest", "create", "-q", root, "-o", path("m2.txt")}).exit_code, 0);
  auto d = run_chrootctl({"manifest", "diff", manifest, path("m2.txt")});
  EXPECT_EQ(d.exit_code, 1);
  EXPECT_NE(d.out.find("added /etc/new\n"), std::string::npos) << d.out;
  auto same = run_chrootctl({"manifest", "diff", manifest, manifest});
  EXPECT_EQ(same.exit_code, 0) << same.out;
}

TEST_F(ManifestCli, HelpOnEveryVerb) {
  for (const auto& sub : {"create", "check", "diff"}) {
    auto h = run_chrootctl({"manifest", sub, "--help"});
    EXPECT_EQ(h.exit_code, 0);
    EXPECT_EQ(h.out.substr(0, 26), "Usage: chrootctl manifest ") << sub;
  }
}

TEST_F(ManifestCli, MtreeSpecVerifiesWithNetbsdMtree) {
  CHROOTCTL_REQUIRE_TOOL("mtree");
  // Names that need escaping in mtree's own syntax, a symlink, a hard link, a FIFO.
  test::write_file(root + "/etc/sp ace", "s");
  test::write_file(root + "/etc/glob*?[x]", "g");
  test::write_file(root + "/etc/back\\slash#1", "b");
  test::write_file(root + "/etc/" + std::string("utf\xc3\xa9-and-\xff", 10), "u");
  ASSERT_EQ(::symlink("os-release", (root + "/etc/link").c_str()), 0);
  ASSERT_EQ(::link((root + "/etc/hosts").c_str(), (root + "/etc/hosts2").c_str()), 0);
  ASSERT_EQ(::mkfifo((root + "/etc/fifo").c_str(), 0600), 0);
  const std::string spec = path("spec");
  auto c = run_chrootctl({"manifest", "create", "-q", "--format", "mtree", root, "-o", spec});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  auto v = test::run({"mtree", "-p", root, "-f", spec});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err << test::read_file(spec);
  EXPECT_EQ(v.out, "");
  // And mtree notices a change.
  test::write_file(root + "/etc/hosts", "changed\n");
  auto v2 = test::run({"mtree", "-p", root, "-f", spec});
  EXPECT_NE(v2.exit_code, 0) << v2.out;
}

}  // namespace
}  // namespace chrootctl
