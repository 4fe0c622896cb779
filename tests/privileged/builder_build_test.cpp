// Whole builds through the library and the binary: store layout, lock, cache, rebuilds,
// every local base, reproducibility, atomicity under SIGKILL, the build lock and stale staging.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "builder_fixtures.hpp"
#include "chrootctl/builder/build.hpp"
#include "chrootctl/builder/recipe.hpp"
#include "chrootctl/common/manifest.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/toml.hpp"
#include "test_support.hpp"

namespace chrootctl::builder {
namespace {

class BuilderBuild : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    store = path("store");
  }
  Recipe recipe(const std::string& name, const std::string& body) {
    const std::string file = path(name + ".toml");
    test::write_file(file, "name = \"" + name + "\"\n" + body);
    auto r = load_recipe(file, "recipes/" + name + ".toml");
    EXPECT_TRUE(r) << r.error().what();
    return r ? *r : Recipe{};
  }
  Result<BuildResult> build_it(const Recipe& r, bool rebuild = false, const std::optional<std::string>& store_dir = std::nullopt) {
    BuildOptions o;
    o.store = store_dir.value_or(store);
    o.rebuild = rebuild;
    o.threads = 2;
    return build(r, o);
  }
  std::vector<std::string> ls(const std::string& dir) {
    auto r = test::sh("ls -A '" + dir + "' 2>/dev/null");
    return r.out.empty() ? std::vector<std::string>{} : split(std::string(trim(r.out)), '\n');
  }
  // A source tree with setuid bits, hard links, xattrs and a device node outside /dev.
  std::string make_source_tree(const std::string& where, int files = 20) {
    test::mkdirs(where + "/usr/bin");
    test::mkdirs(where + "/etc");
    test::mkdirs(where + "/data");
    test::write_file(where + "/usr/bin/su", "su", 04755);
    ::chmod((where + "/usr/bin/su").c_str(), 04755);
    test::write_file(where + "/usr/bin/tool", "tool", 0755);
    EXPECT_EQ(::link((where + "/usr/bin/tool").c_str(), (where + "/usr/bin/tool2").c_str()), 0);
    EXPECT_EQ(::symlink("tool", (where + "/usr/bin/tool-link").c_str()), 0);
    test::write_file(where + "/etc/passwd", "root:x:0:0::/root:/bin/sh\n");
    test::write_file(where + "/etc/shadow", "root:$6$a$b:1::::::\n", 0640);
    ::setxattr((where + "/usr/bin/tool").c_str(), "user.origin", "test", 4, 0);
    ::setxattr((where + "/usr/bin/tool").c_str(), "trusted.overlay.redirect", "/etc", 4, 0);
    for (int i = 0; i < files; ++i) test::write_file(str(where, "/data/f", i), str("file ", i, "\n"));
    return where;
  }
  std::string store;
};

