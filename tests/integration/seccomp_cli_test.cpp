// The seccomp verb (compile, check, show) and run --seccomp's command line, through the binary.
#include <sys/stat.h>
#include <unistd.h>

#include "test_support.hpp"

namespace chrootctl {
namespace {

class SeccompCli : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    test::write_file(path("config.toml"), "", 0644);
    env = {{"CHROOTCTL_CONFIG", path("config.toml")}, {"CHROOTCTL_STATE_DIR", path("state")}};
  }
  test::CommandResult ctl(const std::vector<std::string>& args) { return test::run_chrootctl(args, env); }
  std::map<std::string, std::string> env;
};

TEST_F(SeccompCli, CheckReportsEveryMistakeAtItsPlace) {
  const std::string f = path("site.toml");
  test::write_file(f, "base = \"default\"\nallow = [\"perf_event_opn\"]\ndeny = [\"@keyrings\"]\n", 0644);
  auto r = ctl({"seccomp", "check", f});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, f +
                       ":2:10: error: unknown system call 'perf_event_opn' (did you mean 'perf_event_open'?)\n"
                       " 2 | allow = [\"perf_event_opn\"]\n"
                       "   |          ^\n" +
                       f +
                       ":3:9: error: unknown group '@keyrings' (did you mean '@keyring'?)\n"
                       " 3 | deny = [\"@keyrings\"]\n"
                       "   |         ^\n"
                       "2 errors in " +
                       f + "\n");
  test::write_file(f, "base = \"default\"\nallow = [\"perf_event_open\"]\n", 0644);
  r = ctl({"seccomp", "check", f, "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\"valid\": true"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"policy\": \"" + f + "\""), std::string::npos) << r.out;
}

TEST_F(SeccompCli, TheSitesAdditionsAreCheckedInTheConfiguration) {
  test::write_file(path("config.toml"), "[seccomp]\nallow = [\"ptrace\"]\nerrno = \"EPRM\"\n", 0644);
  auto r = ctl({"seccomp", "check"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, path("config.toml") +
                       ":3:9: error: unknown errno 'EPRM' (did you mean 'EPERM'?)\n"
                       " 3 | errno = \"EPRM\"\n"
                       "   |         ^\n");
}

TEST_F(SeccompCli, CompileWritesTheProgramOnce) {
  const std::string dir = path("cache");
  auto first = ctl({"seccomp", "compile", "--policy", "default", "--cache-dir", dir});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  ASSERT_EQ(first.out.substr(0, 7), "sha256:");
  const std::string digest = first.out.substr(7, 64);
  EXPECT_EQ(first.out.substr(71, dir.size() + 72), " " + dir + "/" + digest + ".bpf (") << first.out;
  EXPECT_TRUE(first.out.ends_with(" instructions, compiled)\n")) << first.out;
  struct stat st {};
  ASSERT_EQ(::stat((dir + "/" + digest + ".bpf").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  auto again = ctl({"seccomp", "compile", "--policy", "default", "--cache-dir", dir});
  EXPECT_EQ(again.exit_code, 0);
  EXPECT_NE(again.out.find("already compiled"), std::string::npos) << again.out;
  auto wrong = ctl({"seccomp", "compile", "--policy", "default", "--cache-dir", dir, "--expect-digest", std::string(64, '0')});
  EXPECT_EQ(wrong.exit_code, 2);
  EXPECT_EQ(wrong.err, "chrootctl: error: the policy 'default' changed while the launch was prepared (its digest is now " + digest + ", not " +
                           std::string(64, '0') + "); start it again\n");
  // show names the program compiled for the policy jobs run with, once it is in the cache.
  auto show = ctl({"seccomp", "show", "--json"});
  EXPECT_EQ(show.exit_code, 0);
  EXPECT_NE(show.out.find("\"digest\": \"" + digest + "\""), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("\"mount\": {\n"), std::string::npos) << show.out;
}

TEST_F(SeccompCli, ShowListsThePolicyCallByCall) {
  auto r = ctl({"seccomp", "show", "--policy", "default"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* line :
       {"policy:           default (chrootctl default job policy)\n", "program:          not compiled yet\n", "denied calls:     EPERM\n",
        "other calls:      ENOSYS (every call the policy does not name)\n", "denied with ENOSYS (1):\n    clone3\n",
        "  ioctl: argument 1 (low 32 bits): 0x5412, 0x541c denied (EPERM); other values allowed\n",
        "  clone: argument 0 (low 32 bits): allowed only with none of the bits 0x7e020000 set; otherwise EPERM\n"})
    EXPECT_NE(r.out.find(line), std::string::npos) << line << r.out;
  r = ctl({"seccomp", "show", "--policy", "none"});
  EXPECT_EQ(r.out, "policy:           none (jobs run without a system-call filter)\n");
  r = ctl({"seccomp", "show", "--policy", "strict"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "chrootctl: error: --policy 'strict': expected default, build, build-host, none or the absolute path of a policy file\n");
}

TEST_F(SeccompCli, HelpAndUnknownSubcommands) {
  auto r = ctl({"seccomp", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("  compile   compile a policy into the cache that job launches load\n"), std::string::npos) << r.out;
  r = ctl({"seccomp", "compil"});
  EXPECT_EQ(r.exit_code, 2);
  r = ctl({"seccomp", "compile", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--expect-digest HEX"), std::string::npos);
  r = ctl({"run", "--help"});
  EXPECT_NE(r.out.find("--seccomp FILE|default|none"), std::string::npos);
}

}  // namespace
}  // namespace chrootctl
