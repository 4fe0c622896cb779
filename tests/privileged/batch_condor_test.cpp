// HTCondor 25.5+: `chrootctl condor-wrapper` driven exactly as the starter drives a
// USER_JOB_WRAPPER. The configuration comes from `chrootctl condor-config --wrapper`, which
// writes the wrapper script; the "starter" runs that script as the job's user (nobody), in the
// job's scratch directory, with the environment HTCondor sets ($_CONDOR_JOB_AD,
// $_CONDOR_SCRATCH_DIR, $_CONDOR_JOB_IWD, $_CONDOR_WRAPPER_ERROR_FILE, ...) and the job's
// executable (transferred into the scratch directory as condor_exec.exe) and arguments.
// Privileged because it needs root to build and register the image and to become nobody.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <random>

#include "chrootctl/common/json.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "launcher_fixture.hpp"
#include "test_support.hpp"

namespace chrootctl {
namespace {

namespace fx = test::launcher;
using test::run_chrootctl;

constexpr uid_t k_nobody = 65534;

class BatchCondor : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    CHROOTCTL_REQUIRE_PRIVILEGE("root");
    CHROOTCTL_REQUIRE_PRIVILEGE("user-ns");
    CHROOTCTL_REQUIRE_TOOL("busybox");
    CHROOTCTL_REQUIRE_TOOL("setpriv");
    // The catalogue refuses roots below directories others may write; nobody must reach the
    // store (the wrapper resolves as the job's user) and the execute directory.
    ASSERT_EQ(::chmod(m_dir.c_str(), 0755), 0);
    if (test::sh("setpriv --reuid 65534 --regid 65534 --clear-groups unshare -U true").exit_code != 0) {
      if (test::privileged_required()) FAIL() << "nobody cannot create a user namespace";
      GTEST_SKIP() << "nobody cannot create a user namespace";
    }
    store = path("store");
    // The wrapper runs as the job's user: the image must be one unprivileged launchers read
    // (readable_images), or its build directory stays reachable by root only.
    config = path("etc/config.toml");
    test::mkdirs(path("etc"));
    // The accounting log in this test's directory; the wrapper, as nobody, writes its lines to
    // log/users/65534.jsonl (log/users made as systemd-tmpfiles makes it).
    test::write_file(config,
                     str("readable_images = [\"MINIMAL\", \"MINI\", \"SEALED\"]\n[accounting]\npath = \"", path("log/launches.jsonl"), "\"\n"));
    test::mkdirs(path("log/users"));
    ASSERT_EQ(::chmod(path("log/users").c_str(), 01733), 0);
    auto b = run_chrootctl({"build", "minimal", "--store", store, "--register", "MINIMAL", "-q"}, {{"CHROOTCTL_CONFIG", config}});
    ASSERT_EQ(b.exit_code, 0) << b.err;
    auto r = run_chrootctl({"resolve", "MINIMAL", "--store", store});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    root = r.out.substr(0, r.out.size() - 1);
    test::mkdirs(path("condor/config.d"));
    wrapper = path("condor/chrootctl-job-wrapper");
    auto c =
        run_chrootctl({"condor-config", "--wrapper", "--wrapper-script", wrapper, "--store", store, "-o", path("condor/config.d/50-chrootctl.conf")},
                      {{"CHROOTCTL_CONFIG", config}});
    ASSERT_EQ(c.exit_code, 0) << c.err;
    // HTCondor's EXECUTE directory, not below /tmp: a sandbox there would show inside the job's
    // private /tmp (its mount point is made in SANDBOX/tmp).
    char tmpl[] = "/var/lib/chrootctl-condor-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    execute = tmpl;
    ASSERT_EQ(::chmod(execute.c_str(), 0755), 0);
    mounts_before = fx::host_mounts_mentioning(m_dir);
  }
  void TearDown() override {
    if (!store.empty()) {
      EXPECT_EQ(fx::host_mounts_mentioning(m_dir), mounts_before);
      EXPECT_EQ(fx::host_mounts_mentioning(execute), std::vector<std::string>{});
    }
    if (!execute.empty()) {
      auto r = sys::remove_tree(execute);
      EXPECT_TRUE(r) << (r ? "" : r.error().what());
    }
    TempDirTest::TearDown();
  }

