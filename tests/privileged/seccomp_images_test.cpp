// The system-call filter with real images: an image's own policy in the catalogue (recorded,
// shown, audited, overridden), build commands under the build policy, and the debian12 image's
// everyday tools under the default policy.
#include <sys/stat.h>
#include <unistd.h>

#include "chrootctl/builder/build.hpp"
#include "chrootctl/builder/recipe.hpp"
#include "chrootctl/common/files.hpp"
#include "chrootctl/common/manifest.hpp"
#include "chrootctl/common/strings.hpp"
#include "launcher_fixture.hpp"
#include "test_support.hpp"

namespace chrootctl {
namespace {

namespace fx = test::launcher;
namespace mf = manifest;

std::string json_string(const std::string& json, const std::string& key) {
  const std::string k = "\"" + key + "\": \"";
  const auto at = json.find(k);
  if (at == std::string::npos) return "(no " + key + ")";
  return json.substr(at + k.size(), json.find('"', at + k.size()) - at - k.size());
}

class SeccompCatalogue : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    CHROOTCTL_REQUIRE_PRIVILEGE("root");
    CHROOTCTL_REQUIRE_PRIVILEGE("mount-ns");
    CHROOTCTL_REQUIRE_PRIVILEGE("pid-ns");
    store = path("store");
    build = store + "/img/b1";
    fx::make_busybox_root(build + "/root");
    if (HasFatalFailure()) return;
    ASSERT_EQ(test::sh(str("cp '", CHROOTCTL_SECCOMP_PROBE64, "' '", build, "/root/bin/probe64'")).exit_code, 0);
    test::write_file(build + "/recipe.toml", "name = \"img\"\n");
    auto m = mf::create(build + "/root");
    ASSERT_TRUE(m) << m.error().what();
    auto r = mf::render(*m);
    ASSERT_TRUE(write_file_atomic(build + "/manifest", r.text));
    ASSERT_TRUE(write_file_atomic(build + "/manifest.stat", mf::serialize_stat(*m, r.digest)));
    sandbox = path("sandbox");
    test::mkdirs(sandbox);
    ASSERT_EQ(::chown(sandbox.c_str(), 65534, 65534), 0);
    test::write_file(path("config.toml"), "", 0644);
    env = {{"CHROOTCTL_CONFIG", path("config.toml")}, {"CHROOTCTL_STATE_DIR", path("state")}};
    test::mkdirs(path("state"), 0755);
  }
  test::CommandResult ctl(std::vector<std::string> args) {
    args.insert(args.begin() + 1, {"--store", store});
    return test::run_chrootctl(args, env);
  }
  // The policy the status record of a job of IMG names.
  std::string job_policy(const std::vector<std::string>& options = {}) {
    const std::string status = path("status.json");
    std::vector<std::string> a{"run", "IMG", "--sandbox", sandbox, "--user", "nobody", "--status-json", status};
    a.insert(a.end(), options.begin(), options.end());
    a.insert(a.end(), {"--", "/bin/true"});
    auto r = ctl(a);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json_string(test::read_file(status), "seccomp_policy");
  }
  std::string store, build, sandbox;
  std::map<std::string, std::string> env;
};

