// The system-call filter of `chrootctl run`, attacked as a hostile job would: every call the
// default policy denies, from a static 64-bit program and from a static 32-bit one through
// int 0x80 (socket and ipc calls through the socketcall and ipc multiplexers), an x32 call
// number, clone with CLONE_NEWUSER, clone3, io_uring and TIOCSTI on a terminal.
//
// Most of these calls fail for a job without capabilities anyway, with EPERM, like the filter's
// answer. So each attack runs twice under a site configuration that makes the policy's denials
// answer EHWPOISON, an errno no kernel path here returns: under the default policy every denied
// call answers EHWPOISON; with --seccomp none none does (each call reaches the kernel and gets
// its own answer), which proves the test can fail. A third run checks the default policy's own
// answer, EPERM.
#include <fcntl.h>
#include <pty.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <map>
#include <sstream>

#include "chrootctl/common/strings.hpp"
#include "launcher_fixture.hpp"
#include "test_support.hpp"

namespace chrootctl {
namespace {

namespace fx = test::launcher;

constexpr const char* k_marker = "EHWPOISON";

// name -> what the default policy answers ("DENIED": the policy's errno).
const std::vector<std::pair<std::string, std::string>>& expected_64() {
  static const std::vector<std::pair<std::string, std::string>> k = {
      {"keyctl", "DENIED"},
      {"add_key", "DENIED"},
      {"request_key", "DENIED"},
      {"bpf", "DENIED"},
      {"perf_event_open", "DENIED"},
      {"userfaultfd", "DENIED"},
      {"io_uring_setup", "DENIED"},
      {"io_uring_enter", "DENIED"},
      {"io_uring_register", "DENIED"},
      {"kexec_load", "DENIED"},
      {"kexec_file_load", "DENIED"},
      {"init_module", "DENIED"},
      {"finit_module", "DENIED"},
      {"delete_module", "DENIED"},
      {"open_by_handle_at", "DENIED"},
      {"mount", "DENIED"},
      {"umount2", "DENIED"},
      {"pivot_root", "DENIED"},
      {"move_mount", "DENIED"},
      {"open_tree", "DENIED"},
      {"fsopen", "DENIED"},
      {"fsconfig", "DENIED"},
      {"fsmount", "DENIED"},
      {"fspick", "DENIED"},
      {"mount_setattr", "DENIED"},
      {"setns", "DENIED"},
      {"unshare_user", "DENIED"},
      {"unshare_mount", "DENIED"},
      {"clone_user", "DENIED"},
      {"acct", "DENIED"},
      {"swapon", "DENIED"},
      {"swapoff", "DENIED"},
      {"reboot", "DENIED"},
      {"settimeofday", "DENIED"},
      {"clock_settime", "DENIED"},
      {"adjtimex", "DENIED"},
      {"syslog", "DENIED"},
      {"quotactl", "DENIED"},
      {"iopl", "DENIED"},
      {"ioperm", "DENIED"},
      {"lookup_dcookie", "DENIED"},
      {"vhangup", "DENIED"},
      {"uselib", "DENIED"},
      {"personality_bsd", "DENIED"},
      {"personality_norandom", "DENIED"},
      {"tiocsti", "DENIED"},
      {"tioclinux", "DENIED"},
      {"tiocsti_high", "DENIED"},
      {"x32_getpid", "DENIED"},
      {"clone3", "ENOSYS"},
      {"socket_vsock", "EAFNOSUPPORT"},
      {"socket_vsock_high", "EAFNOSUPPORT"},
      {"unshare_files", "ok"},
      {"clone_plain", "ok"},
      {"personality_query", "ok"},
      {"tcgets", "ENOTTY"},
      {"socket_unix", "ok"},
      {"getppid", "ok"},
  };
  return k;
}

// The same attacks from the i386 program; socket and ipc through the multiplexers. A socket's
// family is in memory behind socketcall, out of a filter's reach: socketcall_vsock gets the
// kernel's own answer (VSOCK below), under the default policy as without a filter.
const std::vector<std::pair<std::string, std::string>>& expected_32() {
  static const std::vector<std::pair<std::string, std::string>> k = [] {
    std::vector<std::pair<std::string, std::string>> v;
    for (const auto& [name, want] : expected_64()) {
      if (name == "kexec_file_load" || name == "tiocsti_high" || name == "x32_getpid" || name == "socket_vsock_high") continue;
      // The direct socket call is checked; a refused family there gets the default answer.
      v.emplace_back(name, name == "socket_vsock" ? "ENOSYS" : want);
    }
    v.emplace_back("socketcall_unix", "ok");
    v.emplace_back("socketcall_vsock", "VSOCK");
    v.emplace_back("socketcall_socketpair", "ok");
    v.emplace_back("ipc_shmget", "ok");
    v.emplace_back("ipc_unknown", "ENOSYS");
    return v;
  }();
  return k;
}

std::map<std::string, std::string> parse_results(const std::string& out) {
  std::map<std::string, std::string> m;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    const auto colon = line.find(": ");
    if (colon != std::string::npos) m[line.substr(0, colon)] = line.substr(colon + 2);
  }
  return m;
}

// What the host's kernel says to socket(AF_VSOCK): "ok" where it has vsock.
std::string host_vsock() {
  const int fd = ::socket(40, SOCK_STREAM, 0);
  if (fd >= 0) {
    ::close(fd);
    return "ok";
  }
  return errno == EAFNOSUPPORT ? "EAFNOSUPPORT" : str("errno ", errno);
}

class SeccompBypass : public fx::BusyboxRootTest {
 protected:
  void SetUp() override {
    BusyboxRootTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    for (const auto& [src, dst] : {std::pair<std::string, std::string>{CHROOTCTL_SECCOMP_PROBE64, "probe64"},
                                   {CHROOTCTL_SECCOMP_PROBE32, "probe32"},
                                   {CHROOTCTL_SECCOMP_THREADS, "threads"}})
      ASSERT_EQ(test::sh("cp '" + src + "' '" + root + "/bin/" + dst + "'").exit_code, 0) << src;
    // A state directory of the test's own: its cache of compiled programs starts empty.
    state = path("state");
    test::mkdirs(state, 0755);
    marker_config = path("marker.toml");
    test::write_file(marker_config, str("[seccomp]\nerrno = \"", k_marker, "\"\n"), 0644);
  }
  test::CommandResult run(const std::vector<std::string>& options, const std::vector<std::string>& cmd, const std::string& config = "") {
    std::vector<std::string> a{"run", "--root", root, "--sandbox", sandbox, "--user", "nobody"};
    a.insert(a.end(), options.begin(), options.end());
    a.push_back("--");
    a.insert(a.end(), cmd.begin(), cmd.end());
    std::map<std::string, std::string> env{{"CHROOTCTL_STATE_DIR", state}};
    env["CHROOTCTL_CONFIG"] = config.empty() ? path("no-config.toml") : config;
    if (config.empty()) test::write_file(path("no-config.toml"), "", 0644);
    return test::run_chrootctl(a, env);
  }
  // Runs `probe all` under the default policy (answering `denied` for its denials) and
  // compares every answer with `expected`.
  void check_default(const std::string& probe, const std::vector<std::pair<std::string, std::string>>& expected, const std::string& config,
                     const std::string& denied) {
    auto r = run({}, {"/bin/" + probe, "all"}, config);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    const auto got = parse_results(r.out);
    EXPECT_EQ(got.size(), expected.size()) << r.out;
    for (const auto& [name, want] : expected) {
      SCOPED_TRACE(probe + " " + name);
      ASSERT_EQ(got.count(name), 1u) << r.out;
      const std::string expect = want == "DENIED" ? denied : want == "VSOCK" ? host_vsock() : want;
      EXPECT_EQ(got.at(name), expect) << (want == "VSOCK" ? "socketcall's family is not checked" : "");
    }
  }
  // The same calls with --seccomp none: none answers the marker; the allowed ones and those
  // whose answer does not depend on the host are as expected.
  void check_none(const std::string& probe, const std::vector<std::pair<std::string, std::string>>& expected) {
    auto r = run({"--seccomp", "none"}, {"/bin/" + probe, "all"}, marker_config);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    const auto got = parse_results(r.out);
    EXPECT_EQ(got.size(), expected.size()) << r.out;
    for (const auto& [name, want] : expected) {
      SCOPED_TRACE(probe + " " + name);
      ASSERT_EQ(got.count(name), 1u) << r.out;
      EXPECT_NE(got.at(name), k_marker);
      if (want == "ok" || want == "ENOTTY") {
        EXPECT_EQ(got.at(name), want);
      }
    }
    EXPECT_EQ(got.at("clone3"), "ok") << "clone3 reaches the kernel";
    EXPECT_EQ(got.at("tiocsti"), "ENOTTY") << "stdin is a pipe";
    if (host_vsock() == "ok") {
      EXPECT_EQ(got.at("socket_vsock"), "ok");
    }
    if (probe == "probe64") {
      EXPECT_TRUE(got.at("x32_getpid") == "ENOSYS" || got.at("x32_getpid") == "ok") << got.at("x32_getpid");
      if (host_vsock() == "ok") {
        EXPECT_EQ(got.at("socket_vsock_high"), "ok") << "the kernel reads the family as an int";
      }
    }
  }
  std::string state, marker_config;
};

TEST_F(SeccompBypass, TheDeniedCallsFromA64BitProgram) {
  check_default("probe64", expected_64(), marker_config, k_marker);
  check_none("probe64", expected_64());
}

TEST_F(SeccompBypass, TheDeniedCallsThroughInt80FromA32BitProgram) {
  check_default("probe32", expected_32(), marker_config, k_marker);
  check_none("probe32", expected_32());
}

TEST_F(SeccompBypass, TheDefaultPolicyAnswersEpermToItsDenials) {
  check_default("probe64", expected_64(), "", "EPERM");
  check_default("probe32", expected_32(), "", "EPERM");
}

TEST_F(SeccompBypass, TheMultiplexersAreFilteredOperationByOperation) {
  // A site that also denies socketpair and shmget: their socketcall and ipc operations too.
  const std::string cfg = path("deny.toml");
  test::write_file(cfg, str("[seccomp]\nerrno = \"", k_marker, "\"\ndeny = [\"socketpair\", \"shmget\"]\n"), 0644);
  auto r = run({}, {"/bin/probe32", "socketcall_socketpair", "ipc_shmget", "socketcall_unix"}, cfg);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, str("socketcall_socketpair: ", k_marker, "\nipc_shmget: ", k_marker, "\nsocketcall_unix: ok\n"));
  r = run({"--seccomp", "none"}, {"/bin/probe32", "socketcall_socketpair", "ipc_shmget", "socketcall_unix"}, cfg);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "socketcall_socketpair: ok\nipc_shmget: ok\nsocketcall_unix: ok\n");
}