  // What the starter makes for one job: execute/dir_N owned by the job's user (0700), the job
  // ad inside it, the transferred executable as condor_exec.exe.
  struct Job {
    std::string scratch, ad, error_file, exe;
  };
  Job make_job(const std::string& ad_text, const std::string& script) {
    Job j;
    j.scratch = execute + "/dir_" + std::to_string(++jobs);
    test::mkdirs(j.scratch);
    j.ad = j.scratch + "/.job.ad";
    j.error_file = j.scratch + "/.wrapper_error";
    j.exe = j.scratch + "/condor_exec.exe";
    test::write_file(j.ad, ad_text);
    test::write_file(j.exe, "#!/bin/sh\n" + script + "\n", 0755);
    EXPECT_EQ(test::sh("chown -R 65534:65534 '" + j.scratch + "' && chmod 0700 '" + j.scratch + "'").exit_code, 0);
    return j;
  }
  // The starter's environment for the job, and the wrapper's command line.
  std::vector<std::string> starter_argv(const Job& j, const std::vector<std::string>& job_args, const std::vector<std::string>& extra_env = {},
                                        const std::string& cwd = {}) {
    std::vector<std::string> a{"setpriv",
                               "--reuid",
                               "65534",
                               "--regid",
                               "65534",
                               "--clear-groups",
                               "env",
                               "-i",
                               "-C",
                               cwd.empty() ? j.scratch : cwd,
                               "PATH=/usr/bin:/bin",
                               "_CONDOR_JOB_AD=" + j.ad,
                               "_CONDOR_MACHINE_AD=" + j.scratch + "/.machine.ad",
                               "_CONDOR_SCRATCH_DIR=" + j.scratch,
                               "_CONDOR_JOB_IWD=" + j.scratch,
                               "_CONDOR_SLOT=slot1_1",
                               "_CONDOR_WRAPPER_ERROR_FILE=" + j.error_file,
                               "TMPDIR=" + j.scratch,
                               "JOBVAR=from the submit file"};
    a.insert(a.end(), extra_env.begin(), extra_env.end());
    a.push_back(wrapper);
    a.push_back(j.exe);
    a.insert(a.end(), job_args.begin(), job_args.end());
    return a;
  }
  test::CommandResult start(const Job& j, const std::vector<std::string>& job_args = {}, const std::vector<std::string>& extra_env = {}) {
    return test::run(starter_argv(j, job_args, extra_env));
  }
  bool exists(const std::string& p) {
    struct stat st {};
    return ::lstat(p.c_str(), &st) == 0;
  }
  void expect_refused(const Job& j, const test::CommandResult& r, const std::string& reason) {
    EXPECT_EQ(r.exit_code, 125) << r.out << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, "chrootctl condor-wrapper: error: " + reason + "; the job was not started\n");
    // HTCondor puts this text into the hold reason.
    EXPECT_EQ(test::read_file(j.error_file), reason + "; the job was not started\n");
    EXPECT_FALSE(exists(j.scratch + "/ran")) << "the job ran";
  }

  std::string store, config, root, wrapper, execute;
  int jobs = 0;
  std::vector<std::string> mounts_before;
};

