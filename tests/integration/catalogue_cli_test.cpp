// The catalogue verbs as an administrator or a batch system runs them, in the cases that need no
// root: help, usage errors, damaged catalogues, lookup of requests that must never resolve, and
// reading NAMED_CHROOT. (Registering images needs root-owned trees: tests/privileged.)
#include <gtest/gtest.h>
#include <unistd.h>

#include "test_support.hpp"

namespace chrootctl {
namespace {

using test::run_chrootctl;

class CatalogueCli : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    store = path("store");
    test::mkdirs(store);
  }
  test::CommandResult ctl(std::vector<std::string> args) {
    args.insert(args.begin() + 1, {"--store", store});
    return run_chrootctl(args);
  }
  std::string store;
};

TEST_F(CatalogueCli, EveryVerbHasHelp) {
  for (const char* verb :
       {"add", "remove", "list", "show", "resolve", "verify", "rollback", "alias", "gc", "condor-config", "import-condor-config", "lookup"}) {
    auto r = run_chrootctl({verb, "--help"});
    EXPECT_EQ(r.exit_code, 0) << verb << r.err;
    EXPECT_EQ(r.out.substr(0, 17 + std::string(verb).size()), std::string("Usage: chrootctl ") + verb) << r.out;
    EXPECT_NE(r.out.find("Exit status:"), std::string::npos) << verb;
  }
  for (const char* verb : {"list", "show", "resolve", "verify", "gc", "condor-config", "import-condor-config", "lookup", "add", "remove", "rollback"})
    EXPECT_NE(run_chrootctl({verb, "--help"}).out.find("--json"), std::string::npos) << verb;
}

TEST_F(CatalogueCli, UsageErrors) {
  auto v = ctl({"verify"});
  EXPECT_EQ(v.exit_code, 2);
  EXPECT_EQ(v.err, "chrootctl verify: give either NAME... or --all\nTry 'chrootctl verify --help'.\n");
  auto g = ctl({"gc", "--min-age", "soon"});
  EXPECT_EQ(g.exit_code, 2);
  EXPECT_EQ(g.err, "chrootctl gc: bad --min-age 'soon' (e.g. 90s, 30m, 2h, 1d)\nTry 'chrootctl gc --help'.\n");
  auto a = ctl({"add", "root", path("x")});
  EXPECT_EQ(a.exit_code, 2);
  EXPECT_EQ(a.err,
            "chrootctl add: bad name: 'root' is reserved: HTCondor maps 'root' to the host's /, and chrootctl never runs a job "
            "there\nTry 'chrootctl add --help'.\n");
  auto al = ctl({"alias", "a b", "EL9"});
  EXPECT_EQ(al.exit_code, 2);
  EXPECT_EQ(al.err, "chrootctl alias: bad name: 'a b' may hold only letters, digits, '_', '-', '.' and '+'\nTry 'chrootctl alias --help'.\n");
}

TEST_F(CatalogueCli, EmptyStoreListsNothingAndResolvesNothing) {
  auto l = ctl({"list"});
  EXPECT_EQ(l.exit_code, 0) << l.err;
  EXPECT_EQ(l.out, "");
  auto j = ctl({"list", "--json"});
  EXPECT_EQ(j.exit_code, 0);
  auto py = test::run({"python3", "-c", "import json,sys; d=json.load(sys.stdin); print(len(d['entries']), d['catalogue'])"}, j.out);
  EXPECT_EQ(py.out, "0 " + store + "/catalogue.toml\n") << py.err;
  auto r = ctl({"resolve", "EL9"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "chrootctl: error: 'EL9' is not in the catalogue " + store + "/catalogue.toml\n");
  auto root = ctl({"resolve", "root"});
  EXPECT_EQ(root.exit_code, 1);
  EXPECT_EQ(root.out, "");
  auto s = ctl({"show", "EL9"});
  EXPECT_EQ(s.exit_code, 1);
  auto c = ctl({"condor-config"});
  EXPECT_EQ(c.exit_code, 0) << c.err;
  EXPECT_EQ(c.out.substr(c.out.rfind("NAMED_CHROOT")), "NAMED_CHROOT =\n");
  auto rm = ctl({"remove", "EL9"});
  EXPECT_EQ(rm.exit_code, 1);
  EXPECT_EQ(rm.err, "chrootctl: error: 'EL9' is not in the catalogue " + store + "/catalogue.toml\n");
}

// A mistyped --store must not read as an empty catalogue: `list` and `verify --all` would
// report nothing with exit 0. Only the verbs that make a store accept one that is not there.
TEST_F(CatalogueCli, AStoreGivenThatDoesNotExistIsAnError) {
  const std::string missing = path("no-such-store");
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"list"}, {"list", "--json"}, {"verify", "--all"}, {"gc"}, {"show", "EL9"}, {"resolve", "EL9"}, {"condor-config"}, {"audit", "--all"}}) {
    std::vector<std::string> cmd = args;
    cmd.insert(cmd.begin() + 1, {"--store", missing});
    auto r = run_chrootctl(cmd);
    EXPECT_EQ(r.exit_code, 2) << args[0] << r.err;
    EXPECT_EQ(r.out, "") << args[0];
    EXPECT_EQ(r.err, "chrootctl: error: the store '" + missing + "' (--store) does not exist\n") << args[0];
  }
  auto f = run_chrootctl({"list", "--store", "/etc/passwd"});
  EXPECT_EQ(f.exit_code, 2);
  EXPECT_EQ(f.err, "chrootctl: error: the store '/etc/passwd' (--store) is not a directory\n");
  EXPECT_NE(::access(missing.c_str(), F_OK), 0);
}

