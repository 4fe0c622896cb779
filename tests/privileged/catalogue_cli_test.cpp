// The catalogue verbs end to end with real, root-owned images: outputs and exit codes, twenty
// concurrent processes, writers killed with SIGKILL, and a damaged catalogue.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <random>
#include <set>

#include "chrootctl/catalogue/catalogue.hpp"
#include "chrootctl/common/files.hpp"
#include "chrootctl/common/manifest.hpp"
#include "chrootctl/common/strings.hpp"
#include "test_support.hpp"

namespace chrootctl {
namespace {

namespace cat = catalogue;
namespace mf = manifest;

class CatalogueCliImages : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    CHROOTCTL_REQUIRE_PRIVILEGE("root");
    store = path("store");
    s.store = store;
  }
  std::string make_build(const std::string& name, const std::string& id, const std::string& hosts = "127.0.0.1 localhost\n") {
    const std::string dir = str(store, "/", name, "/", id);
    test::mkdirs(dir + "/root/etc");
    test::write_file(dir + "/root/etc/hosts", hosts);
    test::write_file(dir + "/recipe.toml", str("name = \"", name, "\"\n"));
    auto m = mf::create(dir + "/root");
    EXPECT_TRUE(m) << m.error().what();
    auto r = mf::render(*m);
    EXPECT_TRUE(write_file_atomic(dir + "/manifest", r.text));
    EXPECT_TRUE(write_file_atomic(dir + "/manifest.stat", mf::serialize_stat(*m, r.digest)));
    digest = r.digest;
    return dir;
  }
  test::CommandResult ctl(std::vector<std::string> args) {
    args.insert(args.begin() + 1, {"--store", store});
    return test::run_chrootctl(args);
  }
  std::set<std::string> names() {
    auto c = cat::load(s);
    EXPECT_TRUE(c) << c.error().what();
    std::set<std::string> out;
    if (c)
      for (const auto& e : c->entries) out.insert(e.name);
    return out;
  }
  std::string store, digest;
  Settings s;
};

TEST_F(CatalogueCliImages, AddResolveListShowLookupAndCondorConfig) {
  const std::string dir = make_build("el9", "b1");
  auto a = ctl({"add", "-q", "EL9", dir});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out, str("EL9: added build b1 (3 entries, sha256:", digest, ")\nEL9 -> ", dir, "/root\n"));
  EXPECT_EQ(a.err, "");

  auto r = ctl({"resolve", "EL9"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, dir + "/root\n");
  auto rf = ctl({"resolve", "--fast", "EL9"});
  EXPECT_EQ(rf.exit_code, 0) << rf.err;
  EXPECT_EQ(rf.out, dir + "/root\n");
  auto rj = ctl({"resolve", "--json", "EL9"});
  auto py = test::run({"python3", "-c", "import json,sys; d=json.load(sys.stdin); print(d['root'], d['build_id'], d['digest'])"}, rj.out);
  EXPECT_EQ(py.out, str(dir, "/root b1 ", digest, "\n")) << rj.out << py.err;

  ASSERT_EQ(ctl({"alias", "RHEL9", "EL9"}).out, "RHEL9 -> EL9\n");
  auto l = ctl({"list"});
  EXPECT_EQ(l.exit_code, 0);
  const auto lines = split(l.out, '\n');
  ASSERT_EQ(lines.size(), 4u) << l.out;
  EXPECT_EQ(lines[0].substr(0, 40), "NAME   STATE     VERIFIED  BUILD  DIGEST");
  EXPECT_EQ(lines[1].substr(0, 16), "EL9    verified ");
  EXPECT_NE(lines[1].find(" b1     " + digest.substr(0, 12) + "  " + dir + "/root"), std::string::npos) << l.out;
  EXPECT_EQ(lines[2].substr(0, 15), "RHEL9  -> EL9  ");
  auto lj = ctl({"list", "--json"});
  py = test::run({"python3", "-c",
                  "import json,sys; d=json.load(sys.stdin); e=d['entries'][0]; "
                  "print(e['name'], e['aliases'], e['state'], e['usable'], e['current']['recipe'], e['current']['identity']['mode'])"},
                 lj.out);
  EXPECT_EQ(py.out, "EL9 ['RHEL9'] verified True el9 0755\n") << lj.out << py.err;
  auto sh = ctl({"show", "RHEL9"});
  EXPECT_EQ(sh.exit_code, 0);
  EXPECT_EQ(sh.out.substr(0, 57), "RHEL9 is an alias of EL9\nname:      EL9\naliases:   RHEL9\n");

  test::write_file(path("job.sub"), "universe = vanilla\nexecutable = job.sh\nMy.RequestedChroot = \\\n  \"RHEL9\"\nqueue 1\n");
  auto lk = ctl({"lookup", path("job.sub")});
  EXPECT_EQ(lk.exit_code, 0) << lk.err;
  EXPECT_EQ(lk.out, str("RHEL9 ", dir, "/root\n"));

  auto cc = ctl({"condor-config", "-o", path("50-chroots.conf")});
  EXPECT_EQ(cc.exit_code, 0) << cc.err;
  EXPECT_EQ(cc.out, "");
  const std::string conf = test::read_file(path("50-chroots.conf"));
  EXPECT_EQ(conf.substr(conf.rfind("NAMED_CHROOT")), str("NAMED_CHROOT = EL9=", dir, "/root, RHEL9=", dir, "/root\n"));
  auto cj = ctl({"condor-config", "--json"});
  EXPECT_EQ(cj.exit_code, 0);
  py = test::run(
      {"python3", "-c", "import json,sys; d=json.load(sys.stdin); print(d['named_chroot']); print([i['name'] for i in d['included']], d['skipped'])"},
      cj.out);
  EXPECT_EQ(py.out, str("NAMED_CHROOT = EL9=", dir, "/root, RHEL9=", dir, "/root\n['EL9', 'RHEL9'] []\n")) << cj.out << py.err;
}

