// The 'run' and 'cleanup' verbs' command lines: help, usage errors (125 for run, whose other
// statuses belong to the job), and the catalogue seam.
#include <stdlib.h>
#include <unistd.h>

#include "test_support.hpp"

namespace chrootctl {
namespace {

TEST(LauncherCli, RunHelpListsEveryOptionAndTheExitStatuses) {
  auto r = test::run_chrootctl({"run", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* o : {"--root DIR", "--sandbox DIR", "--user USER", "--scratch-path PATH", "--mount-under-scratch DIRS", "--bind SRC:DST[:ro]",
                        "--memory SIZE", "--memory-low SIZE", "--swap SIZE", "--cpus N", "--pids N", "--net host|none", "--env K=V", "--keep-env K",
                        "--status-json FILE", "--require-limits", "125 chrootctl failed before the job started"})
    EXPECT_NE(r.out.find(o), std::string::npos) << o;
  EXPECT_EQ(r.out.substr(0, 78), "Usage: chrootctl run NAME|--root DIR --sandbox DIR [OPTIONS] -- CMD [ARGS...]\n");
}

TEST(LauncherCli, UsageErrorsExit125WithTheReason) {
  struct Case {
    std::vector<std::string> args;
    std::string err;
  };
  const std::vector<Case> cases = {
      {{"run", "--sandbox", "/s", "--", "true"}, "chrootctl run: no root: give an image NAME or --root DIR\n"},
      {{"run", "--root", "/r", "--", "true"}, "chrootctl run: --sandbox DIR is required\n"},
      {{"run", "--root", "/r", "--sandbox", "/s"}, "chrootctl run: no command: put it after '--'\n"},
      {{"run", "--root", "/r", "--sandbox", "/s", "--cpus", "two", "--", "true"},
       "chrootctl run: --cpus: 'two' is not a number of CPUs (like 2 or 0.5)\n"},
      {{"run", "--root", "/r", "--sandbox", "/s", "--net", "bridge", "--", "true"}, "chrootctl run: --net: 'bridge' (host or none)\n"},
      {{"run", "--root", "/r", "--sandbox", "/s", "--bind", "/a", "--", "true"}, "chrootctl run: --bind '/a': expected SRC:DST or SRC:DST:ro\n"},
      {{"run", "--root", "/r", "--sandbox", "/s", "--env", "=x", "--", "true"}, "chrootctl run: --env '=x': expected K=V\n"},
      {{"run", "--root", "/r", "--sandbox", "/s", "--pids", "-1", "--", "true"}, "chrootctl run: --pids: '-1' is not a number\n"},
      {{"run", "--root", "/r", "EL9", "--sandbox", "/s", "--", "true"}, "chrootctl run: give either an image NAME or --root DIR, not both\n"},
      {{"run", "--rot", "/r"}, "chrootctl run: unknown option '--rot' (did you mean '--root'?)\n"},
  };
  for (const auto& c : cases) {
    auto r = test::run_chrootctl(c.args);
    EXPECT_EQ(r.exit_code, 125) << c.err;
    EXPECT_EQ(r.err, c.err + "Try 'chrootctl run --help'.\n");
    EXPECT_EQ(r.out, "");
  }
}

TEST(LauncherCli, UnknownImageNameIsRefusedBeforeAnythingRuns) {
  char tmpl[] = "/tmp/chrootctl-cli-store.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string store = tmpl;
  auto r = test::run_chrootctl({"run", "EL9", "--store", store, "--sandbox", "/s", "--", "true"});
  EXPECT_EQ(r.exit_code, 125);
  EXPECT_EQ(r.err.rfind("chrootctl: error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("'EL9'"), std::string::npos) << r.err;
  auto both = test::run_chrootctl({"run", "EL9", "--root", "/", "--sandbox", "/s", "--", "true"});
  EXPECT_EQ(both.exit_code, 125);
  EXPECT_NE(both.err.find("give either an image NAME or --root DIR, not both"), std::string::npos) << both.err;
  ::rmdir(store.c_str());
}

TEST(LauncherCli, CleanupHelpAndJson) {
  auto h = test::run_chrootctl({"cleanup", "--help"});
  EXPECT_EQ(h.exit_code, 0);
  EXPECT_NE(h.out.find("Usage: chrootctl cleanup [--json]"), std::string::npos);
  auto bad = test::run_chrootctl({"cleanup", "extra"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(bad.err, "chrootctl cleanup: unexpected argument 'extra'\nTry 'chrootctl cleanup --help'.\n");
}

}  // namespace
}  // namespace chrootctl
