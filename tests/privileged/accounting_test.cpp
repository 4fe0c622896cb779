// Launch accounting for real: chrootctl run as root and as nobody, 50 launches at once, rotation
// while they write, refusals, a log that cannot be written (the job runs all the same), planted
// files, and chrootctl log reading it all back.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "chrootctl/common/json.hpp"
#include "chrootctl/common/strings.hpp"
#include "launcher_fixture.hpp"
#include "test_support.hpp"

namespace chrootctl {
namespace {

namespace fx = test::launcher;

class AccountingLaunches : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    CHROOTCTL_REQUIRE_PRIVILEGE("root");
    CHROOTCTL_REQUIRE_PRIVILEGE("user-ns");
    CHROOTCTL_REQUIRE_PRIVILEGE("cgroup");
    ASSERT_EQ(::chmod(m_dir.c_str(), 0755), 0);
    root = path("root");
    fx::make_busybox_root(root);
    sandbox = path("sandbox");
    test::mkdirs(sandbox);
    ASSERT_EQ(::chown(sandbox.c_str(), 65534, 65534), 0);
    test::mkdirs(path("sandboxes"));
    log_dir = path("log");
    log = log_dir + "/launches.jsonl";
    configure("");
  }
  // The configuration: the accounting log in this test's directory, and `extra`.
  void configure(const std::string& extra) {
    config = path("config.toml");
    test::write_file(config, str("[accounting]\npath = \"", log, "\"\n", extra));
  }
  test::CommandResult run(const std::vector<std::string>& options, const std::string& script) {
    std::vector<std::string> a{"run", "--root", root, "--sandbox", sandbox, "--user", "nobody"};
    a.insert(a.end(), options.begin(), options.end());
    a.insert(a.end(), {"--", "/bin/sh", "-c", script});
    return test::run_chrootctl(a, {{"CHROOTCTL_CONFIG", config}});
  }
  // A shell command that starts `n` launches of JOB at once ($i is 1..n), each with a sandbox
  // of its own, as batch jobs have: launches sharing one sandbox race to make SANDBOX/tmp.
  std::string concurrent_runs(int n, const std::string& job) {
    return str("for i in $(seq 1 ", n, "); do mkdir '", path("sandboxes"), "'/$i && chown 65534:65534 '", path("sandboxes"), "'/$i || exit; done; ",
               "for i in $(seq 1 ", n, "); do CHROOTCTL_CONFIG='", config, "' '", CHROOTCTL_BIN, "' run --root '", root, "' --sandbox '",
               path("sandboxes"), "'/$i --user nobody -- ", job, " & done; wait");
  }
  // Every line of `file`, each read as a flat JSON object (a torn or merged line fails here).
  std::vector<FlatObject> lines_of(const std::string& file) {
    std::vector<FlatObject> out;
    const std::string text = test::read_file(file);
    EXPECT_TRUE(text.empty() || text.back() == '\n') << file;
    for (const auto& l : split(text, '\n')) {
      if (l.empty()) continue;
      auto o = parse_flat_json_object(l, file);
      EXPECT_TRUE(o) << (o ? "" : o.error().what());
      if (o) out.push_back(std::move(*o));
    }
    return out;
  }
  static std::string field(const FlatObject& o, const char* key) {
    const FlatValue* v = find_flat(o, key);
    if (!v) return "<absent>";
    return v->kind == FlatValue::Kind::null ? "null" : v->text;
  }
  std::string root, sandbox, log_dir, log, config;
};

