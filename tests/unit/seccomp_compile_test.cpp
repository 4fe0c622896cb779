// Compiled programs, run on system calls as the kernel would run them (compile.hpp's
// run_program): the default policy's answers on x86-64, i386 and x32, and argument rules
// checked against many values (the allowed and refused conditions must cover every value
// exactly once, whatever libseccomp does with overlapping rules).
#include <gtest/gtest.h>
#include <linux/audit.h>
#include <linux/sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cerrno>
#include <random>

#include "chrootctl/seccomp/compile.hpp"
#include "chrootctl/seccomp/policy.hpp"
#include "chrootctl/seccomp/source.hpp"
#include "test_support.hpp"

namespace chrootctl::seccomp {
namespace {

constexpr std::uint32_t k_allow = SECCOMP_RET_ALLOW;
constexpr std::uint32_t errno_ret(int e) { return SECCOMP_RET_ERRNO | static_cast<std::uint32_t>(e); }

std::vector<sock_filter> compiled(const std::string& name) {
  auto src = load_source(name, Settings{});
  EXPECT_TRUE(src && *src);
  auto p = parse_policy(**src);
  EXPECT_TRUE(p) << p.error().what();
  auto prog = compile_policy(*p);
  EXPECT_TRUE(prog) << prog.error().what();
  return prog ? *prog : std::vector<sock_filter>{};
}

int nr(std::uint32_t arch, const char* name) {
  const int n = seccomp_syscall_resolve_name_arch(arch, name);
  EXPECT_GE(n, 0) << name;
  return n;
}

std::uint32_t call(const std::vector<sock_filter>& prog, std::uint32_t audit_arch, int number, std::uint64_t a0 = 0, std::uint64_t a1 = 0,
                   std::uint64_t a2 = 0) {
  struct seccomp_data d {};
  d.nr = number;
  d.arch = audit_arch;
  d.args[0] = a0;
  d.args[1] = a1;
  d.args[2] = a2;
  return run_program(prog, d);
}

class SeccompDefaultProgram : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { s_prog = new std::vector<sock_filter>(compiled("default")); }
  static void TearDownTestSuite() { delete s_prog; }
  static std::uint32_t x64(const char* name, std::uint64_t a0 = 0, std::uint64_t a1 = 0, std::uint64_t a2 = 0) {
    return call(*s_prog, AUDIT_ARCH_X86_64, nr(SCMP_ARCH_X86_64, name), a0, a1, a2);
  }
  static std::uint32_t i386(const char* name, std::uint64_t a0 = 0, std::uint64_t a1 = 0, std::uint64_t a2 = 0) {
    return call(*s_prog, AUDIT_ARCH_I386, nr(SCMP_ARCH_X86, name), a0, a1, a2);
  }
  static std::vector<sock_filter>* s_prog;
};
std::vector<sock_filter>* SeccompDefaultProgram::s_prog = nullptr;

TEST_F(SeccompDefaultProgram, FitsTheKernelsLimit) {
  EXPECT_GT(s_prog->size(), 100u);
  EXPECT_LE(s_prog->size(), 4096u);
}

TEST_F(SeccompDefaultProgram, X86_64) {
  EXPECT_EQ(x64("read"), k_allow);
  EXPECT_EQ(x64("getppid"), k_allow);
  EXPECT_EQ(x64("mount"), errno_ret(EPERM));
  EXPECT_EQ(x64("keyctl"), errno_ret(EPERM));
  EXPECT_EQ(x64("io_uring_setup"), errno_ret(EPERM));
  EXPECT_EQ(x64("clone3"), errno_ret(ENOSYS));
  EXPECT_EQ(call(*s_prog, AUDIT_ARCH_X86_64, 1000), errno_ret(ENOSYS)) << "a call the policy does not know";
  EXPECT_EQ(x64("kcmp"), errno_ret(ENOSYS)) << "a call the policy does not name";
  // clone: namespace flags refused, thread and fork flags allowed; the kernel reads 32 bits.
  EXPECT_EQ(x64("clone", CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM | CLONE_SETTLS | CLONE_PARENT_SETTID |
                             CLONE_CHILD_CLEARTID),
            k_allow);
  EXPECT_EQ(x64("clone", SIGCHLD), k_allow);
  for (std::uint64_t f : {CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWCGROUP})
    EXPECT_EQ(x64("clone", f | SIGCHLD), errno_ret(EPERM)) << std::hex << f;
  EXPECT_EQ(x64("clone", 0x100000000ULL | CLONE_NEWUSER), errno_ret(EPERM));
  EXPECT_EQ(x64("clone", 0x100000000ULL | SIGCHLD), k_allow);
  EXPECT_EQ(x64("unshare", CLONE_FILES | CLONE_FS), k_allow);
  EXPECT_EQ(x64("unshare", CLONE_NEWUSER), errno_ret(EPERM));
  EXPECT_EQ(x64("unshare", 0x80 /* CLONE_NEWTIME */), errno_ret(EPERM));
  // personality: Docker's values only.
  for (std::uint64_t v : {0x0ULL, 0x8ULL, 0x20000ULL, 0x20008ULL, 0xffffffffULL}) EXPECT_EQ(x64("personality", v), k_allow) << v;
  for (std::uint64_t v : {0x6ULL, 0x0040000ULL, 0x0400000ULL, 0x9ULL}) EXPECT_EQ(x64("personality", v), errno_ret(EPERM)) << v;
  // ioctl: TIOCSTI and TIOCLINUX refused in the low 32 bits, whatever the high ones say.
  EXPECT_EQ(x64("ioctl", 0, TCGETS), k_allow);
  EXPECT_EQ(x64("ioctl", 0, 0x5413), k_allow);
  EXPECT_EQ(x64("ioctl", 0, 0x5411), k_allow);
  EXPECT_EQ(x64("ioctl", 0, TIOCSTI), errno_ret(EPERM));
  EXPECT_EQ(x64("ioctl", 0, TIOCLINUX), errno_ret(EPERM));
  EXPECT_EQ(x64("ioctl", 0, 0x100005412ULL), errno_ret(EPERM));
  EXPECT_EQ(x64("ioctl", 0, 0xffffffff0000541cULL), errno_ret(EPERM));
  // socket: local, IPv4, IPv6 and netlink; any other family as if the kernel lacked it.
  for (std::uint64_t f : {AF_UNIX, AF_INET, AF_INET6, AF_NETLINK}) EXPECT_EQ(x64("socket", f, SOCK_STREAM), k_allow) << f;
  for (std::uint64_t f : {40ULL /* AF_VSOCK */, 38ULL /* AF_ALG */, 0x100000028ULL, 17ULL /* AF_PACKET */})
    EXPECT_EQ(x64("socket", f), errno_ret(EAFNOSUPPORT)) << std::hex << f;
}

TEST_F(SeccompDefaultProgram, X32AndOtherArchitecturesAreDenied) {
  EXPECT_EQ(call(*s_prog, AUDIT_ARCH_X86_64, 0x40000000 | nr(SCMP_ARCH_X86_64, "getpid")), errno_ret(EPERM));
  EXPECT_EQ(call(*s_prog, AUDIT_ARCH_X86_64, 0x40000000 | nr(SCMP_ARCH_X86_64, "read")), errno_ret(EPERM));
  EXPECT_EQ(call(*s_prog, AUDIT_ARCH_AARCH64, 63), errno_ret(EPERM));
}

TEST_F(SeccompDefaultProgram, I386InItsOwnNumberingWithTheMultiplexers) {
  EXPECT_EQ(i386("read"), k_allow);
  EXPECT_EQ(i386("mmap2"), k_allow);
  EXPECT_EQ(i386("mount"), errno_ret(EPERM));
  EXPECT_EQ(i386("umount"), errno_ret(EPERM));
  EXPECT_EQ(i386("keyctl"), errno_ret(EPERM));
  EXPECT_EQ(i386("clone3"), errno_ret(ENOSYS));
  EXPECT_EQ(i386("clone", CLONE_NEWUSER | SIGCHLD), errno_ret(EPERM));
  EXPECT_EQ(i386("clone", SIGCHLD), k_allow);
  EXPECT_EQ(i386("personality", 6), errno_ret(EPERM));
  EXPECT_EQ(i386("personality", 8), k_allow);
  EXPECT_EQ(i386("ioctl", 0, TIOCSTI), errno_ret(EPERM));
  EXPECT_EQ(i386("ioctl", 0, TCGETS), k_allow);
  EXPECT_EQ(i386("vm86"), errno_ret(ENOSYS)) << "not in the allow list";
  // socketcall: each allowed operation, nothing else.
  for (std::uint64_t op = 1; op <= 20; ++op) EXPECT_EQ(i386("socketcall", op), k_allow) << op;
  EXPECT_EQ(i386("socketcall", 21), errno_ret(ENOSYS));
  // ipc: the System V operations (semop 1 ... shmctl 24), nothing else.
  for (std::uint64_t op : {1, 2, 3, 4, 11, 12, 13, 14, 21, 22, 23, 24}) EXPECT_EQ(i386("ipc", op), k_allow) << op;
  EXPECT_EQ(i386("ipc", 99), errno_ret(ENOSYS));
  // The direct socket call (359, which libseccomp names by the socketcall operation) has its
  // family checked; through socketcall the family is in memory.
  EXPECT_EQ(call(*s_prog, AUDIT_ARCH_I386, 359, AF_UNIX), k_allow);
  EXPECT_EQ(call(*s_prog, AUDIT_ARCH_I386, 359, 40), errno_ret(ENOSYS));
}

TEST(SeccompCompile, DeniedSocketcallOperationsAreDeniedOnI386) {
  auto p = parse_policy(PolicySource{"t", {{"t.toml", "base = \"default\"\ndeny = [\"socketpair\", \"shmget\"]\n", "", false}}});
  ASSERT_TRUE(p) << p.error().what();
  auto prog = compile_policy(*p);
  ASSERT_TRUE(prog) << prog.error().what();
  EXPECT_EQ(call(*prog, AUDIT_ARCH_I386, nr(SCMP_ARCH_X86, "socketcall"), 8), errno_ret(EPERM));
  EXPECT_EQ(call(*prog, AUDIT_ARCH_I386, nr(SCMP_ARCH_X86, "socketcall"), 1), k_allow);
  EXPECT_EQ(call(*prog, AUDIT_ARCH_I386, nr(SCMP_ARCH_X86, "ipc"), 23), errno_ret(EPERM));
  EXPECT_EQ(call(*prog, AUDIT_ARCH_I386, nr(SCMP_ARCH_X86, "ipc"), 21), k_allow);
  EXPECT_EQ(call(*prog, AUDIT_ARCH_X86_64, nr(SCMP_ARCH_X86_64, "socketpair")), errno_ret(EPERM));
}

TEST(SeccompCompile, TheSitesErrnoAppliesToDenialsAndOtherArchitectures) {
  auto p = parse_policy(PolicySource{"t", {{"t.toml", "base = \"default\"\nerrno = \"EHWPOISON\"\n", "", false}}});
  ASSERT_TRUE(p);
  auto prog = compile_policy(*p);
  ASSERT_TRUE(prog) << prog.error().what();
  EXPECT_EQ(call(*prog, AUDIT_ARCH_X86_64, nr(SCMP_ARCH_X86_64, "mount")), errno_ret(EHWPOISON));
  EXPECT_EQ(call(*prog, AUDIT_ARCH_X86_64, nr(SCMP_ARCH_X86_64, "clone"), CLONE_NEWUSER), errno_ret(EHWPOISON));
  EXPECT_EQ(call(*prog, AUDIT_ARCH_X86_64, 0x40000027), errno_ret(EHWPOISON));
  EXPECT_EQ(call(*prog, AUDIT_ARCH_X86_64, nr(SCMP_ARCH_X86_64, "clone3")), errno_ret(ENOSYS));
  EXPECT_EQ(call(*prog, AUDIT_ARCH_X86_64, nr(SCMP_ARCH_X86_64, "socket"), 40), errno_ret(EAFNOSUPPORT));
}

TEST(SeccompCompile, ADenialWithTheUnknownErrnoNeedsNoRule) {
  // libseccomp refuses a rule whose action is the default one; such a denial is the default.
  auto p = parse_policy(PolicySource{"t", {{"t.toml", "unknown_errno = \"EPERM\"\nallow = [\"read\"]\ndeny = [\"mount\"]\n", "", false}}});
  ASSERT_TRUE(p);
  auto prog = compile_policy(*p);
  ASSERT_TRUE(prog) << prog.error().what();
  EXPECT_EQ(call(*prog, AUDIT_ARCH_X86_64, nr(SCMP_ARCH_X86_64, "mount")), errno_ret(EPERM));
  EXPECT_EQ(call(*prog, AUDIT_ARCH_X86_64, nr(SCMP_ARCH_X86_64, "read")), k_allow);
  EXPECT_EQ(call(*prog, AUDIT_ARCH_X86_64, nr(SCMP_ARCH_X86_64, "write")), errno_ret(EPERM));
}

// Argument rules against random values and the values next to the listed ones: each value is
// allowed or refused exactly as the rule says.
TEST(SeccompCompile, ArgumentRulesCoverEveryValueOnce) {
  std::mt19937_64 rng(20240517);
  for (int round = 0; round < 12; ++round) {
    SCOPED_TRACE(round);
    const int kind = round % 3;
    const unsigned width = round % 2 ? 32 : 64;
    std::vector<std::uint64_t> values;
    std::uint64_t mask = 0;
    const std::uint64_t wm = width == 32 ? 0xffffffffULL : ~0ULL;
    std::string text = "allow = [\"read\"]\n[[rule]]\nsyscalls = [\"ioctl\"]\narg = 1\nwidth = " + std::to_string(width) + "\n";
    if (kind == 2) {
      mask = (rng() & 0x7fffffffULL) | 0x10;
      text += "allow_if_clear = " + std::to_string(mask) + "\n";
    } else {
      for (int i = 0; i < 4; ++i) values.push_back(rng() & (width == 32 ? 0xffffffffULL : 0x7fffffffffffffffULL));
      values.push_back(0x5412);
      text += std::string(kind == 0 ? "allow_values" : "deny_values") + " = [";
      for (std::size_t i = 0; i < values.size(); ++i) text += (i ? ", " : "") + std::to_string(values[i]);
      text += "]\n";
    }
    auto p = parse_policy(PolicySource{"t", {{"t.toml", text, "", false}}});
    ASSERT_TRUE(p) << p.error().what();
    auto prog = compile_policy(*p);
    ASSERT_TRUE(prog) << prog.error().what();
    auto expected = [&](std::uint64_t v) {
      const std::uint64_t seen = v & wm;
      bool allowed;
      if (kind == 2) allowed = (seen & mask) == 0;
      else {
        const bool listed = std::find(values.begin(), values.end(), seen) != values.end();
        allowed = kind == 0 ? listed : !listed;
      }
      return allowed ? k_allow : errno_ret(EPERM);
    };
    std::vector<std::uint64_t> probes;
    for (auto v : values)
      for (std::uint64_t d : {0ULL, 1ULL, ~0ULL, 0x100000000ULL, 0x8000000000000000ULL}) probes.push_back(v + d);
    for (int i = 0; i < 3000; ++i) probes.push_back(i % 3 ? rng() : (rng() & 0xffffffffULL));
    const int ioctl = nr(SCMP_ARCH_X86_64, "ioctl");
    for (auto v : probes) ASSERT_EQ(call(*prog, AUDIT_ARCH_X86_64, ioctl, 0, v), expected(v)) << std::hex << v;
    // i386 passes 32 bits: the same rule on the low 32 bits of each value.
    const int ioctl32 = nr(SCMP_ARCH_X86, "ioctl");
    for (auto v : probes) {
      const std::uint64_t low = v & 0xffffffffULL;
      std::uint32_t want = expected(low);
      if (width == 64 && kind != 2) {
        const bool listed = std::find(values.begin(), values.end(), low) != values.end();
        want = (kind == 0 ? listed : !listed) ? k_allow : errno_ret(EPERM);
      }
      ASSERT_EQ(call(*prog, AUDIT_ARCH_I386, ioctl32, 0, low), want) << std::hex << low;
    }
  }
}

TEST(SeccompCompile, TheInterpreterRefusesBrokenPrograms) {
  struct seccomp_data d {};
  EXPECT_EQ(run_program({}, d), SECCOMP_RET_KILL_PROCESS);
  EXPECT_EQ(run_program({BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 64)}, d), SECCOMP_RET_KILL_PROCESS);
  EXPECT_EQ(run_program({BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)}, d), SECCOMP_RET_ALLOW);
}

}  // namespace
}  // namespace chrootctl::seccomp