TEST_F(CatalogueCli, DamagedCatalogueIsReportedWithLineAndColumnAndNeverOverwritten) {
  test::mkdirs(store);
  const std::string damaged =
      "format = 1\n"
      "\n"
      "[entry.\"EL9\"]\n"
      "aliases = []\n"
      "image = \"/srv/el9/b1\n";
  test::write_file(store + "/catalogue.toml", damaged);
  for (std::vector<std::string> args :
       std::vector<std::vector<std::string>>{{"list"},
                                             {"show", "EL9"},
                                             {"remove", "EL9"},
                                             {"alias", "X", "EL9"},
                                             {"rollback", "EL9"},
                                             {"verify", "--all"},
                                             {"gc"}}) {  // resolve, lookup and condor-config first want a root-owned store: tests/privileged
    auto r = ctl(args);
    EXPECT_EQ(r.exit_code, 2) << args[0] << ": " << r.out << r.err;
    EXPECT_EQ(r.err.substr(0, r.err.find(" error: ")), store + "/catalogue.toml:5:21:") << args[0] << ": " << r.err;
    EXPECT_EQ(test::read_file(store + "/catalogue.toml"), damaged) << args[0];
  }
}

TEST_F(CatalogueCli, LookupExitCodes) {
  test::write_file(path("none.sub"), "executable = /bin/job\n# +RequestedChroot = \"EL9\"\nqueue\n");
  auto none = ctl({"lookup", path("none.sub")});
  EXPECT_EQ(none.exit_code, 3);
  EXPECT_EQ(none.out, "");
  EXPECT_EQ(none.err, "chrootctl: " + path("none.sub") + " requests no root (no RequestedChroot)\n");

  struct Case {
    const char* text;
    std::string err;
  } cases[] = {
      {"RequestedChroot = \"root\"\n",
       ":1: RequestedChroot: cannot resolve 'root': 'root' is reserved: HTCondor maps 'root' to the host's /, and chrootctl never runs a job there"},
      {"+RequestedChroot = \"\"\n", ":1: +RequestedChroot: it asks for an empty name"},
      {"MY.RequestedChroot = RHEL5\n",
       ":1: MY.RequestedChroot: its value 'RHEL5' is not a string literal (HTCondor would evaluate it as an expression, not a name)"},
      {"+RequestedChroot = \"RHEL5\"\n", ":1: +RequestedChroot: 'RHEL5' is not in the catalogue " + store + "/catalogue.toml"},
  };
  for (const auto& c : cases) {
    test::write_file(path("job"), c.text);
    auto r = ctl({"lookup", path("job")});
    EXPECT_EQ(r.exit_code, 1) << c.text;
    EXPECT_EQ(r.out, "") << c.text;
    EXPECT_EQ(r.err, "chrootctl: error: " + path("job") + c.err + "\n");
  }
  test::write_file(path("job"), "RequestedChroot = \"root\"\n");
  auto j = ctl({"lookup", "--json", path("job")});
  EXPECT_EQ(j.exit_code, 1);
  auto py = test::run({"python3", "-c", "import json,sys; d=json.load(sys.stdin); print(d['requested'], d['verified'], d['name'])"}, j.out);
  EXPECT_EQ(py.out, "True False root\n") << j.out << py.err;
  auto missing = ctl({"lookup", path("nope")});
  EXPECT_EQ(missing.exit_code, 2);
}

TEST_F(CatalogueCli, ImportDryRunReadsNamedChrootWithHTCondorRules) {
  test::write_file(path("condor_config"), "NAMED_CHROOT = A=/srv/a\nnamed_chroot = RHEL5=/srv/rhel5, SL6 ,root=/, EL9=\n");
  store = path("fresh-store");  // import makes the store: a dry run must not
  auto r = ctl({"import-condor-config", "--dry-run", path("condor_config")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "RHEL5=/srv/rhel5: would be imported\n");
  EXPECT_EQ(r.err,
            "chrootctl: warning: skipping 'SL6' in NAMED_CHROOT: no '=' (expected NAME=PATH)\n"
            "chrootctl: warning: skipping 'EL9=' in NAMED_CHROOT: no path after '='\n"
            "chrootctl: warning: skipping 'root=/': 'root' is the host's / and is never registered\n");
  EXPECT_FALSE(test::sh("test -e '" + store + "'").exit_code == 0) << "a dry run creates nothing";
  test::write_file(path("empty_config"), "START = TRUE\n");
  auto e = ctl({"import-condor-config", path("empty_config")});
  EXPECT_EQ(e.exit_code, 1);
  EXPECT_EQ(e.err, "chrootctl: " + path("empty_config") + " sets no NAMED_CHROOT\n");
}

}  // namespace
}  // namespace chrootctl
