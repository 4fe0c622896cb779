// The dnf base against a local repository built at test time with rpmbuild and createrepo_c,
// including a package that ships a setuid file.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "chrootctl/builder/build.hpp"
#include "chrootctl/builder/recipe.hpp"
#include "chrootctl/common/manifest.hpp"
#include "chrootctl/common/strings.hpp"
#include "test_support.hpp"

namespace chrootctl::builder {
namespace {

class BuilderDnf : public test::TempDirTest {
 protected:
  void make_repo() {
    test::mkdirs(path("top/SPECS"));
    test::mkdirs(path("repo"));
    test::write_file(path("top/SPECS/ccfoo.spec"),
                     "Name: ccfoo\nVersion: 1.0\nRelease: 1\nSummary: setuid test package\nLicense: MIT\nBuildArch: noarch\n"
                     "Requires: ccbar\n%description\ntest\n%install\nmkdir -p %{buildroot}/usr/bin\n"
                     "printf '#!/bin/sh\\necho foo\\n' > %{buildroot}/usr/bin/ccfoo\n"
                     "%files\n%attr(4755,root,root) /usr/bin/ccfoo\n");
    test::write_file(path("top/SPECS/ccbar.spec"),
                     "Name: ccbar\nVersion: 2.1\nRelease: 3\nSummary: dependency\nLicense: MIT\nBuildArch: noarch\n"
                     "%description\ntest\n%install\nmkdir -p %{buildroot}/usr/share/ccbar\necho data > %{buildroot}/usr/share/ccbar/data\n"
                     "%files\n/usr/share/ccbar/data\n");
    for (const char* spec : {"ccfoo", "ccbar"}) {
      auto r = test::run({"rpmbuild", "--define", "_topdir " + path("top"), "-bb", path(std::string("top/SPECS/") + spec + ".spec")});
      ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    }
    ASSERT_EQ(test::sh("cp " + path("top/RPMS/noarch") + "/*.rpm " + path("repo")).exit_code, 0);
    auto c = test::run({"createrepo_c", path("repo")});
    ASSERT_EQ(c.exit_code, 0) << c.err;
  }
};

TEST_F(BuilderDnf, InstallrootFromALocalRepositoryWithASetuidPackage) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  CHROOTCTL_REQUIRE_TOOL("dnf");
  CHROOTCTL_REQUIRE_TOOL("rpmbuild");
  CHROOTCTL_REQUIRE_TOOL("createrepo_c");
  make_repo();
  if (HasFatalFailure()) return;
  const std::string file = path("rpmtest.toml");
  test::write_file(file,
                   "name = \"rpmtest\"\n[base]\ndnf = { releasever = \"9\", gpgcheck = false, packages = [\"ccfoo\"], repos = { local = \"file://" +
                       path("repo") + "\" } }\n[strip]\nsetuid = \"clear-bit\"\nremove = [\"/var/log/**\"]\n");
  auto recipe = load_recipe(file);
  ASSERT_TRUE(recipe) << recipe.error().what();
  BuildOptions o;
  o.store = path("store");
  auto b = build(*recipe, o);
  ASSERT_TRUE(b) << b.error().what();

  auto m = manifest::load(b->build_dir + "/manifest");
  ASSERT_TRUE(m);
  const auto* foo = m->find("/usr/bin/ccfoo");
  ASSERT_NE(foo, nullptr);
  EXPECT_EQ(foo->mode, 0755u) << "the package's setuid bit was cleared by the strip step";
  ASSERT_NE(m->find("/usr/share/ccbar/data"), nullptr) << "the dependency was resolved";
  ASSERT_NE(m->find("/var/lib/rpm/rpmdb.sqlite"), nullptr) << "the rpmdb is in the tree, where EL expects it";
  EXPECT_EQ(m->find("/root/.rpmdb"), nullptr);
  for (const auto& e : m->entries) EXPECT_FALSE(e.path.starts_with("/var/cache/dnf/")) << e.path;

  const std::string report = test::read_file(b->build_dir + "/strip-report");
  EXPECT_NE(report.find("\"action\": \"setuid-cleared\",\n      \"path\": \"/usr/bin/ccfoo\",\n      \"detail\": \"4755 -> 0755\""),
            std::string::npos)
      << report;
  const std::string lock = test::read_file(b->build_dir + "/lock");
  EXPECT_NE(lock.find("[[package]]\nname = \"ccbar\"\nversion = \"0:2.1-3\"\narch = \"noarch\"\n"), std::string::npos) << lock;
  EXPECT_NE(lock.find("[[package]]\nname = \"ccfoo\"\nversion = \"0:1.0-1\"\narch = \"noarch\"\n"), std::string::npos) << lock;
  EXPECT_NE(lock.find("kind = \"dnf-repo\"\nname = \"local file://" + path("repo") + "\"\ndigest = \"sha256:"), std::string::npos) << lock;
  const std::string log = test::read_file(b->build_dir + "/build.log");
  EXPECT_NE(log.find("$ unshare --mount --propagation private --pid --fork --kill-child -- dnf -y --noplugins"), std::string::npos) << log;
  // dnf, and the rpm scriptlets it runs as root, ran under the build-host system-call policy.
  EXPECT_NE(log.find("# system-call policy build-host sha256:"), std::string::npos) << log;
  EXPECT_LT(log.find("# system-call policy build-host sha256:"), log.find("$ unshare --mount")) << log;

  // The repository's state is an input: unchanged, the build is cached; a new repodata, rebuilt.
  auto again = build(*recipe, o);
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->cached);
  ASSERT_EQ(test::sh("rm -f " + path("repo") + "/ccbar* && createrepo_c --update " + path("repo") + " >/dev/null").exit_code, 0);
  auto changed = build(*recipe, o);
  ASSERT_FALSE(changed) << "ccbar is gone from the repository, so ccfoo cannot be installed";
  EXPECT_NE(changed.error().what().find("dnf failed (exit status 1); its last output:"), std::string::npos) << changed.error().what();
  EXPECT_EQ(test::sh("ls -A " + path("store") + "/.staging").out, "");
}

}  // namespace
}  // namespace chrootctl::builder