TEST_F(AccountingLaunches, ARunIsOneLineWithTheJobItsLimitsAndItsFilter) {
  auto r = run({"--memory", "64M", "--pids", "50"}, "exit 3");
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_EQ(r.err, "");
  // The log and its directory, as root's first launch makes them.
  struct stat st {};
  ASSERT_EQ(::stat(log.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  ASSERT_EQ(::stat((log_dir + "/users").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 01733u);
  const auto lines = lines_of(log);
  ASSERT_EQ(lines.size(), 1u);
  const auto& l = lines[0];
  EXPECT_EQ(field(l, "via"), "run");
  EXPECT_EQ(field(l, "invoking_uid"), "0");
  EXPECT_EQ(field(l, "invoking_user"), "root");
  EXPECT_EQ(field(l, "job_uid"), "65534");
  EXPECT_EQ(field(l, "job_user"), "nobody");
  EXPECT_EQ(field(l, "image"), "null");
  EXPECT_EQ(field(l, "root"), root);
  EXPECT_EQ(field(l, "outcome"), "exited");
  EXPECT_EQ(field(l, "exit_status"), "3");
  EXPECT_EQ(field(l, "cgroup"), test::cgroup_version());
  EXPECT_EQ(field(l, "memory_max_bytes"), "67108864");
  EXPECT_EQ(field(l, "pids_max"), "50");
  EXPECT_EQ(field(l, "batch_system"), "null");
  EXPECT_EQ(field(l, "id_mode"), "mapped");
  EXPECT_NE(field(l, "uid_map").find("65534 65534 1"), std::string::npos) << field(l, "uid_map");
  // The filter's digest is the one `seccomp show` names for the policy jobs get.
  auto show = test::run_chrootctl({"seccomp", "show", "--json"}, {{"CHROOTCTL_CONFIG", config}});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_EQ(field(l, "seccomp_policy"), "default");
  EXPECT_NE(show.out.find("\"digest\": \"" + field(l, "seccomp_digest") + "\""), std::string::npos) << show.out;
  EXPECT_EQ(field(l, "seccomp_digest").size(), 64u);
  EXPECT_NE(field(l, "peak_memory_bytes"), "null");
}

TEST_F(AccountingLaunches, FiftyConcurrentLaunchesWriteFiftyWholeLines) {
  const std::string cmd = concurrent_runs(50, "/bin/sh -c \"exit $((i % 7))\"");
  ASSERT_EQ(test::sh(cmd).exit_code, 0);
  const auto lines = lines_of(log);
  ASSERT_EQ(lines.size(), 50u);
  std::multiset<std::string> statuses;
  for (const auto& l : lines) {
    statuses.insert(field(l, "exit_status"));
    EXPECT_EQ(field(l, "outcome"), "exited") << field(l, "error");
  }
  for (int s = 0; s < 7; ++s) EXPECT_EQ(statuses.count(std::to_string(s)), s == 0 ? 7u : s == 1 ? 8u : 7u) << s;
}

TEST_F(AccountingLaunches, RotationWhileLaunchesWriteLosesAndTearsNothing) {
  // Lines of about 1.3 KiB in files of at most 4 KiB: dozens of rotations among 50 writers.
  configure("max_size = \"4K\"\nkeep = 100\n");
  const std::string cmd = concurrent_runs(50, "/bin/true");
  ASSERT_EQ(test::sh(cmd).exit_code, 0);
  std::size_t total = 0, files = 0;
  for (const auto& name : fx::subdirs(log_dir)) EXPECT_EQ(name, "users");
  for (unsigned k = 0; k <= 100; ++k) {
    const std::string f = k == 0 ? log : str(log, ".", k);
    struct stat st {};
    if (::stat(f.c_str(), &st) != 0) continue;
    ++files;
    total += lines_of(f).size();
  }
  EXPECT_EQ(total, 50u);
  EXPECT_GT(files, 10u);
  // keep = 2: only the newest two rotated files stay. A file holds `per_file` lines (their
  // length depends on this machine's names and paths); 3 * per_file + 1 launches fill the log
  // and three rotated files, of which the oldest is dropped.
  ASSERT_EQ(test::sh("rm -f '" + log + "' '" + log + "'.*").exit_code, 0);
  configure("max_size = \"4K\"\nkeep = 2\n");
  ASSERT_EQ(run({}, "true").exit_code, 0);
  const std::size_t line_size = test::read_file(log).size();
  ASSERT_GT(line_size, 0u);
  const std::size_t per_file = 4096 / line_size;
  ASSERT_GE(per_file, 1u);
  for (std::size_t i = 0; i < 3 * per_file; ++i) ASSERT_EQ(run({}, "true").exit_code, 0);
  EXPECT_TRUE(test::sh("test -e '" + log + ".2' && ! test -e '" + log + ".3'").exit_code == 0) << test::sh("ls -l '" + log_dir + "'").out;
  EXPECT_EQ(lines_of(log).size(), 1u);
  EXPECT_EQ(lines_of(log + ".1").size(), per_file);
  EXPECT_EQ(lines_of(log + ".2").size(), per_file);
}

TEST_F(AccountingLaunches, RefusedLaunchesAreRecordedWithTheReason) {
  test::mkdirs(path("store"));
  auto r = test::run_chrootctl({"run", "NOSUCH", "--store", path("store"), "--sandbox", sandbox, "--user", "nobody", "--", "/bin/true"},
                               {{"CHROOTCTL_CONFIG", config}});
  EXPECT_EQ(r.exit_code, 125);
  const auto lines = lines_of(log);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(field(lines[0], "image"), "NOSUCH");
  EXPECT_EQ(field(lines[0], "outcome"), "setup_failed");
  EXPECT_EQ(field(lines[0], "exit_status"), "125");
  EXPECT_EQ(field(lines[0], "error"), "'NOSUCH' is not in the catalogue " + path("store") + "/catalogue.toml");
  // Accounting off: nothing is written.
  configure("enabled = false\n");
  ASSERT_EQ(run({}, "true").exit_code, 0);
  EXPECT_EQ(lines_of(log).size(), 1u);
}

TEST_F(AccountingLaunches, ALogThatCannotBeWrittenNeverStopsTheJob) {
  test::mkdirs(log_dir);
  ASSERT_EQ(::chown(log_dir.c_str(), 65534, 65534), 0);
  auto r = run({}, "echo ran; exit 4");
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_EQ(r.out, "ran\n");
  EXPECT_EQ(r.err, "chrootctl run: warning: accounting: the accounting directory " + log_dir +
                       " is owned by uid 65534 with mode 0755; it must belong to root and be writable by no one else\n");
  ASSERT_EQ(::chown(log_dir.c_str(), 0, 0), 0);
  // A symlink or a hard link planted as the log is never written through.
  ASSERT_EQ(::symlink("/etc/passwd", log.c_str()), 0);
  r = run({}, "exit 0");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.err, "chrootctl run: warning: accounting: " + log + " is a symlink; refusing to write through it\n");
  ASSERT_EQ(::unlink(log.c_str()), 0);
  test::write_file(path("elsewhere"), "");
  ASSERT_EQ(::link(path("elsewhere").c_str(), log.c_str()), 0);
  r = run({}, "exit 0");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.err, "chrootctl run: warning: accounting: " + log +
                       " is owned by uid 0 with mode 0644 and 2 links; it must be a file of uid 0 with one link, writable by no one else\n");
  EXPECT_EQ(test::read_file(path("elsewhere")), "");
}

TEST_F(AccountingLaunches, OtherUsersWriteTheirOwnFileWhichLogReadsAsTheirReport) {
  ASSERT_EQ(run({}, "true").exit_code, 0);  // root's first launch makes users/
  if (test::sh("setpriv --reuid 65534 --regid 65534 --clear-groups unshare -U true").exit_code != 0) {
    if (test::privileged_required()) FAIL() << "nobody cannot create a user namespace";
    GTEST_SKIP() << "nobody cannot create a user namespace";
  }
  auto as_nobody = [&](const std::string& script) {
    return test::run({"setpriv",
                      "--reuid",
                      "65534",
                      "--regid",
                      "65534",
                      "--clear-groups",
                      "env",
                      "-i",
                      "PATH=/usr/bin:/bin",
                      "CHROOTCTL_CONFIG=" + config,
                      CHROOTCTL_BIN,
                      "run",
                      "--root",
                      root,
                      "--sandbox",
                      sandbox,
                      "--",
                      "/bin/sh",
                      "-c",
                      script});
  };
  auto r = as_nobody("exit 6");
  EXPECT_EQ(r.exit_code, 6) << r.err;
  const std::string mine = log_dir + "/users/65534.jsonl";
  struct stat st {};
  ASSERT_EQ(::stat(mine.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 65534u);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  auto lines = lines_of(mine);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(field(lines[0], "invoking_uid"), "65534");
  EXPECT_EQ(field(lines[0], "exit_status"), "6");
  EXPECT_EQ(field(lines[0], "id_mode"), "identity");
  EXPECT_EQ(lines_of(log).size(), 1u);  // root's log has root's launch only

  // chrootctl log: root's line, then nobody's own report.
  auto l = test::run_chrootctl({"log", "--json"}, {{"CHROOTCTL_CONFIG", config}});
  ASSERT_EQ(l.exit_code, 0) << l.err;
  EXPECT_NE(l.out.find("\"source\": \"root\""), std::string::npos) << l.out;
  EXPECT_NE(l.out.find("\"source\": \"user\",\n      \"file\": \"" + mine + "\""), std::string::npos) << l.out;
  auto text = test::run_chrootctl({"log"}, {{"CHROOTCTL_CONFIG", config}});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("nobody (own report)"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("\n2 launches\n"), std::string::npos) << text.out;
  // nobody reads only its own lines; root's log is root's.
  auto theirs =
      test::run({"setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "env", "CHROOTCTL_CONFIG=" + config, CHROOTCTL_BIN, "log"});
  EXPECT_EQ(theirs.exit_code, 0) << theirs.err;
  EXPECT_NE(theirs.out.find("\n1 launch\n"), std::string::npos) << theirs.out;
  EXPECT_EQ(theirs.err, "chrootctl log: note: only root reads " + log +
                            "\nchrootctl log: note: the launches of other users are read by "
                            "root only; yours are in " +
                            log_dir + "/users/65534.jsonl\n");

  // A line naming someone else, and a file of the wrong owner, are not taken for theirs.
  ASSERT_EQ(test::sh("sed 's/\"invoking_uid\":65534/\"invoking_uid\":0/' '" + mine + "' >> '" + mine + "'").exit_code, 0);
  test::write_file(log_dir + "/users/1000.jsonl", test::read_file(mine));
  auto checked = test::run_chrootctl({"log"}, {{"CHROOTCTL_CONFIG", config}});
  EXPECT_EQ(checked.exit_code, 1);
  EXPECT_EQ(checked.err, "chrootctl log: " + log_dir +
                             "/users/1000.jsonl belongs to uid 0, not 1000: skipped\n"
                             "chrootctl log: " +
                             mine + ":2: the line names another invoking_uid than the file's owner 65534: skipped\n");
  EXPECT_NE(checked.out.find("\n2 launches\n"), std::string::npos) << checked.out;
  ASSERT_EQ(::unlink((log_dir + "/users/1000.jsonl").c_str()), 0);

  // A FIFO planted under a user's name does not hang that user's launch.
  ASSERT_EQ(::unlink(mine.c_str()), 0);
  // 0666 whatever the umask: the FIFO is one another user could open, as a planted one would be.
  ASSERT_EQ(::mkfifo(mine.c_str(), 0666), 0);
  ASSERT_EQ(::chmod(mine.c_str(), 0666), 0);
  r = as_nobody("exit 0");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.err, "chrootctl run: warning: accounting: " + mine + " is a FIFO or a device, not a regular file\n");
}

TEST_F(AccountingLaunches, LogSelectsByImageAndTime) {
  auto store = path("store");
  auto b = test::run_chrootctl({"build", "minimal", "--store", store, "--register", "MINIMAL", "-q"}, {{"CHROOTCTL_CONFIG", config}});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  auto resolved = test::run_chrootctl({"resolve", "MINIMAL", "--store", store, "--json"}, {{"CHROOTCTL_CONFIG", config}});
  ASSERT_EQ(resolved.exit_code, 0) << resolved.err;
  EXPECT_NE(resolved.out.find("\"accounting_log\": \"" + log + "\""), std::string::npos) << resolved.out;
  auto r = test::run_chrootctl({"run", "MINIMAL", "--store", store, "--sandbox", sandbox, "--user", "nobody", "--", "/bin/true"},
                               {{"CHROOTCTL_CONFIG", config}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(run({}, "true").exit_code, 0);  // --root: no image name
  const auto lines = lines_of(log);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(field(lines[0], "image"), "MINIMAL");
  EXPECT_EQ(field(lines[0], "entry"), "MINIMAL");
  EXPECT_NE(resolved.out.find("\"build_id\": \"" + field(lines[0], "build_id") + "\""), std::string::npos) << resolved.out;
  EXPECT_NE(resolved.out.find("\"digest\": \"" + field(lines[0], "tree_digest") + "\""), std::string::npos) << resolved.out;
  EXPECT_EQ(field(lines[0], "signer"), "null");

  auto by_image = test::run_chrootctl({"log", "--image", "MINIMAL", "--json"}, {{"CHROOTCTL_CONFIG", config}});
  ASSERT_EQ(by_image.exit_code, 0) << by_image.err;
  auto count = [](const std::string& s, const std::string& what) {
    std::size_t n = 0;
    for (auto p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count(by_image.out, "\"via\": \"run\""), 1u) << by_image.out;
  auto all = test::run_chrootctl({"log", "--since", "1h", "--json"}, {{"CHROOTCTL_CONFIG", config}});
  EXPECT_EQ(count(all.out, "\"via\": \"run\""), 2u) << all.out;
  auto future = test::run_chrootctl({"log", "--since", "2099-01-01"}, {{"CHROOTCTL_CONFIG", config}});
  EXPECT_EQ(future.exit_code, 0);
  EXPECT_NE(future.out.find("\n0 launches\n"), std::string::npos) << future.out;
  auto bad = test::run_chrootctl({"log", "--since", "yesterday"}, {{"CHROOTCTL_CONFIG", config}});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(bad.err,
            "chrootctl log: --since 'yesterday': expected a UTC time, a date, @SECONDS or an age like 2h\n"
            "Try 'chrootctl log --help'.\n");
}

}  // namespace
}  // namespace chrootctl