TEST_F(BuilderBuild, DirectoryBaseMakesACompleteImageAndIsCached) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  const std::string src = make_source_tree(path("src"));
  auto r = recipe("dirbase", "[base]\ndirectory = \"" + src +
                                 "\"\n[strip]\nsetuid = \"clear-bit\"\nremove = [\"/data/f1*\"]\n"
                                 "[layout]\nmkdir = [\"/tmp\", \"/cvmfs\"]\n[layout.symlinks]\n\"/bin\" = \"usr/bin\"\n"
                                 "[[files]]\ndst = \"/etc/krb5.conf\"\ncontent = \"[libdefaults]\\n\"\nmode = \"0640\"\ngid = 42\n");
  auto b = build_it(r);
  ASSERT_TRUE(b) << b.error().what();
  EXPECT_FALSE(b->cached);
  ASSERT_EQ(b->build_id.size(), 21u);
  EXPECT_EQ(b->build_id.substr(0, 12), b->input_key.substr(0, 12));
  EXPECT_EQ(b->build_id.substr(13), b->tree_digest.substr(0, 8));
  EXPECT_EQ(b->build_dir, store + "/dirbase/" + b->build_id);
  const std::vector<std::string> files = {"build.log", "lock", "manifest", "manifest.stat", "recipe.toml", "root", "strip-report"};
  EXPECT_EQ(ls(b->build_dir), files);
  EXPECT_EQ(ls(store + "/dirbase"), (std::vector<std::string>{b->build_id, "latest"}));
  EXPECT_EQ(ls(store + "/.staging"), std::vector<std::string>{}) << "no staging left behind";

  // The manifest describes the tree and its end line holds the digest that was printed.
  auto digest = manifest::read_digest(b->build_dir + "/manifest");
  ASSERT_TRUE(digest);
  EXPECT_EQ(*digest, b->tree_digest);
  auto m = manifest::load(b->build_dir + "/manifest");
  ASSERT_TRUE(m) << m.error().what();
  auto check = manifest::check(b->root, *m);
  ASSERT_TRUE(check);
  EXPECT_FALSE(check->differs_beyond_mtime()) << manifest::render_text(*check);
  auto stat = manifest::load_stat(b->build_dir + "/manifest.stat");
  ASSERT_TRUE(stat);
  EXPECT_EQ(stat->manifest_digest, b->tree_digest);
  auto fast = manifest::check_fast(b->root, *stat);
  ASSERT_TRUE(fast);
  EXPECT_FALSE(fast->differs_beyond_mtime()) << manifest::render_text(*fast);
  // trusted.* attributes (overlayfs obeys trusted.overlay.*) are not carried into the image.
  char xbuf[64];
  EXPECT_LT(::lgetxattr((b->root + "/usr/bin/tool").c_str(), "trusted.overlay.redirect", xbuf, sizeof xbuf), 0);
  EXPECT_EQ(::lgetxattr((b->root + "/usr/bin/tool").c_str(), "user.origin", xbuf, sizeof xbuf), 4);

  const auto* su = m->find("/usr/bin/su");
  ASSERT_NE(su, nullptr);
  EXPECT_EQ(su->mode, 0755u) << "clear-bit";
  const auto* tool2 = m->find("/usr/bin/tool2");
  ASSERT_NE(tool2, nullptr);
  EXPECT_EQ(tool2->link, "/usr/bin/tool") << "hard links survive the copy";
  ASSERT_EQ(m->find("/usr/bin/tool")->xattrs.size(), 1u);
  EXPECT_EQ(m->find("/data/f1"), nullptr);
  EXPECT_EQ(m->find("/data/f15"), nullptr);
  ASSERT_NE(m->find("/data/f2"), nullptr);
  EXPECT_EQ(m->find("/tmp")->mode, 01777u);
  EXPECT_EQ(m->find("/bin")->target, "usr/bin");
  const auto* krb = m->find("/etc/krb5.conf");
  ASSERT_NE(krb, nullptr);
  EXPECT_EQ(krb->mode, 0640u);
  EXPECT_EQ(krb->gid, 42u);
  EXPECT_NE(test::read_file(b->root + "/etc/shadow").find("root:*:1"), std::string::npos);

  // recipe.toml is the recipe as used; the lock names every input and the tree.
  EXPECT_EQ(test::read_file(b->build_dir + "/recipe.toml"), r.text);
  auto lock = load_toml(b->build_dir + "/lock");
  ASSERT_TRUE(lock) << lock.error().what();
  EXPECT_EQ(lock->table["name"].value_or(std::string()), "dirbase");
  EXPECT_EQ(lock->table["build_id"].value_or(std::string()), b->build_id);
  EXPECT_EQ(lock->table["tree_digest"].value_or(std::string()), "sha256:" + b->tree_digest);
  EXPECT_EQ(lock->table["input_key"].value_or(std::string()), "sha256:" + b->input_key);
  const auto* inputs = lock->table["input"].as_array();
  ASSERT_NE(inputs, nullptr);
  std::vector<std::string> kinds;
  for (const auto& i : *inputs) kinds.push_back(i.as_table()->get("kind")->value_or(std::string()));
  EXPECT_EQ(kinds, (std::vector<std::string>{"builder", "recipe", "base.directory"}));
  const std::string log = test::read_file(b->build_dir + "/build.log");
  EXPECT_NE(log.find("strip: setuid-cleared /usr/bin/su (4755 -> 0755)"), std::string::npos) << log;
  EXPECT_NE(log.find("strip: removed /data/f1 (matches /data/f1*)"), std::string::npos) << log;

  // Cached: same inputs, same id, no work.
  auto again = build_it(r);
  ASSERT_TRUE(again) << again.error().what();
  EXPECT_TRUE(again->cached);
  EXPECT_EQ(again->build_id, b->build_id);
  EXPECT_EQ(again->tree_digest, b->tree_digest);
  // --rebuild does the work and, the tree being the same, keeps the image that is there.
  struct stat before {};
  ASSERT_EQ(::stat((b->build_dir + "/manifest").c_str(), &before), 0);
  auto re = build_it(r, true);
  ASSERT_TRUE(re) << re.error().what();
  EXPECT_FALSE(re->cached);
  EXPECT_EQ(re->build_id, b->build_id);
  struct stat after {};
  ASSERT_EQ(::stat((b->build_dir + "/manifest").c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino) << "the registered image was not replaced";
  EXPECT_EQ(ls(store + "/.staging"), std::vector<std::string>{});

  // A changed input is a new build with a new id; latest moves to it.
  test::write_file(src + "/data/f2", "changed\n");
  auto changed = build_it(r);
  ASSERT_TRUE(changed) << changed.error().what();
  EXPECT_FALSE(changed->cached);
  EXPECT_NE(changed->build_id, b->build_id);
  EXPECT_NE(changed->tree_digest, b->tree_digest);
  auto latest = store_latest(store, "dirbase");
  ASSERT_TRUE(latest);
  EXPECT_EQ(*latest, changed->build_dir);
}

