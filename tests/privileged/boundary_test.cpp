// The host boundary against hostile images, archives and input (issue 18), through the command
// line as an administrator would meet it. Each test builds its hostile input itself (a recipe
// keeping a setuid-root program, export archives written by hostile_export.py with Python's
// tarfile, files holding ESC, BEL, NUL and 0xff), checks the refusal and its message, that
// nothing was written outside the store's staging directory, and that no host user can run
// with privileges anything that was built or imported (checked as nobody, through setpriv).
// Point 5 (job ads) is in batch_condor_test.cpp; the strip of a signed import in export_test.cpp.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "test_support.hpp"

namespace chrootctl {
namespace {

using test::CommandResult;

class Boundary : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    CHROOTCTL_REQUIRE_PRIVILEGE("root");
    CHROOTCTL_REQUIRE_TOOL("zstd");
    CHROOTCTL_REQUIRE_TOOL("setpriv");
    // A store every host user can reach the top of, as /var/lib/chrootctl is: the per-test
    // directory is opened, so only the store's own rule can keep anyone out.
    ASSERT_EQ(::chmod(m_dir.c_str(), 0755), 0);
    store = path("store");
    test::mkdirs(store);
    test::mkdirs(path("etc"));
    config = path("etc/config.toml");
    set_config("");
  }

  void set_config(const std::string& text) { test::write_file(config, text, 0644); }