TEST_F(CatalogueCliImages, VerifyListsDifferencesAndTheImageStaysUnusableUntilItPasses) {
  const std::string dir = make_build("el9", "b1");
  ASSERT_EQ(ctl({"add", "-q", "EL9", dir}).exit_code, 0);
  test::write_file(dir + "/root/etc/hosts", "6.6.6.6 localhost\n");
  auto v = ctl({"verify", "-q", "EL9"});
  EXPECT_EQ(v.exit_code, 1);
  EXPECT_NE(v.out.find("EL9: changed /etc/hosts sha256 "), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("EL9: changed /etc/hosts size 20 -> 18\n"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("EL9: full verification FAILED: 1 difference\nEL9: marked unusable until 'chrootctl verify EL9' passes\n"), std::string::npos)
      << v.out;

  auto r = ctl({"resolve", "EL9"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err.substr(0, 60), "chrootctl: error: 'EL9' is not usable: its verification at 2");
  test::write_file(path("job.ad"), "RequestedChroot = \"EL9\"\n");
  auto lk = ctl({"lookup", path("job.ad")});
  EXPECT_EQ(lk.exit_code, 1);
  EXPECT_EQ(lk.out, "");
  auto cc = ctl({"condor-config"});
  EXPECT_EQ(cc.exit_code, 0);
  EXPECT_EQ(cc.out.substr(cc.out.rfind("NAMED_CHROOT")), "NAMED_CHROOT =\n");
  const std::string warning = "chrootctl: warning: leaving out EL9: its verification at ";
  EXPECT_EQ(cc.err.substr(0, warning.size()), warning);
  auto lj = ctl({"list", "--json"});
  auto py = test::run({"python3", "-c", "import json,sys; d=json.load(sys.stdin); print(d['entries'][0]['state'])"}, lj.out);
  EXPECT_EQ(py.out, "failed\n");

  test::write_file(dir + "/root/etc/hosts", "127.0.0.1 localhost\n");
  auto vj = ctl({"verify", "--json", "--all"});
  EXPECT_EQ(vj.exit_code, 0) << vj.out << vj.err;
  py = test::run(
      {"python3", "-c", "import json,sys; d=json.load(sys.stdin); i=d['images'][0]; print(d['passed'], i['name'], i['recorded'], i['entries'])"},
      vj.out);
  EXPECT_EQ(py.out, "True EL9 True 3\n") << vj.out;
  EXPECT_EQ(ctl({"resolve", "--fast", "EL9"}).exit_code, 0);
  auto vf = ctl({"verify", "--fast", "EL9"});
  EXPECT_EQ(vf.exit_code, 0);
  EXPECT_EQ(vf.out, "EL9: metadata check passed (3 entries, build b1)\n");
}

TEST_F(CatalogueCliImages, AddRefusalsExitOne) {
  const std::string dir = make_build("el9", "b1");
  ASSERT_EQ(::chmod((dir + "/root").c_str(), 0777), 0);
  auto a = ctl({"add", "-q", "EL9", dir});
  EXPECT_EQ(a.exit_code, 1);
  EXPECT_EQ(a.err, str("chrootctl: error: refusing to add '", dir, "' as 'EL9': root '", dir, "/root' is writable by others (mode 0777)\n"));
  ASSERT_EQ(::chmod((dir + "/root").c_str(), 0755), 0);
  test::write_file(dir + "/root/etc/extra", "x");
  auto m = ctl({"add", "-q", "EL9", dir});
  EXPECT_EQ(m.exit_code, 1);
  EXPECT_EQ(m.err, str("chrootctl: error: refusing to add '", dir, "' as 'EL9': its root does not match its manifest (1 difference):\n",
                       "added /etc/extra\n"));
  auto missing = ctl({"add", "-q", "EL9", path("nope")});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_EQ(missing.err, str("chrootctl: error: adding 'EL9': '", path("nope"), "' is not a directory, so it was taken for a recipe: '", path("nope"),
                             "' is neither a recipe name nor a path ending in .toml\n"));
}

TEST_F(CatalogueCliImages, AddFromARecipeBuildsThenRegisters) {
  test::write_file(path("tiny.toml"), "name = \"tiny\"\n[base]\nscratch = true\n[[files]]\ndst = \"/etc/os-release\"\ncontent = \"ID=tiny\\n\"\n");
  auto a = ctl({"add", "-q", "TINY", path("tiny.toml")});
  ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
  auto r = ctl({"resolve", "TINY"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string root = r.out.substr(0, r.out.size() - 1);
  EXPECT_EQ(root.substr(0, store.size() + 6), store + "/tiny/");
  EXPECT_EQ(test::read_file(root + "/etc/os-release"), "ID=tiny\n");
  EXPECT_EQ(a.out.substr(0, a.out.find(" (")), "TINY: added build " + root.substr(store.size() + 6, root.size() - store.size() - 11));

  // A recipe deriving from a catalogue name starts from that name's verified root.
  test::write_file(path("derived.toml"), "name = \"derived\"\n[base]\nimage = \"TINY\"\n[[files]]\ndst = \"/etc/motd\"\ncontent = \"hi\\n\"\n");
  auto d = ctl({"add", "-q", "DERIVED", path("derived.toml")});
  ASSERT_EQ(d.exit_code, 0) << d.out << d.err;
  auto dr = ctl({"resolve", "DERIVED"});
  ASSERT_EQ(dr.exit_code, 0) << dr.err;
  const std::string droot = dr.out.substr(0, dr.out.size() - 1);
  EXPECT_EQ(test::read_file(droot + "/etc/os-release"), "ID=tiny\n");
  EXPECT_EQ(test::read_file(droot + "/etc/motd"), "hi\n");
  test::write_file(path("bad-base.toml"), "name = \"badbase\"\n[base]\nimage = \"tiny\"\n");
  auto bad = ctl({"add", "-q", "BAD", path("bad-base.toml")});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("'tiny' is not in the catalogue " + store + "/catalogue.toml (did you mean 'TINY'? names are case-sensitive)"),
            std::string::npos)
      << bad.err;
}

TEST_F(CatalogueCliImages, RollbackAndGc) {
  const std::string b1 = make_build("el9", "b1");
  const std::string b2 = make_build("el9", "b2", "10.0.0.2 localhost\n");
  ASSERT_EQ(ctl({"add", "-q", "EL9", b1}).exit_code, 0);
  auto a2 = ctl({"add", "-q", "EL9", b2});
  EXPECT_EQ(a2.out.substr(0, a2.out.find(" (")), "EL9: build b2 is now current");
  EXPECT_NE(a2.out.find("; build b1 kept for 'chrootctl rollback EL9'\n"), std::string::npos) << a2.out;
  auto rb = ctl({"rollback", "EL9"});
  EXPECT_EQ(rb.exit_code, 0) << rb.err;
  EXPECT_EQ(rb.out, "EL9: build b1 is current again; dropped b2 (build directories stay until 'chrootctl gc')\n");
  EXPECT_EQ(ctl({"resolve", "EL9"}).out, b1 + "/root\n");
  auto none = ctl({"rollback", "EL9"});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_EQ(none.err, "chrootctl: error: 'EL9' has no previous version to roll back to\n");

  auto dry = ctl({"gc", "--dry-run", "--min-age", "0"});
  EXPECT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_EQ(dry.out, str("would remove ", b2, "\n1 build directories would be removed\n"));
  auto young = ctl({"gc"});
  EXPECT_EQ(young.out, str("kept ", b2, " (modified less than --min-age ago)\n0 build directories removed\n"));
  auto g = ctl({"gc", "--json", "--min-age", "0s"});
  EXPECT_EQ(g.exit_code, 0) << g.err;
  auto py = test::run({"python3", "-c", "import json,sys; d=json.load(sys.stdin); print(d['removed'], d['errors'])"}, g.out);
  EXPECT_EQ(py.out, str("['", b2, "'] []\n"));
  EXPECT_NE(test::sh("test -e '" + b2 + "'").exit_code, 0);
  EXPECT_EQ(ctl({"resolve", "EL9"}).exit_code, 0);
}

TEST_F(CatalogueCliImages, TwentyProcessesAddingAndRemovingAtOnceLoseNoUpdate) {
  const std::string dir = make_build("shared", "b1");
  for (int i = 0; i < 10; ++i) ASSERT_EQ(ctl({"add", "-q", str("OLD", i), dir}).exit_code, 0);
  // Ten adds and ten removes of different names, all started together.
  std::string script = "cd '" + m_dir + "' || exit 1\n";
  for (int i = 0; i < 10; ++i) {
    script +=
        str("( '", CHROOTCTL_BIN, "' add -q --store '", store, "' NEW", i, " '", dir, "' >/dev/null 2>add", i, ".err; echo $? >add", i, ".rc ) & ");
    script += str("( '", CHROOTCTL_BIN, "' remove --store '", store, "' OLD", i, " >/dev/null 2>rm", i, ".err; echo $? >rm", i, ".rc ) & ");
  }
  script += "wait";
  ASSERT_EQ(test::sh(script).exit_code, 0);
  std::set<std::string> expected;
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(test::read_file(path(str("add", i, ".rc"))), "0\n") << test::read_file(path(str("add", i, ".err")));
    EXPECT_EQ(test::read_file(path(str("rm", i, ".rc"))), "0\n") << test::read_file(path(str("rm", i, ".err")));
    expected.insert(str("NEW", i));
  }
  EXPECT_EQ(names(), expected);
}

TEST_F(CatalogueCliImages, CommandsKilledAtAnyMomentLeaveAWholeCatalogue) {
  const std::string dir = make_build("el9", "b1");
  ASSERT_EQ(ctl({"add", "-q", "EL9", dir}).exit_code, 0);
  std::mt19937 rng(4242);
  int completed = 0, killed = 0;
  for (int round = 0; round < 40; ++round) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      const std::string name = str("A", round);
      const char* argv[] = {CHROOTCTL_BIN, "alias", "--store", store.c_str(), name.c_str(), "EL9", nullptr};
      if (round % 2) {
        argv[1] = "add";
        argv[5] = dir.c_str();
      }
      const int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, 1);
      ::dup2(null, 2);
      ::execv(CHROOTCTL_BIN, const_cast<char* const*>(argv));
      ::_exit(127);
    }
    ::usleep(rng() % 15000);
    ::kill(pid, SIGKILL);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    (WIFSIGNALED(status) ? killed : completed)++;
    auto c = cat::load(s);
    ASSERT_TRUE(c) << "round " << round << ": " << c.error().what();
    ASSERT_NE(c->find("EL9"), nullptr);
  }
  EXPECT_GT(killed, 0);
  // Whatever was interrupted, the next command works and cleans up.
  auto r = ctl({"remove", "EL9"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(test::sh("ls -A '" + store + "' | grep -c '^\\.catalogue'").out, "0\n");
}

TEST_F(CatalogueCliImages, DamagedCatalogueStopsEveryVerbAndIsKept) {
  const std::string dir = make_build("el9", "b1");
  ASSERT_EQ(ctl({"add", "-q", "EL9", dir}).exit_code, 0);
  std::string text = test::read_file(store + "/catalogue.toml");
  const auto at = text.find("verified_at = ");
  text.replace(at, 14, "verified_at = yesterday ");
  test::write_file(store + "/catalogue.toml", text);
  const std::string pos = str(store, "/catalogue.toml:", 1 + std::count(text.begin(), text.begin() + static_cast<long>(at), '\n'), ":15:");
  test::write_file(path("job.ad"), "RequestedChroot = \"EL9\"\n");
  for (std::vector<std::string> args : std::vector<std::vector<std::string>>{{"resolve", "EL9"},
                                                                             {"lookup", path("job.ad")},
                                                                             {"condor-config"},
                                                                             {"add", "-q", "EL9", dir},
                                                                             {"add", "-q", "EL10", dir},
                                                                             {"verify", "EL9"},
                                                                             {"list"}}) {
    auto r = ctl(args);
    EXPECT_EQ(r.exit_code, 2) << args[0] << r.out << r.err;
    EXPECT_EQ(r.err.substr(0, r.err.find(" error: ")), pos) << args[0] << ": " << r.err;
    EXPECT_EQ(test::read_file(store + "/catalogue.toml"), text) << args[0];
  }
}

}  // namespace
}  // namespace chrootctl