TEST_F(BuilderBuild, ArchiveBaseIsPinnedAndDatesDefaultToItsNewestEntry) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  const std::string tarball = path("rootfs.tar.gz");
  fixtures::write_tar(
      tarball,
      {{".", 'd', "", 0755}, {"bin", 'd', "", 0755}, {"bin/sh", 'f', "#!sh", 0755}, {"etc", 'd', "", 0755}, {"etc/os-release", 'f', "ID=centos\n"}},
      "gzip");
  const std::string sha = fixtures::file_sha256(tarball);
  auto bad = recipe("arch", "[base]\narchive = { path = \"rootfs.tar.gz\", sha256 = \"" + std::string(64, 'e') + "\" }\n");
  auto f = build_it(bad);
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error().code(), Errc::mismatch);
  EXPECT_EQ(f.error().what(), str("recipes/arch.toml:3:1: error: '", tarball, "' has sha256 ", sha, " but the recipe pins ", std::string(64, 'e'),
                                  "\n 3 | archive = { path = \"rootfs.tar.gz\", sha256 = \"", std::string(64, 'e'), "\" }\n   | ^"));
  EXPECT_EQ(ls(store + "/.staging"), std::vector<std::string>{}) << "a failed build leaves nothing";
  EXPECT_EQ(ls(store + "/arch"), std::vector<std::string>{});
  const std::string failed_log = test::read_file(store + "/.locks/arch.failed.log");
  EXPECT_NE(failed_log.find("base: extracting " + tarball + "\nerror: recipes/arch.toml:3:1: error: '"), std::string::npos) << failed_log;

  auto good = recipe("arch", "[base]\narchive = { path = \"rootfs.tar.gz\", sha256 = \"" + sha + "\" }\n");
  auto b = build_it(good);
  ASSERT_TRUE(b) << b.error().what();
  EXPECT_EQ(b->source_date_epoch, 1700000000);
  EXPECT_EQ(test::read_file(b->root + "/etc/os-release"), "ID=centos\n");
  auto lock = load_toml(b->build_dir + "/lock");
  ASSERT_TRUE(lock);
  EXPECT_EQ(lock->table["source_date_epoch_from"].value_or(std::string()), "the newest entry of the base archive");
}