TEST_F(SeccompCatalogue, AnImagesPolicyIsRecordedShownAuditedAndOverridden) {
  // A policy file with a mistake is refused when it is recorded, not when a job starts.
  const std::string bad = path("bad.toml");
  test::write_file(bad, "base = \"default\"\ndeny = [\"getppidd\"]\n", 0644);
  auto a = ctl({"add", "-q", "IMG", build, "--seccomp", bad});
  EXPECT_EQ(a.exit_code, 2);
  EXPECT_EQ(a.err, "--seccomp '" + bad + "': " + bad +
                       ":2:9: error: unknown system call 'getppidd' (did you mean 'getppid'?)\n"
                       " 2 | deny = [\"getppidd\"]\n"
                       "   |         ^\n");

  const std::string policy = path("img.toml");
  test::write_file(policy, "base = \"default\"\ndeny = [\"getppid\"]\n", 0644);
  a = ctl({"add", "-q", "IMG", build, "--seccomp", policy});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_NE(ctl({"show", "IMG"}).out.find("seccomp:   " + policy + "\n"), std::string::npos);
  EXPECT_NE(ctl({"show", "IMG", "--json"}).out.find("\"seccomp\": \"" + policy + "\""), std::string::npos);
  EXPECT_EQ(job_policy(), policy);
  auto r = ctl({"run", "IMG", "--sandbox", sandbox, "--user", "nobody", "--", "/bin/probe64", "getppid"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "getppid: EPERM\n") << "getppid is denied by the image's policy";
  EXPECT_EQ(job_policy({"--seccomp", "default"}), "default") << "run --seccomp overrides the image's policy";

  // Re-adding keeps the policy; none is recorded and reported by audit; site forgets it.
  a = ctl({"add", "-q", "IMG", build});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(job_policy(), policy);
  ASSERT_EQ(ctl({"add", "-q", "IMG", build, "--seccomp", "none"}).exit_code, 0);
  EXPECT_NE(ctl({"show", "IMG"}).out.find("seccomp:   none (jobs run without a system-call filter)\n"), std::string::npos);
  EXPECT_EQ(job_policy(), "none");
  auto audit = ctl({"audit", "IMG", "--json"});
  EXPECT_EQ(audit.exit_code, 1) << audit.err;
  EXPECT_NE(audit.out.find("\"check\": \"seccomp.none\""), std::string::npos) << audit.out;
  EXPECT_NE(audit.out.find("the catalogue entry's seccomp = 'none'"), std::string::npos) << audit.out;
  ASSERT_EQ(ctl({"add", "-q", "IMG", build, "--seccomp", "site"}).exit_code, 0);
  EXPECT_EQ(ctl({"show", "IMG"}).out.find("seccomp:"), std::string::npos);
  EXPECT_EQ(job_policy(), "default");
  audit = ctl({"audit", "IMG", "--json"});
  EXPECT_EQ(audit.out.find("seccomp.none"), std::string::npos) << audit.out;

  // The site's policy none is reported for every entry that has no policy of its own.
  test::write_file(path("config.toml"), "[seccomp]\npolicy = \"none\"\n", 0644);
  audit = ctl({"audit", "IMG", "--json"});
  EXPECT_NE(audit.out.find("the site's [seccomp] policy = 'none' (" + path("config.toml") + ")"), std::string::npos) << audit.out;
  EXPECT_EQ(job_policy(), "none");
}

class SeccompBuild : public test::TempDirTest {};

TEST_F(SeccompBuild, BuildCommandsRunUnderTheBuildPolicy) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  CHROOTCTL_REQUIRE_PRIVILEGE("mount-ns");
  CHROOTCTL_REQUIRE_PRIVILEGE("pid-ns");
  CHROOTCTL_REQUIRE_TOOL("busybox");
  auto minimal = builder::find_recipe("minimal", {test::source_dir() + "/recipes"});
  ASSERT_TRUE(minimal) << minimal.error().what();
  builder::BuildOptions o;
  o.store = path("store");
  ASSERT_TRUE(builder::build(*minimal, o));
  const std::string file = path("probing.toml");
  test::write_file(file, str("name = \"probing\"\n[base]\nimage = \"minimal\"\n[[files]]\nsrc = \"", CHROOTCTL_SECCOMP_PROBE64,
                             "\"\ndst = \"/bin/probe64\"\nmode = \"0755\"\n[run]\ncommands = [\n"
                             "  \"grep -E '^Seccomp' /proc/self/status > /etc/seccomp-status\",\n"
                             "  \"/bin/probe64 keyctl io_uring_setup bpf clone3 getppid > /etc/probe\",\n"
                             "]\n"));
  auto recipe = builder::load_recipe(file, "recipes/probing.toml");
  ASSERT_TRUE(recipe) << recipe.error().what();
  auto b = builder::build(*recipe, o);
  ASSERT_TRUE(b) << b.error().what();
  EXPECT_EQ(test::read_file(b->root + "/etc/seccomp-status"), "Seccomp:\t2\nSeccomp_filters:\t1\n");
  // Root in the tree could use the keyring and io_uring without the filter.
  EXPECT_EQ(test::read_file(b->root + "/etc/probe"), "keyctl: EPERM\nio_uring_setup: EPERM\nbpf: EPERM\nclone3: ENOSYS\ngetppid: ok\n");
  const std::string log = test::read_file(b->build_dir + "/build.log");
  EXPECT_NE(log.find("# in the tree, under the build system-call policy: /bin/sh -c"), std::string::npos) << log;
  // The control: the same calls from root outside any filter.
  auto control = test::run({CHROOTCTL_SECCOMP_PROBE64, "keyctl", "io_uring_setup"});
  EXPECT_EQ(control.out.find("EPERM"), std::string::npos) << control.out;
}