// The socket families are out of a filter's reach through socketcall (any job can make i386
// calls): a site that runs no 32-bit programs needing sockets denies socketcall itself, and
// i386 sockets are then made by the direct call alone, whose family is checked.
TEST_F(SeccompBypass, ASiteThatDeniesSocketcallClosesTheSocketFamilyGap) {
  const std::string cfg = path("nosocketcall.toml");
  test::write_file(cfg, str("[seccomp]\nerrno = \"", k_marker, "\"\ndeny = [\"socketcall\"]\n"), 0644);
  const std::vector<std::string> cmd = {"/bin/probe32", "socketcall_vsock", "socketcall_unix", "socket_unix", "socket_vsock"};
  auto r = run({}, cmd, cfg);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, str("socketcall_vsock: ", k_marker, "\nsocketcall_unix: ", k_marker, "\nsocket_unix: ok\nsocket_vsock: ENOSYS\n"));
  r = run({"--seccomp", "none"}, cmd, cfg);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(parse_results(r.out).at("socketcall_unix"), "ok");
  EXPECT_EQ(parse_results(r.out).at("socket_unix"), "ok");
}

TEST_F(SeccompBypass, TiocstiOnTheJobsTerminal) {
  // The job's stdin is a terminal that is no session's controlling terminal: the job (a session
  // leader) makes it its own, then pushes a character into its input.
  auto attempt = [&](const std::vector<std::string>& options) {
    int master = -1, slave = -1;
    EXPECT_EQ(::openpty(&master, &slave, nullptr, nullptr, nullptr), 0);
    const std::string out = path("tty.out"), err = path("tty.err");
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::setsid();  // so the terminal is not this process's either
      ::dup2(slave, 0);
      const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(o, 1);
      ::dup2(e, 2);
      ::setenv("CHROOTCTL_STATE_DIR", state.c_str(), 1);
      ::setenv("CHROOTCTL_CONFIG", marker_config.c_str(), 1);
      std::vector<std::string> a{CHROOTCTL_BIN, "run", "--root", root, "--sandbox", sandbox, "--user", "nobody"};
      a.insert(a.end(), options.begin(), options.end());
      a.insert(a.end(), {"--", "/bin/probe64", "tiocsti-tty"});
      std::vector<char*> v;
      v.reserve(a.size() + 1);
      for (auto& x : a) v.push_back(x.data());
      v.push_back(nullptr);
      ::execv(v[0], v.data());
      ::_exit(127);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    ::close(slave);
    // What was pushed into the terminal's input is echoed to its output.
    std::string echoed;
    char buf[256];
    ::fcntl(master, F_SETFL, O_NONBLOCK);
    ssize_t n;
    while ((n = ::read(master, buf, sizeof buf)) > 0) echoed.append(buf, static_cast<std::size_t>(n));
    ::close(master);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << test::read_file(err);
    return std::make_pair(test::read_file(out), echoed);
  };
  // --no-pty: the job gets that terminal itself (by default it would get one of its own, and
  // TIOCSTI would push into that: LauncherBoundary tests it).
  const auto [filtered, filtered_echo] = attempt({"--no-pty"});
  EXPECT_EQ(filtered, str("tiocsti: ", k_marker, "\ntiocsti_high: ", k_marker, "\n"));
  EXPECT_EQ(filtered_echo.find('X'), std::string::npos) << "a character reached the terminal: " << filtered_echo;
  const auto [open, open_echo] = attempt({"--no-pty", "--seccomp", "none"});
  EXPECT_EQ(open, "tiocsti: ok\ntiocsti_high: ok\n") << "without the filter the job can push input (legacy_tiocsti)";
  EXPECT_NE(open_echo.find('X'), std::string::npos) << open_echo;
}