TEST_F(BuilderBuild, OciBase) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  const std::string tarball = path("img.tar");
  fixtures::write_docker_save(tarball, m_dir, {{{"etc", 'd', "", 0755}, {"etc/a", 'f', "a"}}, {{"etc/.wh.a", 'f', ""}, {"etc/b", 'f', "b"}}},
                              "site/centos:5");
  auto r = recipe("ocib", "[base]\noci = { path = \"" + tarball + "\", sha256 = \"" + fixtures::file_sha256(tarball) + "\" }\n");
  auto b = build_it(r);
  ASSERT_TRUE(b) << b.error().what();
  struct stat st {};
  EXPECT_NE(::lstat((b->root + "/etc/a").c_str(), &st), 0);
  EXPECT_EQ(test::read_file(b->root + "/etc/b"), "b");
  EXPECT_NE(test::read_file(b->build_dir + "/build.log").find("image site/centos:5: 2 layers"), std::string::npos);
}

TEST_F(BuilderBuild, ImageBaseIsVerifiedAgainstItsManifest) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  const std::string src = make_source_tree(path("src"), 3);
  auto base = build_it(recipe("base", "[base]\ndirectory = \"" + src + "\"\n[strip]\nsetuid = \"keep\"\n"));
  ASSERT_TRUE(base) << base.error().what();
  auto derived_recipe = recipe("derived", "[base]\nimage = \"base\"\n[[files]]\ndst = \"/etc/site\"\ncontent = \"x\"\n");
  auto d = build_it(derived_recipe);
  ASSERT_TRUE(d) << d.error().what();
  EXPECT_EQ(test::read_file(d->root + "/etc/site"), "x");
  EXPECT_EQ(test::read_file(d->root + "/usr/bin/tool"), "tool");
  EXPECT_EQ(d->source_date_epoch, base->source_date_epoch) << "the base image's epoch is the default";
  // The lock pins the base image by build id and tree digest.
  EXPECT_NE(test::read_file(d->build_dir + "/lock").find("name = \"base " + base->build_id + "\"\ndigest = \"sha256:" + base->tree_digest),
            std::string::npos)
      << test::read_file(d->build_dir + "/lock");

  // Someone edits the base image in the store: the derived build refuses it.
  test::write_file(base->root + "/etc/passwd", "root:x:0:0::/root:/bin/sh\nevil:x:0:0::/:/bin/sh\n");
  auto tampered = build_it(derived_recipe, true);
  ASSERT_FALSE(tampered);
  EXPECT_EQ(tampered.error().code(), Errc::mismatch);
  EXPECT_NE(tampered.error().what().find("recipes/derived.toml:3:1: error: base image 'base' does not match its manifest "), std::string::npos)
      << tampered.error().what();
  EXPECT_NE(tampered.error().what().find("changed /etc/passwd"), std::string::npos) << tampered.error().what();

  // A resolver given by the caller (the catalogue, later) decides what "base" is.
  BuildOptions o;
  o.store = store;
  o.resolve_image = [&](const std::string& name) -> Result<std::string> { return fail(Errc::not_found, "no catalogue entry " + quote(name)); };
  auto unresolved = build(derived_recipe, o);
  ASSERT_FALSE(unresolved);
  EXPECT_EQ(unresolved.error().what(),
            "recipes/derived.toml:3:1: error: base image 'base': no catalogue entry 'base'\n 3 | image = \"base\"\n   | ^");
}

