// `chrootctl build` as an administrator runs it: output, JSON, exit codes and error messages.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_support.hpp"

namespace chrootctl {
namespace {

using test::run_chrootctl;

class BuilderCli : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    store = path("store");
  }
  std::string store;
};

TEST_F(BuilderCli, BuildsMinimalPrintsIdAndDigestThenReusesIt) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  CHROOTCTL_REQUIRE_TOOL("busybox");
  auto a = run_chrootctl({"build", "minimal", "--store", store});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  const auto lines = [](const std::string& s) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    while (pos < s.size()) {
      const auto nl = s.find('\n', pos);
      out.push_back(s.substr(pos, nl - pos));
      pos = nl + 1;
    }
    return out;
  };
  const auto out = lines(a.out);
  ASSERT_EQ(out.size(), 4u) << a.out;
  ASSERT_EQ(out[0].substr(0, 9), "build_id ");
  const std::string id = out[0].substr(9);
  EXPECT_EQ(id.size(), 21u);
  EXPECT_EQ(out[1].substr(0, 19), "tree_digest sha256:");
  EXPECT_EQ(out[2], "path " + store + "/minimal/" + id);
  EXPECT_EQ(out[3], "cached no");
  EXPECT_NE(a.err.find("build minimal: base: empty tree (scratch)\n"), std::string::npos) << a.err;
  EXPECT_NE(a.err.find("build minimal: strip: remove setuid"), std::string::npos) << a.err;

  // The tree digest printed is the manifest's; manifest check agrees with the tree.
  auto check = run_chrootctl({"manifest", "check", "-q", store + "/minimal/" + id + "/root", store + "/minimal/" + id + "/manifest"});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;

  auto j = run_chrootctl({"build", "minimal", "--store", store, "--json"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  EXPECT_EQ(j.err, "") << "--json prints no progress";
  auto py = test::run(
      {"python3", "-c", "import json,sys; d=json.load(sys.stdin); print(d['name'], d['build_id'], d['cached'], d['tree_digest'][:7], d['path'])"},
      j.out);
  EXPECT_EQ(py.out, "minimal " + id + " True sha256: " + store + "/minimal/" + id + "\n") << py.err << j.out;
}

TEST_F(BuilderCli, Rhel5WithoutTheTarballSaysWhatIsMissing) {
  auto r = run_chrootctl({"build", "rhel5", "--store", store});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err,
            "recipes/rhel5.toml:10:1: error: base archive '/var/lib/chrootctl/sources/centos-5.11-x86_64-rootfs.tar.xz' does not exist. "
            "This recipe builds from a rootfs tarball that your site provides; make it as recipes/README.md describes, put it at that "
            "path and pin its sha256 in the recipe\n"
            " 10 | archive = { path = \"/var/lib/chrootctl/sources/centos-5.11-x86_64-rootfs.tar.xz\", sha256 = "
            "\"0000000000000000000000000000000000000000000000000000000000000000\" }\n"
            "    | ^\n");
}

TEST_F(BuilderCli, RecipeErrorsAreReportedTogetherWithTheirPlace) {
  const std::string file = path("bad.toml");
  test::write_file(file, "name = \"bad\"\n[base]\nscratch = true\n[strip]\nsetuid = \"remov\"\n[layuot]\nmkdir = [\"/tmp\"]\n");
  auto r = run_chrootctl({"build", file, "--store", store});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, file +
                       ":5:10: error: 'strip.setuid' must be \"remove\", \"clear-bit\" or \"keep\", not 'remov' (did you mean 'remove'?)\n"
                       " 5 | setuid = \"remov\"\n"
                       "   |          ^\n" +
                       file +
                       ":6:2: error: unknown key 'layuot' (did you mean 'layout'?)\n"
                       " 6 | [layuot]\n"
                       "   |  ^\n"
                       "2 errors in " +
                       file + "\n");
}

TEST_F(BuilderCli, RegisterVerifiesAndRegistersTheBuild) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  CHROOTCTL_REQUIRE_TOOL("busybox");
  ASSERT_EQ(::chmod(m_dir.c_str(), 0755), 0);  // the catalogue refuses roots under group/world-writable dirs
  auto b = run_chrootctl({"build", "minimal", "--store", store, "--register", "MINIMAL", "-q"});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  const auto path_line = b.out.find("\npath ");
  ASSERT_NE(path_line, std::string::npos) << b.out;
  const std::string dir = b.out.substr(path_line + 6, b.out.find('\n', path_line + 1) - path_line - 6);
  EXPECT_NE(b.out.find("registered MINIMAL -> " + dir + "/root\n"), std::string::npos) << b.out;
  auto r = run_chrootctl({"resolve", "MINIMAL", "--store", store});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, dir + "/root\n");

  // A recipe deriving from `image = "MINIMAL"` starts from the registered image.
  test::write_file(path("derived.toml"),
                   "name = \"derived\"\n[base]\nimage = \"MINIMAL\"\n[[files]]\ncontent = \"hi\\n\"\ndst = \"/etc/derived\"\nmode = \"0644\"\n");
  auto d = run_chrootctl({"build", path("derived.toml"), "--store", store, "--register", "DERIVED", "-q"});
  ASSERT_EQ(d.exit_code, 0) << d.err << d.out;
  auto dr = run_chrootctl({"resolve", "DERIVED", "--store", store});
  ASSERT_EQ(dr.exit_code, 0) << dr.err;
  const std::string droot = dr.out.substr(0, dr.out.size() - 1);
  EXPECT_EQ(test::read_file(droot + "/etc/derived"), "hi\n");
  EXPECT_EQ(test::read_file(droot + "/bin/busybox"), test::read_file(dir + "/root/bin/busybox"));
}

TEST_F(BuilderCli, UsageErrors) {
  auto none = run_chrootctl({"build"});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.err.find("missing argument"), std::string::npos) << none.err;
  auto unknown = run_chrootctl({"build", "no-such-recipe", "--store", store});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_EQ(unknown.err.rfind("chrootctl: error: no recipe named 'no-such-recipe' in /", 0), 0u) << unknown.err;
  auto reg = run_chrootctl({"build", "minimal", "--store", store, "--register", "root"});
  EXPECT_EQ(reg.exit_code, 2);
  EXPECT_EQ(reg.err.rfind("chrootctl build: --register: bad name: 'root' is reserved", 0), 0u) << reg.err;
  auto sde = run_chrootctl({"build", "minimal", "--store", store}, {{"SOURCE_DATE_EPOCH", "yesterday"}});
  EXPECT_EQ(sde.exit_code, 2);
  EXPECT_NE(sde.err.find("SOURCE_DATE_EPOCH='yesterday' is not a number of seconds"), std::string::npos) << sde.err;
  auto help = run_chrootctl({"build", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("Usage: chrootctl build NAME|PATH.toml [--store DIR] [--sealed] [--register CATALOGUE-NAME] [--rebuild] [--json]"),
            std::string::npos);
}

}  // namespace
}  // namespace chrootctl