  /// chrootctl with the test's configuration, and its store unless the arguments name one.
  CommandResult ctl(std::vector<std::string> args) {
    if (std::find(args.begin(), args.end(), "--store") == args.end() && args[0] != "manifest") {
      args.push_back("--store");
      args.push_back(store);
    }
    return test::run_chrootctl(args, {{"CHROOTCTL_CONFIG", config}});
  }
  CommandResult as_nobody(const std::string& command) {
    return test::run({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/bin/sh", "-c", command});
  }
  /// An export archive written by hostile_export.py.
  std::string hostile(const std::string& scenario) {
    std::string out = path(scenario + ".tar.zst");
    auto r = test::run({"python3", test::source_dir() + "/tests/privileged/hostile_export.py", out, scenario});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return out;
  }
  /// Everything in the test directory but the store's staging and lock directories, which a
  /// refused import may have made (and must leave empty).
  std::string everything() {
    return test::sh("cd '" + m_dir +
                    "' && find . -mindepth 1 ! -path './store/.staging' ! -path './store/.locks' ! -path './store/.locks/*' "
                    "-printf '%p %m %s\\n' | LC_ALL=C sort")
        .out;
  }
  void expect_staging_empty() { EXPECT_EQ(test::sh("ls -A '" + store + "/.staging' 2>/dev/null").out, ""); }
  mode_t mode_of(const std::string& p) {
    struct stat st {};
    EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
    return st.st_mode & 07777;
  }
  std::string image_dir(const std::string& name) {
    auto r = ctl({"resolve", name, "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return test::run({"python3", "-c", "import json,sys; print(json.load(sys.stdin)['image'], end='')"}, r.out).out;
  }

  std::string store, config;
};

// ---- 1. store layout ----

// A recipe that keeps a setuid-root program which prints its effective uid (`rootid`, built
// by the test): what a careless or hostile recipe does.
std::string setuid_recipe(const std::string& name, const std::string& rootid, bool setuid) {
  return str("name = \"", name, "\"\n[base]\nscratch = true\n[[files]]\nsrc = \"", rootid, "\"\ndst = \"/bin/rootid\"\nmode = \"",
             setuid ? "4755" : "0755", "\"\n[strip]\nsetuid = \"keep\"\n");
}

TEST_F(Boundary, StoreTreesAreRootOnlyUnlessReadableAndReadableOnesHoldNothingPrivileged) {
  CHROOTCTL_REQUIRE_TOOL("cc");
  const std::string rootid = path("rootid");
  test::write_file(path("rootid.c"), "#include <stdio.h>\n#include <unistd.h>\nint main(void) { printf(\"%u\\n\", geteuid()); return 0; }\n");
  ASSERT_EQ(test::run({"cc", "-o", rootid, path("rootid.c")}).exit_code, 0);
  test::write_file(path("keep.toml"), setuid_recipe("keep", rootid, true));
  auto b = ctl({"build", path("keep.toml"), "--register", "KEEP", "-q"});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  const std::string image = image_dir("KEEP");
  EXPECT_EQ(mode_of(image), 0700u) << "a build directory is reachable by root only";
  EXPECT_EQ(mode_of(image + "/root/bin/rootid"), 04755u);
  // nobody cannot even see the setuid-root program, let alone run it as root.
  auto run = as_nobody("'" + image + "/root/bin/rootid'");
  EXPECT_NE(run.exit_code, 0);
  EXPECT_EQ(run.out, "") << "nobody ran the setuid program";
  EXPECT_NE(run.err.find("Permission denied"), std::string::npos) << run.err;
  // resolve as nobody says why, instead of "permission denied" from somewhere on the way.
  auto res = test::run({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", CHROOTCTL_BIN, "resolve", "KEEP", "--store", store}, {},
                       {{"CHROOTCTL_CONFIG", config}});
  EXPECT_EQ(res.exit_code, 1);
  EXPECT_EQ(res.err,
            "chrootctl: error: 'KEEP' is not usable: launchers without root use only the images in readable_images of the site's "
            "configuration, and 'KEEP' is not one of them\n");
  // A fresh store has no store-permission finding.
  auto a = ctl({"audit", "--all", "--json"});
  EXPECT_EQ(a.out.find("store.reachable-privileged"), std::string::npos) << a.out;

  // An image unprivileged launchers must read may hold nothing privileged: refused (exit 1),
  // not registered, and left reachable by root only.
  set_config("readable_images = [\"OPEN\"]\n");
  auto open = ctl({"build", path("keep.toml"), "--register", "OPEN", "-q"});
  EXPECT_EQ(open.exit_code, 1);
  EXPECT_NE(open.err.find(str("refusing to add '", image, "' as 'OPEN': 'OPEN' is in readable_images in ", config,
                              ": unprivileged launchers read its tree, so it must hold no setuid, setgid or capability file and no device "
                              "node, but it holds 1 entry: '/bin/rootid' (setuid root (mode 4755))")),
            std::string::npos)
      << open.err;
  EXPECT_EQ(ctl({"show", "OPEN"}).exit_code, 1);
  EXPECT_EQ(mode_of(image), 0700u);

  // The same tree without the setuid bit is opened for them, and runs as nobody, as nobody.
  test::write_file(path("clean.toml"), setuid_recipe("clean", rootid, false));
  auto c = ctl({"build", path("clean.toml"), "--register", "OPEN", "-q"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  const std::string open_image = image_dir("OPEN");
  EXPECT_EQ(mode_of(open_image), 0755u);
  auto job = as_nobody("'" + open_image + "/root/bin/rootid'");
  EXPECT_EQ(job.out, "65534\n") << job.err;
  // What readable_images lists is the rule for launchers without root, not whether a tree can
  // be reached: another name of the same opened tree is refused to them, and so is a name the
  // site takes off the list (its tree stays open until a verify).
  ASSERT_EQ(ctl({"add", "OTHER", open_image, "-q"}).exit_code, 0);
  auto resolve_as_nobody = [&](const std::string& name) {
    return test::run({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", CHROOTCTL_BIN, "resolve", name, "--store", store}, {},
                     {{"CHROOTCTL_CONFIG", config}});
  };
  auto listed = resolve_as_nobody("OPEN");
  EXPECT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_EQ(listed.out, open_image + "/root\n");
  const std::string not_listed =
      "chrootctl: error: 'OTHER' is not usable: launchers without root use only the images in readable_images "
      "of the site's configuration, and 'OTHER' is not one of them\n";
  auto other = resolve_as_nobody("OTHER");
  EXPECT_EQ(other.exit_code, 1);
  EXPECT_EQ(other.err, not_listed);
  EXPECT_EQ(ctl({"resolve", "OTHER"}).exit_code, 0) << "root resolves every usable name";
  // list and show say the same to them: OTHER is root-only, OPEN verified.
  auto list_as_nobody = test::run({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", CHROOTCTL_BIN, "list", "--json", "--store", store},
                                  {}, {{"CHROOTCTL_CONFIG", config}});
  ASSERT_EQ(list_as_nobody.exit_code, 0) << list_as_nobody.err;
  auto states = test::run({"python3", "-c", "import json,sys; print(sorted((e['name'], e['state']) for e in json.load(sys.stdin)['entries']))"},
                          list_as_nobody.out);
  EXPECT_EQ(states.out, "[('KEEP', 'root-only'), ('OPEN', 'verified'), ('OTHER', 'root-only')]\n") << list_as_nobody.out;
  auto list_as_root = ctl({"list", "--json"});
  states = test::run({"python3", "-c", "import json,sys; print(sorted((e['name'], e['state']) for e in json.load(sys.stdin)['entries']))"},
                     list_as_root.out);
  EXPECT_EQ(states.out, "[('KEEP', 'verified'), ('OPEN', 'verified'), ('OTHER', 'verified')]\n") << list_as_root.out;
  set_config("");
  other = resolve_as_nobody("OPEN");
  EXPECT_EQ(other.exit_code, 1);
  EXPECT_NE(other.err.find("'OPEN' is not one of them"), std::string::npos) << other.err;
  EXPECT_EQ(mode_of(open_image), 0755u);
  set_config("readable_images = [\"OPEN\"]\n");

  // An older store, opened by hand: audit reports it, verify repairs it and says so.
  ASSERT_EQ(::chmod(image.c_str(), 0755), 0);
  EXPECT_EQ(as_nobody("'" + image + "/root/bin/rootid'").out, "0\n") << "the hole the rule closes is real";
  a = ctl({"audit", "KEEP"});
  EXPECT_EQ(a.exit_code, 1);
  EXPECT_NE(a.out.find("store.reachable-privileged"), std::string::npos) << a.out;
  EXPECT_NE(a.out.find(str("setuid root (mode 4755); every user of this host can reach ", image, "/root")), std::string::npos) << a.out;
  auto v = ctl({"verify", "KEEP"});
  EXPECT_EQ(v.exit_code, 0) << v.err;
  EXPECT_NE(v.out.find(str("host users could reach '", image, "/root', which holds 1 entry: '/bin/rootid' (setuid root (mode 4755)); '", image,
                           "' was made reachable by root only (0700)")),
            std::string::npos)
      << v.out << v.err;
  EXPECT_EQ(mode_of(image), 0700u);
  EXPECT_EQ(as_nobody("'" + image + "/root/bin/rootid'").out, "");
  a = ctl({"audit", "--all", "--json"});
  EXPECT_EQ(a.out.find("store.reachable-privileged"), std::string::npos) << a.out;
}

// ---- 2. one privilege policy for builds and imports ----

TEST_F(Boundary, ImportRefusesPrivilegedEntriesByDefaultAndStripDefusesAndRecordsThem) {
  const std::string archive = hostile("privileged");
  const std::string before = everything();
  auto r = ctl({"import", "-q", "--allow-unsigned", archive});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, str("chrootctl: error: refusing to import '", archive,
                       "': its tree holds what the site's strip policy does not allow: 3 entries: '/bin/capsh' (file capability), "
                       "'/bin/rootsh' (setuid root (mode 4755)), '/dev/mem' (character device 1,1); import it with --strip to remove or "
                       "defuse them (the manifest records what was changed), or allow them in [strip] of ",
                       config, "\n"));
  // Refused from the manifest, before anything was written: not even a staging directory.
  EXPECT_EQ(everything(), before);

  // --strip: written defused, every change in the report and in the manifest's header.
  r = ctl({"import", "-q", "--allow-unsigned", "--strip", archive});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string image = store + "/hostile/h1";
  EXPECT_NE(r.out.find("HOSTILE: stripped /bin/capsh: capability-dropped (was file capability)\n"
                       "HOSTILE: stripped /bin/rootsh: setuid-cleared (was setuid root (mode 4755))\n"
                       "HOSTILE: stripped /dev/mem: device-removed (was character device 1,1)\n"),
            std::string::npos)
      << r.out;
  const std::string m = test::read_file(image + "/manifest");
  EXPECT_NE(m.find("\n#stripped setuid-cleared /bin/rootsh type=f mode=4755 uid=0 gid=0 size=16 sha256="), std::string::npos) << m;
  EXPECT_NE(m.find("\n#stripped device-removed /dev/mem type=c mode=0666 uid=0 gid=0 rdev=1,1\n"), std::string::npos) << m;
  EXPECT_EQ(mode_of(image + "/root/bin/rootsh"), 0755u);
  EXPECT_EQ(test::sh("getcap '" + image + "/root/bin/capsh'").out, "");
  EXPECT_FALSE(sys::lstat_path(image + "/root/dev/mem"));
  EXPECT_EQ(mode_of(image), 0700u);
  EXPECT_EQ(as_nobody("'" + image + "/root/bin/rootsh'").out, "");
  EXPECT_EQ(ctl({"verify", "HOSTILE"}).exit_code, 0);
  expect_staging_empty();

  // Allowed by the site's [strip], a setuid file is kept, and only root can reach it.
  set_config("[strip]\nallow_setuid = [\"/bin/rootsh\"]\ncapabilities = false\ndevices = false\n");
  r = ctl({"import", "-q", "--allow-unsigned", "--as", "KEPT", "--store", path("store2"), archive});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(mode_of(path("store2/hostile/h1/root/bin/rootsh")), 04755u);
  EXPECT_EQ(mode_of(path("store2/hostile/h1")), 0700u);
  EXPECT_EQ(as_nobody("test -e '" + path("store2/hostile/h1/root/bin/rootsh") + "'").exit_code, 1);

  // An image unprivileged launchers read may hold nothing privileged, allowed or not.
  set_config("readable_images = [\"OPEN\"]\n[strip]\nallow_setuid = [\"/bin/rootsh\"]\n");
  const std::string before3 = everything();
  r = ctl({"import", "-q", "--allow-unsigned", "--strip", "--as", "OPEN", "--store", path("store3"), archive});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, str("chrootctl: error: refusing to import '", archive, "': 'OPEN' is in readable_images in ", config,
                       ": unprivileged launchers read its tree, so it must hold no setuid, setgid or capability file and no device node, "
                       "but it still holds 1 entry: '/bin/rootsh' (setuid root (mode 4755)) (allowed by [strip] of ",
                       config, ")\n"));
  EXPECT_EQ(everything(), before3);
  set_config("readable_images = [\"OPEN\"]\n");
  r = ctl({"import", "-q", "--allow-unsigned", "--strip", "--as", "OPEN", "--store", path("store3"), archive});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string open = path("store3/hostile/h1");
  EXPECT_EQ(mode_of(open), 0755u);
  EXPECT_EQ(test::sh("find '" + open + "/root' -perm /6000 -o -type c -o -type b").out, "");
  EXPECT_EQ(test::sh("getcap -r '" + open + "/root'").out, "");
  // nobody runs what was imported, as nobody.
  EXPECT_EQ(as_nobody("'" + open + "/root/bin/rootsh'").out, "65534\n");
  EXPECT_EQ(as_nobody("'" + open + "/root/bin/capsh'").out, "65534\n");
}

// ---- 3. streaming import checks ----

TEST_F(Boundary, ImportChecksEachEntryAsItIsUnpackedAndStopsAtTheFirstMismatch) {
  struct Case {
    std::string scenario, message;
  };
  const std::vector<Case> cases = {
      {"extra-big", "the archive's '/aaa-extra' is not in its manifest"},
      {"oversize", "the archive's '/etc/motd' is 1073741824 bytes, not 6 (its manifest line says otherwise)"},
      {"sparse", "the archive's '/big' is a sparse file (holes are refused before anything is written)"},
      {"mismatch",
       "the archive's '/etc/motd' has sha256 0655937a5582c55b9ac610ed7ce474ed9be0a0fbefe9afcba31b36040be5530b, not the "
       "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03 its manifest line gives"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.scenario);
    const std::string archive = hostile(c.scenario);
    const std::string before = everything();
    const auto t0 = std::chrono::steady_clock::now();
    auto r = ctl({"import", "-q", "--allow-unsigned", archive});
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.err, str("chrootctl: error: refusing to import '", archive, "': extracting ", archive, ": ", c.message, "\n"));
    // The 2 GiB entry, the 1 GiB one and the 10 TiB sparse file are refused at their headers.
    EXPECT_LT(seconds, 5.0);
    EXPECT_EQ(everything(), before) << "nothing is left but the (empty) staging directory";
    expect_staging_empty();
    EXPECT_EQ(test::sh("du -sk '" + store + "' | cut -f1").out.size() < 6, true) << "under 100 MiB was ever kept";
    ASSERT_EQ(::unlink(archive.c_str()), 0);
  }
  // Every member read into memory has a limit.
  const std::string big = hostile("big-member");
  auto r = ctl({"import", "-q", "--allow-unsigned", big});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err,
            str("chrootctl: error: refusing to import '", big, "': '", big, "': its member 'chrootctl-export.toml' is larger than 64.0 KiB\n"));
  // The clean archive imports, checked entry by entry, where only root can reach it.
  r = ctl({"import", "-q", "--allow-unsigned", hostile("clean")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(mode_of(store + "/hostile/h1"), 0700u);
  auto job = as_nobody("'" + store + "/hostile/h1/root/bin/job'");
  EXPECT_NE(job.exit_code, 0);
  EXPECT_EQ(job.out, "");
  // manifest check reads a manifest with a limit: /dev/zero fails at once.
  const auto t0 = std::chrono::steady_clock::now();
  auto z = ctl({"manifest", "check", store + "/hostile/h1/root", "/dev/zero"});
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 1.0);
  EXPECT_EQ(z.exit_code, 2);
  EXPECT_EQ(z.err, "chrootctl: error: reading manifest /dev/zero: not a regular file\n");
  auto fifo = test::sh("mkfifo '" + path("fifo") + "' && (head -c 100000000 /dev/zero > '" + path("fifo") +
                       "' &) && '" CHROOTCTL_BIN "' manifest check '" + store + "/hostile/h1/root' '" + path("fifo") + "'");
  EXPECT_EQ(fifo.exit_code, 2);
  EXPECT_EQ(fifo.err, str("chrootctl: error: ", path("fifo"), ":1: not a chrootctl manifest (expected '#chrootctl-manifest 1' on the first line)\n"));
}

// ---- 6. terminal-safe output ----

// Output a terminal cannot be steered by: printable ASCII, newlines and tabs only.
bool terminal_clean(const std::string& s) {
  for (unsigned char c : s)
    if (!((c >= 0x20 && c < 0x7f) || c == '\n' || c == '\t')) return false;
  return true;
}

TEST_F(Boundary, EveryMessageQuotingInputIsTerminalSafe) {
  const std::vector<std::pair<std::string, std::string>> bytes = {
      {"ESC", "\x1b]0;owned\x07"}, {"BEL", "\x07"}, {"NUL", std::string(1, '\0')}, {"0xff", "\xff"}};
  auto check = [&](const std::string& what, const CommandResult& r, const std::string& escaped) {
    SCOPED_TRACE(what);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_TRUE(terminal_clean(r.out)) << r.out;
    EXPECT_TRUE(terminal_clean(r.err)) << r.err;
    EXPECT_NE((r.out + r.err).find(escaped), std::string::npos) << r.out << r.err;
  };
  auto escape_of = [](const std::string& b) { return b == std::string(1, '\0') ? "\\x00" : b == "\xff" ? "\\xff" : b == "\x07" ? "\\x07" : "\\x1b"; };
  ASSERT_EQ(ctl({"import", "-q", "--allow-unsigned", hostile("clean")}).exit_code, 0);
  for (const auto& [name, b] : bytes) {
    const std::string e = escape_of(b);
    // Recipes: a value, and a key, holding the byte.
    test::write_file(path("r.toml"), "name = \"r\"\ndescription = \"x" + b + "y\"\n[base]\nscratch = true\n");
    check(name + " in a recipe", ctl({"build", path("r.toml")}), e);
    // The catalogue, damaged by hand.
    const std::string cat = test::read_file(store + "/catalogue.toml");
    test::write_file(store + "/catalogue.toml", cat + "# " + b + "\n");
    check(name + " in the catalogue", ctl({"list"}), e);
    test::write_file(store + "/catalogue.toml", cat);
    // The site's configuration.
    set_config("trusted_keys = \"/x" + b + "\"\nunknown" + b + " = 1\n");
    check(name + " in the configuration", ctl({"list"}), e);
    set_config("");
    // Names and paths on the command line (argv holds no NUL: its bytes end the argument).
    if (b[0] != '\0') {
      check(name + " in a name", ctl({"resolve", "EL" + b}), e);
      check(name + " in a path", ctl({"manifest", "check", path("no" + b), path("nope" + b)}), e);
      check(name + " in a path to add", ctl({"add", "X", path("b" + b)}), e);
    }
  }
  // Archives: members before root/, the export entry and the manifest hold ESC, BEL, 0xff and
  // (in the manifest) NUL; each is refused before anything of the tree is written.
  const std::vector<std::string> archives = {hostile("control"), hostile("control-toml"), hostile("control-manifest")};
  const std::string before = everything();
  check("a member name", ctl({"import", "-q", "--allow-unsigned", archives[0]}), "evil\\x1b]0;owned\\x07\\xff");
  check("the export entry", ctl({"import", "-q", "--allow-unsigned", archives[1]}), "name = \"\\x1b]0;owned\\x07\\xff\"");
  check("the manifest", ctl({"import", "-q", "--allow-unsigned", archives[2]}), "'/etc/mo\\x1b[2J\\x07\\x00\\xfftd'");
  EXPECT_EQ(everything(), before);
  expect_staging_empty();
}

}  // namespace
}  // namespace chrootctl