TEST_F(BuilderBuild, MinimalIsReproducibleAcrossStores) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  CHROOTCTL_REQUIRE_TOOL("busybox");
  auto r = find_recipe("minimal", {test::source_dir() + "/recipes"});
  ASSERT_TRUE(r) << r.error().what();
  auto a = build_it(*r, false, path("store-a"));
  ASSERT_TRUE(a) << a.error().what();
  auto b = build_it(*r, false, path("store-b"));
  ASSERT_TRUE(b) << b.error().what();
  EXPECT_FALSE(b->cached);
  EXPECT_EQ(a->tree_digest, b->tree_digest);
  EXPECT_EQ(a->build_id, b->build_id);
  EXPECT_EQ(test::read_file(a->build_dir + "/manifest"), test::read_file(b->build_dir + "/manifest")) << "mtimes too (SOURCE_DATE_EPOCH)";
  // The root runs a shell: busybox and its links are in place.
  struct stat st {};
  ASSERT_EQ(::lstat((a->root + "/bin/busybox").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  // An explicit SOURCE_DATE_EPOCH is an input: a new build id, the same tree digest.
  BuildOptions o;
  o.store = path("store-a");
  o.source_date_epoch = 1234567890;
  auto c = build(*r, o);
  ASSERT_TRUE(c) << c.error().what();
  EXPECT_NE(c->build_id, a->build_id);
  EXPECT_EQ(c->tree_digest, a->tree_digest);
  EXPECT_EQ(c->source_date_epoch, 1234567890);
  EXPECT_NE(test::read_file(c->build_dir + "/manifest").find(" mtime=1234567890.000000000\n"), std::string::npos);
}

TEST_F(BuilderBuild, StaleStagingIsCleanedButALiveOneIsKept) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  test::mkdirs(store + "/.staging/dead.abc123/root/etc");
  test::write_file(store + "/.staging/dead.abc123/root/etc/x", "x");
  test::mkdirs(store + "/.staging/live.def456");
  const int live = ::open((store + "/.staging/live.def456").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(live, 0);
  ASSERT_EQ(::flock(live, LOCK_EX), 0);
  auto b = build_it(recipe("tiny", "[base]\nscratch = true\n[layout]\nmkdir = [\"/tmp\"]\n"));
  ASSERT_TRUE(b) << b.error().what();
  EXPECT_EQ(ls(store + "/.staging"), std::vector<std::string>{"live.def456"});
  ::close(live);
  auto n = clean_stale_staging(store);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 1u);
  EXPECT_EQ(ls(store + "/.staging"), std::vector<std::string>{});
}

// Runs the binary and kills it with SIGKILL after `delay`; returns true if it had finished.
bool run_and_kill(const std::vector<std::string>& args, std::chrono::microseconds delay) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 1);
    ::dup2(null, 2);
    std::vector<char*> argv;
    static const std::string bin = CHROOTCTL_BIN;
    argv.push_back(const_cast<char*>(bin.c_str()));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  std::this_thread::sleep_for(delay);
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status);
}