TEST_F(BatchCondor, ConfigurationForHTCondor25_5) {
  EXPECT_EQ(test::read_file(path("condor/config.d/50-chrootctl.conf")),
            "# Written by 'chrootctl condor-config --wrapper' from " + store +
                "/catalogue.toml.\n"
                "# For HTCondor 25.5 and later, which have no NAMED_CHROOT. Every job starts through chrootctl's job\n"
                "# wrapper: a job whose ad sets RequestedChroot runs in that verified root (in a user namespace, as its\n"
                "# user); a job without it runs unchanged; an unknown, unverified or invalid name fails the job and\n"
                "# never runs it on the host. USER_JOB_WRAPPER takes one executable and no arguments, hence the script.\n"
                "USER_JOB_WRAPPER = " +
                wrapper +
                "\n"
                "# The names that resolve now, for matchmaking: requirements = stringListMember(\"EL9\", NamedChroot)\n"
                "NamedChroot = \"MINIMAL\"\n"
                "STARTD_ATTRS = $(STARTD_ATTRS) NamedChroot\n");
  struct stat st {};
  ASSERT_EQ(::stat(wrapper.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_EQ(st.st_uid, 0u);
  char front[4096];
  ASSERT_NE(::realpath(CHROOTCTL_BIN, front), nullptr);
  EXPECT_EQ(test::read_file(wrapper),
            std::string("#!/bin/sh\n"
                        "# HTCondor's USER_JOB_WRAPPER, written by 'chrootctl condor-config --wrapper'. HTCondor runs it as\n"
                        "# the job's user with the job's executable and arguments; USER_JOB_WRAPPER cannot pass arguments\n"
                        "# of its own, so this script does.\n"
                        "exec '") +
                front + "' condor-wrapper --store '" + store + "' --config '" + config + "' -- \"$@\"\n");

  // Aliases are names of their own; an unverified entry is left out with the reason.
  ASSERT_EQ(run_chrootctl({"alias", "MINI", "MINIMAL", "--store", store}).exit_code, 0);
  auto j = run_chrootctl({"condor-config", "--wrapper", "--wrapper-script", wrapper, "--store", store, "--json"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  EXPECT_NE(j.out.find("\"named_chroot\": \"MINI, MINIMAL\""), std::string::npos) << j.out;
  ASSERT_EQ(test::sh("echo changed >> '" + root + "/etc/os-release'").exit_code, 0);
  EXPECT_EQ(run_chrootctl({"verify", "MINIMAL", "--store", store}).exit_code, 1);
  auto after = run_chrootctl({"condor-config", "--wrapper", "--wrapper-script", wrapper, "--store", store});
  ASSERT_EQ(after.exit_code, 0) << after.err;
  EXPECT_NE(after.out.find("\nNamedChroot = \"\"\n"), std::string::npos) << after.out;
  EXPECT_NE(after.err.find("chrootctl: warning: leaving out MINIMAL: its verification at "), std::string::npos) << after.err;

  // Without --wrapper: NAMED_CHROOT for HTCondor 25.0 LTS and older, as before.
  auto old = run_chrootctl({"condor-config", "--store", store});
  ASSERT_EQ(old.exit_code, 0) << old.err;
  EXPECT_NE(old.out.find("\nNAMED_CHROOT =\n"), std::string::npos) << old.out;

  auto no_script = run_chrootctl({"condor-config", "--wrapper", "--store", store});
  EXPECT_EQ(no_script.exit_code, 2);
  EXPECT_EQ(no_script.err,
            "chrootctl condor-config: --wrapper needs --wrapper-script FILE (USER_JOB_WRAPPER names one executable and takes "
            "no arguments, so chrootctl writes a script there that runs 'chrootctl condor-wrapper')\n"
            "Try 'chrootctl condor-config --help'.\n");
  auto spaced = run_chrootctl({"condor-config", "--wrapper", "--wrapper-script", path("my wrapper"), "--store", store});
  EXPECT_EQ(spaced.exit_code, 2);
  EXPECT_EQ(spaced.err, "chrootctl: error: the wrapper script '" + path("my wrapper") +
                            "' holds ' ', which a condor configuration line or the wrapper script cannot hold\n");
}

TEST_F(BatchCondor, JobRunsInTheRequestedImageInItsScratchDirectory) {
  auto j = make_job("ClusterId = 7\nProcId = 0\nOwner = \"nobody\"\nRequestedChroot = \"MINIMAL\"\n",
                    "touch ran; grep ^ID= /etc/os-release; pwd; id -u; echo \"$1|$2|$JOBVAR|$TMPDIR\"; "
                    "ls -A /tmp /var/tmp; echo job > /tmp/left-by-job; cat /proc/self/uid_map | tr -s ' '");
  auto r = start(j, {"first", "second arg"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "ID=chrootctl-minimal\n" + j.scratch + "\n65534\nfirst|second arg|from the submit file|" + j.scratch +
                       "\n/tmp:\n\n/var/tmp:\n 65534 65534 1\n");
  EXPECT_EQ(r.err, "");
  EXPECT_TRUE(exists(j.scratch + "/ran"));
  // The launch's accounting line names the job by the ad's ClusterId.ProcId.
  const std::string mine = path("log/users/65534.jsonl");
  const std::string text = test::read_file(mine);
  ASSERT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
  auto line = parse_flat_json_object(text.substr(0, text.size() - 1), mine);
  ASSERT_TRUE(line) << line.error().what();
  auto field = [&](const char* key) {
    const FlatValue* v = find_flat(*line, key);
    return !v ? std::string("<absent>") : v->kind == FlatValue::Kind::null ? std::string("null") : v->text;
  };
  EXPECT_EQ(field("via"), "condor-wrapper");
  EXPECT_EQ(field("batch_system"), "htcondor");
  EXPECT_EQ(field("batch_job_id"), "7.0");
  EXPECT_EQ(field("image"), "MINIMAL");
  EXPECT_EQ(field("invoking_uid"), "65534");
  EXPECT_EQ(field("job_user"), "nobody");
  EXPECT_EQ(field("exit_status"), "0");
  EXPECT_EQ(field("root"), root);
  // /tmp of the job is the scratch directory's tmp (MOUNT_UNDER_SCRATCH), never the host's.
  EXPECT_EQ(test::read_file(j.scratch + "/tmp/left-by-job"), "job\n");
  EXPECT_FALSE(exists(j.error_file));

  // The next job starts with an empty /tmp.
  auto next = make_job("RequestedChroot = \"MINIMAL\"\n", "ls -A /tmp /var/tmp");
  auto r2 = start(next);
  ASSERT_EQ(r2.exit_code, 0) << r2.err;
  EXPECT_EQ(r2.out, "/tmp:\n\n/var/tmp:\n");

  // The image is read-only, and the job cannot leave its user namespace's uid.
  auto ro = make_job("RequestedChroot = \"MINIMAL\"\n", "touch /etc/x");
  auto r3 = start(ro);
  EXPECT_EQ(r3.exit_code, 1);
  EXPECT_EQ(r3.err, "touch: /etc/x: Read-only file system\n");
}

// A sealed image (docs/sealed.md): the wrapper runs as the job's user and cannot mount it, so it
// runs only while the site keeps it mounted, and is refused with the way out otherwise. Like a
// directory image, it is in readable_images, so its build directory is opened.
TEST_F(BatchCondor, ASealedImageRunsWhileTheSiteKeepsItMounted) {
  CHROOTCTL_REQUIRE_TOOL("mkfs.erofs");
  auto b = run_chrootctl({"build", "minimal", "--sealed", "--store", store, "--register", "SEALED", "-q"}, {{"CHROOTCTL_CONFIG", config}});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  auto res = run_chrootctl({"resolve", "SEALED", "--store", store});
  ASSERT_EQ(res.exit_code, 0) << res.err;
  const std::string image = res.out.substr(0, res.out.size() - 1);
  auto refused = make_job("RequestedChroot = \"SEALED\"\n", "touch ran");
  auto r = start(refused);
  EXPECT_EQ(r.exit_code, 125) << r.out;
  EXPECT_NE(r.err.find("RequestedChroot: the sealed image " + image + " is not mounted on this node"), std::string::npos) << r.err;
  EXPECT_NE(test::read_file(refused.error_file).find("'chrootctl mount NAME' as root), or to publish a directory image"), std::string::npos);
  EXPECT_FALSE(exists(refused.scratch + "/ran"));

  auto m = run_chrootctl({"mount", "SEALED", "--store", store});
  ASSERT_EQ(m.exit_code, 0) << m.err;
  auto j = make_job("RequestedChroot = \"SEALED\"\n", "grep ^ID= /etc/os-release; pwd; touch /etc/x");
  auto ran = start(j);
  EXPECT_EQ(ran.exit_code, 1) << ran.err;
  EXPECT_EQ(ran.out, "ID=chrootctl-minimal\n" + j.scratch + "\n");
  EXPECT_EQ(ran.err, "touch: /etc/x: Read-only file system\n");
  auto u = run_chrootctl({"unmount", "SEALED", "--store", store});
  EXPECT_EQ(u.exit_code, 0) << u.err;
  EXPECT_EQ(fx::host_mounts_mentioning("/chrootctl/sealed/"), std::vector<std::string>{});
}

TEST_F(BatchCondor, JobWithoutTheAttributeRunsUnchanged) {
  auto j = make_job("ClusterId = 7\nOwner = \"nobody\"\n# RequestedChroot = \"MINIMAL\"\n",
                    "touch ran; grep ^ID= /etc/os-release; pwd; env | sort; exit 7");
  auto r = start(j, {}, {"CHROOTCTL_STORE=/nonexistent"});
  EXPECT_EQ(r.exit_code, 7) << r.err;
  std::string host_id = test::sh("grep ^ID= /etc/os-release").out;
  // The host's root, the scratch directory, and exactly the environment the starter made.
  EXPECT_EQ(r.out, host_id + j.scratch + "\n" + "CHROOTCTL_STORE=/nonexistent\nJOBVAR=from the submit file\nPATH=/usr/bin:/bin\nPWD=" + j.scratch +
                       "\nTMPDIR=" + j.scratch + "\n_CONDOR_JOB_AD=" + j.ad + "\n_CONDOR_JOB_IWD=" + j.scratch + "\n_CONDOR_MACHINE_AD=" + j.scratch +
                       "/.machine.ad\n_CONDOR_SCRATCH_DIR=" + j.scratch + "\n_CONDOR_SLOT=slot1_1\n_CONDOR_WRAPPER_ERROR_FILE=" + j.error_file +
                       "\n");
  EXPECT_FALSE(exists(j.error_file));
}

TEST_F(BatchCondor, UnknownNameFailsTheJobAndNeverRunsIt) {
  auto j = make_job("RequestedChroot = \"MINIMUM\"\n", "touch ran");
  expect_refused(j, start(j),
                 j.ad + ":1: RequestedChroot: 'MINIMUM' is not in the catalogue " + store +
                     "/catalogue.toml (did you mean 'MINIMAL'? names are case-sensitive)");
}

TEST_F(BatchCondor, RootEmptyAndNonStringRequestsAreRefusals) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"RequestedChroot = \"root\"", "RequestedChroot: cannot resolve 'root': "},
      {"RequestedChroot = \"\"", "RequestedChroot: it asks for an empty name"},
      {"RequestedChroot = MINIMAL", "RequestedChroot: its value 'MINIMAL' is not a string literal"},
      {"RequestedChroot = 5", "RequestedChroot: its value '5' is not a string literal"},
      {"RequestedChroot = undefined", "RequestedChroot: its value 'undefined' is not a string literal"},
      {"REQUESTEDCHROOT = strcat(\"MINI\", \"MAL\")", "REQUESTEDCHROOT: its value 'strcat(\"MINI\", \"MAL\")' is not a string literal"},
      {"RequestedChroot =", "RequestedChroot: it has no value"},
  };
  for (const auto& [line, reason] : cases) {
    SCOPED_TRACE(line);
    auto j = make_job("ClusterId = 1\n" + line + "\n", "touch ran");
    auto r = start(j);
    EXPECT_EQ(r.exit_code, 125) << r.out << r.err;
    EXPECT_EQ(r.out, "");
    const std::string head = "chrootctl condor-wrapper: error: " + j.ad + ":2: " + reason;
    EXPECT_EQ(r.err.substr(0, head.size()), head) << r.err;
    EXPECT_NE(r.err.find("; the job was not started\n"), std::string::npos) << r.err;
    EXPECT_FALSE(exists(j.scratch + "/ran")) << "the job ran";
    EXPECT_TRUE(exists(j.error_file));
  }
}

TEST_F(BatchCondor, UnverifiedImageFailsTheJob) {
  ASSERT_EQ(test::sh("echo changed >> '" + root + "/etc/os-release'").exit_code, 0);
  ASSERT_EQ(run_chrootctl({"verify", "MINIMAL", "--store", store}).exit_code, 1);
  auto j = make_job("RequestedChroot = \"MINIMAL\"\n", "touch ran");
  auto r = start(j);
  EXPECT_EQ(r.exit_code, 125);
  const std::string head = "chrootctl condor-wrapper: error: " + j.ad + ":1: RequestedChroot: 'MINIMAL' is not usable: its verification at ";
  EXPECT_EQ(r.err.substr(0, head.size()), head) << r.err;
  EXPECT_FALSE(exists(j.scratch + "/ran"));
}

TEST_F(BatchCondor, WithoutAJobAdNothingRuns) {
  auto j = make_job("RequestedChroot = \"MINIMAL\"\n", "touch ran");
  auto argv = starter_argv(j, {});
  argv.erase(std::find(argv.begin(), argv.end(), "_CONDOR_JOB_AD=" + j.ad));
  expect_refused(j, test::run(argv), "$_CONDOR_JOB_AD is not set, so whether the job asks for a root is unknown");
  auto missing = make_job("", "touch ran");
  ASSERT_EQ(::unlink(missing.ad.c_str()), 0);
  auto r = start(missing);
  EXPECT_EQ(r.exit_code, 125);
  EXPECT_EQ(r.err, "chrootctl condor-wrapper: error: reading " + missing.ad + ": open('" + missing.ad +
                       "', O_PATH): No such file or directory; the job was not started\n");
  EXPECT_FALSE(exists(missing.scratch + "/ran"));
}

TEST_F(BatchCondor, TheJobCannotChooseTheCatalogue) {
  // A catalogue of the job's choosing (its environment comes from the submit file) is ignored;
  // the variables still reach the job.
  auto j = make_job("RequestedChroot = \"MINIMAL\"\n", "grep ^ID= /etc/os-release; echo $CHROOTCTL_STORE $CHROOTCTL_CONFIG");
  auto r = start(j, {}, {"CHROOTCTL_STORE=/nonexistent", "CHROOTCTL_CONFIG=/nonexistent.toml"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "ID=chrootctl-minimal\n/nonexistent /nonexistent.toml\n");
}

TEST_F(BatchCondor, ExitCodesAndSignalsOfTheJobPassThrough) {
  auto code = make_job("RequestedChroot = \"MINIMAL\"\n", "exit 42");
  EXPECT_EQ(start(code).exit_code, 42);
  // A job killed by a signal kills the wrapper with the same signal, as the starter expects of
  // the job's own process.
  auto sig = make_job("RequestedChroot = \"MINIMAL\"\n", "kill -TERM $$");
  const auto argv = starter_argv(sig, {});
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 1);
    ::dup2(null, 2);
    std::vector<char*> a;
    for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    ::execvp(a[0], a.data());
    ::_exit(127);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "status " << status;
  EXPECT_EQ(WTERMSIG(status), SIGTERM);
  // A command that is not in the image: 127, with the reason for the hold.
  auto missing = make_job("RequestedChroot = \"MINIMAL\"\n", "");
  auto r = test::run([&] {
    auto a = starter_argv(missing, {});
    a.back() = "/usr/bin/python3";
    return a;
  }());
  EXPECT_EQ(r.exit_code, 127);
  EXPECT_EQ(r.err,
            "chrootctl condor-wrapper: error: 'MINIMAL': execve('/usr/bin/python3') in the root: No such file or directory; "
            "the job was not started\n");
  EXPECT_EQ(test::read_file(missing.error_file),
            "'MINIMAL': execve('/usr/bin/python3') in the root: No such file or directory; the job was not started\n");
}

TEST_F(BatchCondor, JobOnASharedFileSystemStartsInItsInitialDirectory) {
  // Without file transfer the starter starts the job in its Iwd, outside the scratch directory:
  // that directory appears at its own path and is the job's working directory.
  const std::string iwd = path("shared/user/run1");
  test::mkdirs(iwd);
  ASSERT_EQ(::chown(iwd.c_str(), k_nobody, k_nobody), 0);
  auto j = make_job("RequestedChroot = \"MINIMAL\"\nIwd = \"" + iwd + "\"\n", "pwd; echo result > out.txt; grep ^ID= /etc/os-release");
  auto r = test::run(starter_argv(j, {}, {}, iwd));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, iwd + "\nID=chrootctl-minimal\n");
  EXPECT_EQ(test::read_file(iwd + "/out.txt"), "result\n");
}

// Hostile job ads (issue 18, point 5), run through the wrapper as the starter would: random
// attributes, a RequestedChroot put at a random line and broken in a random way (or not), or
// none. The job writes where it ran; it must run on the host only when the ad asks for no root,
// and in the image when the request is sound; every other ad is refused, nothing run.
TEST_F(BatchCondor, HostileAdsNeverRunTheJobOnTheHost) {
  std::mt19937 rng(1811);
  auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  const std::vector<std::string> noise = {"ClusterId = 7",
                                          "Owner = \"nobody\"",
                                          "Cmd = \"/bin/job\" \\",
                                          "# a comment \\",
                                          "",
                                          "Environment = \"A=1 B=2\"",
                                          "Requirements = (Memory > 1024) && \\",
                                          "\x01junk \xff"};
  const std::vector<std::pair<std::string, bool>> requests = {
      {"RequestedChroot = \"MINIMAL\"", true},          {"requestedCHROOT=\"MINIMAL\"", true},
      {"+RequestedChroot = \"MINIMAL\"", false},        {"RequestedChroot = MINIMAL", false},
      {"RequestedChroot \"MINIMAL\"", false},           {"RequestedChroot = \"MINIMAL\" \\", false},
      {"Requested Chroot = \"MINIMAL\"", false},        {"RequestedChroot = \"\"", false},
      {"RequestedChroot = \"MINIMAL\" || true", false}, {"My.RequestedChroot = \"MINIMAL\"", false},
      {"RequestedChroot = \"\x1b]0;owned\x07\"", false}};
  const std::string host_id = test::sh("grep ^ID= /etc/os-release").out;
  int on_host = 0, in_image = 0, refused = 0;
  for (int i = 0; i < 36; ++i) {
    std::vector<std::string> lines;
    for (std::size_t n = pick(6); n > 0; --n) lines.push_back(noise[pick(noise.size())]);
    int kind = -1;  // -1: no request
    if (i % 6 != 0) {
      kind = static_cast<int>(pick(requests.size()));
      lines.insert(lines.begin() + static_cast<std::ptrdiff_t>(pick(lines.size() + 1)), requests[static_cast<std::size_t>(kind)].first);
      // Now and then a second, different request: refused as well.
      if (requests[static_cast<std::size_t>(kind)].second && pick(4) == 0) {
        lines.push_back("RequestedChroot = \"MINI\"");
        kind = 2;  // any refusal
      }
    }
    std::string ad;
    for (const auto& l : lines) ad += l + "\n";
    SCOPED_TRACE(ad);
    auto j = make_job(ad, "grep ^ID= /etc/os-release; touch ran");
    auto r = start(j);
    if (kind < 0) {
      EXPECT_EQ(r.exit_code, 0) << r.err;
      EXPECT_EQ(r.out, host_id);
      ++on_host;
    } else if (requests[static_cast<std::size_t>(kind)].second) {
      EXPECT_EQ(r.exit_code, 0) << r.err;
      EXPECT_EQ(r.out, "ID=chrootctl-minimal\n");
      ++in_image;
    } else {
      EXPECT_EQ(r.exit_code, 125) << r.out << r.err;
      EXPECT_EQ(r.out, "");
      EXPECT_FALSE(exists(j.scratch + "/ran")) << "the job ran";
      // The reason quotes the ad, terminal-safe, in the job's stderr and the hold reason.
      const std::string hold = test::read_file(j.error_file);
      for (unsigned char c : r.err + hold) EXPECT_TRUE((c >= 0x20 && c < 0x7f) || c == '\n') << r.err;
      ++refused;
    }
  }
  EXPECT_GT(on_host, 0);
  EXPECT_GT(in_image, 0);
  EXPECT_GT(refused, 0);
}

}  // namespace
}  // namespace chrootctl