// debian12, built with its recipe (mmdebstrap under the build-host policy), then python3
// installed in it with apt (the build policy) and everyday batch tools run in it under the
// default policy.
class SeccompDebian12 : public test::TempDirTest {};

TEST_F(SeccompDebian12, EverydayToolsRunUnderTheDefaultPolicy) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  CHROOTCTL_REQUIRE_PRIVILEGE("mount-ns");
  CHROOTCTL_REQUIRE_PRIVILEGE("pid-ns");
  CHROOTCTL_REQUIRE_TOOL("mmdebstrap");
  const std::string store = path("store");
  auto b = test::run_chrootctl({"build", "debian12", "--store", store, "--json"});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  std::string log = test::read_file(json_string(b.out, "path") + "/build.log");
  EXPECT_NE(log.find("# system-call policy build-host sha256:"), std::string::npos) << "mmdebstrap ran under the build-host policy";
  test::write_file(path("debian12-py.toml"),
                   "name = \"debian12-py\"\n[base]\nimage = \"debian12\"\n[packages]\ninstall = [\"python3\"]\n"
                   "[run]\ncommands = [\"grep -E '^Seccomp' /proc/self/status > /etc/build-seccomp\"]\n"
                   "[strip]\nremove = [\"/var/log/**\", \"/var/cache/ldconfig/aux-cache\"]\n");
  b = test::run_chrootctl({"build", path("debian12-py.toml"), "--store", store, "--json"});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  const std::string root = json_string(b.out, "root");
  log = test::read_file(json_string(b.out, "path") + "/build.log");
  EXPECT_NE(log.find("# in the tree, under the build system-call policy: apt-get install"), std::string::npos) << log;
  EXPECT_EQ(test::read_file(root + "/etc/build-seccomp"), "Seccomp:\t2\nSeccomp_filters:\t1\n");

  const std::string sandbox = path("sandbox");
  test::mkdirs(sandbox);
  ASSERT_EQ(::chown(sandbox.c_str(), 65534, 65534), 0);
  ASSERT_EQ(test::sh(str("cp '", CHROOTCTL_SECCOMP_THREADS, "' '", sandbox, "/threads' && chmod 0755 '", sandbox, "/threads'")).exit_code, 0);
  auto job = [&](const std::string& script) {
    return test::run_chrootctl(
        {"run", "--root", root, "--sandbox", sandbox, "--user", "nobody", "--status-json", path("status.json"), "--", "/bin/bash", "-c", script});
  };
  auto r = job("apt-get --version | head -1 | cut -d' ' -f1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "apt\n");
  EXPECT_EQ(json_string(test::read_file(path("status.json")), "seccomp_policy"), "default");
  r = job("grep -E '^Seccomp' /proc/self/status");
  EXPECT_EQ(r.out, "Seccomp:\t2\nSeccomp_filters:\t1\n");
  r =
      job("cd /tmp && seq 1 2000 > data && tar czf data.tgz data && rm data && tar xzf data.tgz && wc -l < data && "
          "gzip -9 data && gzip -t data.gz && gzip -dc data.gz | tail -1 && "
          "perl -e 'print \"perl \", scalar(@{[1..3]}), \"\\n\"' && sort -r data.gz >/dev/null; echo sort $?");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "2000\n2000\nperl 3\nsort 0\n");
  r = job(sandbox + "/threads");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "threads: 8 joined, sum 36\n");
  // multiprocessing: a pool of forked workers, pipes and POSIX semaphores in /dev/shm.
  r = job("python3 -c 'import multiprocessing as m; print(sum(m.Pool(4).map(abs, range(-10, 0))))'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "55\n");
  EXPECT_EQ(r.err, "");
}

}  // namespace
}  // namespace chrootctl