TEST_F(BuilderBuild, KilledAtAnyMomentLeavesNoImageOrOnlyACompleteOne) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  const std::string src = make_source_tree(path("src"), 3000);
  const std::string file = path("killme.toml");
  test::write_file(file, "name = \"killme\"\n[base]\ndirectory = \"" + src + "\"\n[strip]\nremove = [\"/data/f2*\"]\n");
  // How long an uninterrupted build takes, to spread the kills over it.
  const auto t0 = std::chrono::steady_clock::now();
  auto full = test::run_chrootctl({"build", file, "--store", path("timing"), "-q"});
  ASSERT_EQ(full.exit_code, 0) << full.err;
  const auto total = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0);
  const auto step = std::max<std::chrono::microseconds>(total / 25, std::chrono::microseconds(2000));
  int killed = 0;
  for (auto delay = std::chrono::microseconds(0); delay < total + step * 2; delay += step) {
    const bool finished = run_and_kill({"build", file, "--store", store, "-q", "--rebuild"}, delay);
    killed += !finished;
    // Whatever the moment: either no image, or a complete one that verifies.
    for (const auto& id : ls(store + "/killme")) {
      if (id == "latest") continue;
      const std::string dir = store + "/killme/" + id;
      auto m = manifest::load(dir + "/manifest");
      ASSERT_TRUE(m) << "after a kill at " << delay.count() << " us: " << dir << ": " << m.error().what();
      auto c = manifest::check(dir + "/root", *m);
      ASSERT_TRUE(c);
      ASSERT_FALSE(c->differs_beyond_mtime()) << dir << "\n" << manifest::render_text(*c);
      for (const char* f : {"/lock", "/recipe.toml", "/build.log", "/strip-report", "/manifest.stat"}) {
        struct stat st {};
        ASSERT_EQ(::stat((dir + f).c_str(), &st), 0) << dir << f;
      }
    }
    if (!ls(store + "/.staging").empty()) {
      // A killed build leaves its staging directory; the next build removes it.
      EXPECT_TRUE(ls(store + "/.staging")[0].starts_with("killme."));
    }
  }
  EXPECT_GT(killed, 5) << "the kills should land while builds run";
  auto last = test::run_chrootctl({"build", file, "--store", store, "-q", "--rebuild"});
  ASSERT_EQ(last.exit_code, 0) << last.err;
  EXPECT_EQ(ls(store + "/.staging"), std::vector<std::string>{});
  EXPECT_EQ(ls(store + "/killme").size(), 2u) << "one image and latest, not: " << join(ls(store + "/killme"), " ");
  // Nothing of ours still runs.
  EXPECT_EQ(test::sh("pgrep -f '[c]hrootctl build " + file + "' | wc -l").out, "0\n");
}

// A build killed while it moved `latest` leaves the new link under its temporary name; the next
// build replaces it rather than leaving it in the store for good.
TEST_F(BuilderBuild, ALatestLinkLeftByAKilledBuildIsReplaced) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  const std::string src = make_source_tree(path("src"), 10);
  const std::string file = path("leftover.toml");
  test::write_file(file, "name = \"leftover\"\n[base]\ndirectory = \"" + src + "\"\n");
  ASSERT_EQ(test::run_chrootctl({"build", file, "--store", store, "-q"}).exit_code, 0);
  ASSERT_EQ(::symlink("nothing", (store + "/leftover/.latest.new").c_str()), 0);
  auto again = test::run_chrootctl({"build", file, "--store", store, "-q", "--rebuild"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  const auto left = ls(store + "/leftover");
  EXPECT_EQ(left.size(), 2u) << join(left, " ");
  EXPECT_EQ(std::count(left.begin(), left.end(), ".latest.new"), 0) << join(left, " ");
}

TEST_F(BuilderBuild, ConcurrentBuildsOfOneRecipeAreSerialised) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  const std::string src = make_source_tree(path("src"), 2000);
  const std::string file = path("twice.toml");
  test::write_file(file, "name = \"twice\"\n[base]\ndirectory = \"" + src + "\"\n");
  test::CommandResult a, b;
  std::thread ta([&] { a = test::run_chrootctl({"build", file, "--store", store}); });
  std::thread tb([&] { b = test::run_chrootctl({"build", file, "--store", store}); });
  ta.join();
  tb.join();
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_EQ(b.exit_code, 0) << b.err;
  auto id = [](const std::string& out) { return out.substr(0, out.find('\n')); };
  EXPECT_EQ(id(a.out), id(b.out));
  const bool a_cached = a.out.find("cached yes") != std::string::npos;
  const bool b_cached = b.out.find("cached yes") != std::string::npos;
  EXPECT_NE(a_cached, b_cached) << "one built, the other waited and reused it\n" << a.out << b.out;
  EXPECT_EQ(ls(store + "/twice").size(), 2u);
}

}  // namespace
}  // namespace chrootctl::builder