TEST_F(SeccompBypass, StaticAnd32BitAndThreadedProgramsRunNormally) {
  auto r = run({}, {"/bin/sh", "-c", "/bin/probe32 hello && /bin/probe64 hello && /bin/threads"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "hello from a static i386 program\nhello from a static x86-64 program\nthreads: 8 joined, sum 36\n");
  EXPECT_EQ(r.err, "");
}

TEST_F(SeccompBypass, TheStatusRecordNamesThePolicyAndItsDigest) {
  const std::string status = path("status.json");
  auto r = run({"--status-json", status}, {"/bin/true"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto show = test::run_chrootctl({"seccomp", "show", "--json"}, {{"CHROOTCTL_STATE_DIR", state}, {"CHROOTCTL_CONFIG", path("no-config.toml")}});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  const auto at = show.out.find("\"digest\": \"");
  ASSERT_NE(at, std::string::npos) << show.out;
  const std::string digest = show.out.substr(at + 11, 64);
  const std::string json = test::read_file(status);
  EXPECT_NE(json.find("\"seccomp_policy\": \"default\",\n  \"seccomp_digest\": \"" + digest + "\""), std::string::npos) << json;
  // The program is in the state directory's cache, root's, mode 0644.
  struct stat st {};
  ASSERT_EQ(::stat((state + "/seccomp/" + digest + ".bpf").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  r = run({"--status-json", status, "--seccomp", "none"}, {"/bin/true"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(test::read_file(status).find("\"seccomp_policy\": \"none\",\n  \"seccomp_digest\": null"), std::string::npos);
}

TEST_F(SeccompBypass, NoneIsForRootOnly) {
  auto r = test::run({"setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", CHROOTCTL_BIN, "run", "--root", root, "--sandbox", sandbox,
                      "--seccomp", "none", "--", "/bin/true"});
  EXPECT_EQ(r.exit_code, 125);
  EXPECT_EQ(r.err, "chrootctl run: --seccomp none: only root may run a job without a system-call filter\n");
}

TEST_F(SeccompBypass, ACachedProgramSomeoneElseCouldHaveWrittenIsRefused) {
  ASSERT_EQ(run({}, {"/bin/true"}).exit_code, 0);
  const std::string dir = state + "/seccomp";
  const std::string listed = test::sh("ls '" + dir + "'").out;
  ASSERT_EQ(listed.size(), 64u + 5u) << listed;
  const std::string program = dir + "/" + listed.substr(0, 68);
  const std::string digest = listed.substr(0, 64);
  ASSERT_EQ(::chmod(program.c_str(), 0666), 0);
  auto r = run({}, {"/bin/true"});
  EXPECT_EQ(r.exit_code, 125);
  EXPECT_EQ(r.err, "chrootctl run: system-call filter " + program + " (policy 'default'): the file is writable by group or others (mode 0666)\n");
  ASSERT_EQ(::chmod(program.c_str(), 0644), 0);
  // Another policy's program under this policy's name.
  auto other = test::run_chrootctl({"seccomp", "compile", "--policy", "build", "--cache-dir", dir, "--json"});
  ASSERT_EQ(other.exit_code, 0) << other.err;
  const auto at = other.out.find("\"digest\": \"");
  const std::string other_digest = other.out.substr(at + 11, 64);
  ASSERT_EQ(::rename((dir + "/" + other_digest + ".bpf").c_str(), program.c_str()), 0);
  r = run({}, {"/bin/true"});
  EXPECT_EQ(r.exit_code, 125);
  EXPECT_EQ(r.err, "chrootctl run: system-call filter " + program + " (policy 'default'): it was compiled from the policy sha256:" + other_digest +
                       ", not sha256:" + digest + "\n");
}

TEST_F(SeccompBypass, AMistakeInTheSitesPolicyStopsTheLaunch) {
  const std::string cfg = path("bad.toml");
  test::write_file(cfg, "[seccomp]\ndeny = [\"ptrase\"]\n", 0644);
  auto r = run({}, {"/bin/true"}, cfg);
  EXPECT_EQ(r.exit_code, 125);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, cfg +
                       ":2:9: error: unknown system call 'ptrase' (did you mean 'ptrace'?)\n"
                       " 2 | deny = [\"ptrase\"]\n"
                       "   |         ^\n"
                       "chrootctl run: the system-call policy 'default' could not be compiled (chrootctl-full seccomp compile exited "
                       "with status 1)\n");
}

}  // namespace
}  // namespace chrootctl
