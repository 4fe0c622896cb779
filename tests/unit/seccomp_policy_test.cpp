// System-call policies: the built-in ones, the site's additions, and every mistake reported at
// FILE:LINE:COL with the line, a caret and a suggestion (exact messages).
#include <gtest/gtest.h>

#include <cerrno>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/seccomp/policy.hpp"
#include "chrootctl/seccomp/source.hpp"
#include "test_support.hpp"

namespace chrootctl::seccomp {
namespace {

PolicySource file_source(const std::string& text, const std::string& name = "site.toml") { return PolicySource{name, {{name, text, "", false}}}; }

std::string error_of(const PolicySource& src) {
  auto p = parse_policy(src);
  if (p) return "(no error)";
  return p.error().what();
}

Policy builtin(const std::string& name) {
  auto src = load_source(name, Settings{});
  EXPECT_TRUE(src && *src);
  auto p = parse_policy(**src);
  EXPECT_TRUE(p) << p.error().what();
  return p ? *p : Policy{};
}

TEST(SeccompPolicy, TheDefaultPolicyDeniesWhatTheIssueLists) {
  const Policy p = builtin("default");
  EXPECT_EQ(p.errno_value, EPERM);
  EXPECT_EQ(p.unknown_errno, ENOSYS);
  EXPECT_FALSE(p.allow_user_namespaces);
  for (const char* denied : {"add_key",
                             "keyctl",
                             "request_key",
                             "bpf",
                             "perf_event_open",
                             "userfaultfd",
                             "io_uring_setup",
                             "io_uring_enter",
                             "io_uring_register",
                             "kexec_load",
                             "kexec_file_load",
                             "init_module",
                             "finit_module",
                             "delete_module",
                             "open_by_handle_at",
                             "mount",
                             "umount",
                             "umount2",
                             "pivot_root",
                             "move_mount",
                             "open_tree",
                             "fsopen",
                             "fsconfig",
                             "fsmount",
                             "fspick",
                             "mount_setattr",
                             "setns",
                             "acct",
                             "swapon",
                             "swapoff",
                             "reboot",
                             "settimeofday",
                             "clock_settime",
                             "adjtimex",
                             "syslog",
                             "quotactl",
                             "iopl",
                             "ioperm",
                             "lookup_dcookie",
                             "vhangup",
                             "uselib"}) {
    SCOPED_TRACE(denied);
    ASSERT_EQ(p.calls.count(denied), 1u);
    EXPECT_EQ(p.calls.at(denied).kind, Disposition::Kind::deny);
    EXPECT_FALSE(p.calls.at(denied).errno_value.has_value()) << "listed denials get the policy's errno";
  }
  EXPECT_EQ(p.calls.at("clone3").kind, Disposition::Kind::deny);
  EXPECT_EQ(p.calls.at("clone3").errno_value, ENOSYS);
  EXPECT_EQ(p.calls.at("clone").kind, Disposition::Kind::rule);
  EXPECT_EQ(p.calls.at("clone").rule.mask, 0x7E020000u);
  EXPECT_EQ(p.calls.at("unshare").rule.mask, 0x7E020080u);
  EXPECT_EQ(p.calls.at("personality").rule.values, (std::vector<std::uint64_t>{0, 8, 0x20000, 0x20008, 0xffffffff}));
  const ArgRule& ioctl = p.calls.at("ioctl").rule;
  EXPECT_EQ(ioctl.kind, ArgRule::Kind::deny_values);
  EXPECT_EQ(ioctl.arg, 1u);
  EXPECT_EQ(ioctl.width, 32u);
  EXPECT_EQ(ioctl.values, (std::vector<std::uint64_t>{0x5412, 0x541C}));
  EXPECT_EQ(p.calls.at("socket").rule.errno_value, EAFNOSUPPORT);
  for (const char* allowed : {"read", "execve", "mmap2", "socketcall", "ptrace", "mbind", "chown", "mknod", "setxattr"}) {
    SCOPED_TRACE(allowed);
    if (std::string(allowed) == "socketcall") {
      EXPECT_EQ(p.calls.count(allowed), 0u) << "socketcall is allowed operation by operation, through the socket calls";
      continue;
    }
    ASSERT_EQ(p.calls.count(allowed), 1u);
    EXPECT_EQ(p.calls.at(allowed).kind, Disposition::Kind::allow);
  }
  EXPECT_EQ(p.calls.at("mount").origin.rfind("built-in policy 'default':", 0), 0u) << p.calls.at("mount").origin;
}

TEST(SeccompPolicy, TheBuildPoliciesAreTheJobPolicyWithWhatBuildsNeed) {
  const Policy job = builtin("default");
  const Policy build = builtin("build");
  const Policy host = builtin("build-host");
  EXPECT_EQ(job.calls.at("chroot").kind, Disposition::Kind::deny);
  EXPECT_EQ(build.calls.at("chroot").kind, Disposition::Kind::allow);
  EXPECT_EQ(build.calls.at("mount").kind, Disposition::Kind::deny);
  EXPECT_EQ(build.calls.at("keyctl").kind, Disposition::Kind::deny);
  for (const auto& [name, d] : job.calls) {
    if (name == "chroot") continue;
    EXPECT_EQ(build.calls.at(name).kind, d.kind) << name;
  }
  EXPECT_TRUE(host.allow_user_namespaces);
  for (const char* opened : {"mount", "umount2", "pivot_root", "setns", "unshare", "clone", "chroot"})
    EXPECT_EQ(host.calls.at(opened).kind, Disposition::Kind::allow) << opened;
  for (const char* still : {"keyctl", "bpf", "init_module", "kexec_load", "io_uring_setup", "reboot", "settimeofday"})
    EXPECT_EQ(host.calls.at(still).kind, Disposition::Kind::deny) << still;
  EXPECT_EQ(host.calls.at("clone3").errno_value, ENOSYS);
}

TEST(SeccompPolicy, EveryGroupMemberIsASystemCallLibseccompKnows) {
  for (const auto& g : groups())
    for (auto m : g.members) EXPECT_TRUE(is_known_syscall(m)) << g.name << ": " << m;
  EXPECT_TRUE(is_known_syscall("socketcall"));
  EXPECT_TRUE(is_known_syscall("recv")) << "an i386 socketcall operation with no call of its own";
  EXPECT_FALSE(is_known_syscall("bogus"));
}

TEST(SeccompPolicy, AnUnknownSystemCallIsReportedWithASuggestion) {
  EXPECT_EQ(error_of(file_source("allow = [\"read\", \"opn\"]\n")),
            "site.toml:1:18: error: unknown system call 'opn' (did you mean 'open'?)\n"
            " 1 | allow = [\"read\", \"opn\"]\n"
            "   |                  ^");
}

TEST(SeccompPolicy, AnUnknownGroupErrnoOrKeyIsReportedWithASuggestion) {
  EXPECT_EQ(error_of(file_source("deny = [\"@mout\"]\n")),
            "site.toml:1:9: error: unknown group '@mout' (did you mean '@mount'?)\n"
            " 1 | deny = [\"@mout\"]\n"
            "   |         ^");
  EXPECT_EQ(error_of(file_source("errno = \"EPRM\"\n")),
            "site.toml:1:9: error: unknown errno 'EPRM' (did you mean 'EPERM'?)\n"
            " 1 | errno = \"EPRM\"\n"
            "   |         ^");
  EXPECT_EQ(error_of(file_source("alow = [\"read\"]\n")),
            "site.toml:1:1: error: unknown key 'alow' (did you mean 'allow'?)\n"
            " 1 | alow = [\"read\"]\n"
            "   | ^");
}

TEST(SeccompPolicy, EveryMistakeOfAFileIsReportedAtOnce) {
  EXPECT_EQ(error_of(file_source("allow = [\"ptrace\", 7]\n"
                                 "deny = [\"ptrace\"]\n"
                                 "unknown_errno = \"ENOSYSS\"\n")),
            "site.toml:1:20: error: every item of 'allow' must be a string (a system call or an @group)\n"
            " 1 | allow = [\"ptrace\", 7]\n"
            "   |                    ^\n"
            "site.toml:2:9: error: 'ptrace' is in deny and in allow (a call may be named once per policy file)\n"
            " 2 | deny = [\"ptrace\"]\n"
            "   |         ^\n"
            "site.toml:3:17: error: unknown errno 'ENOSYSS' (did you mean 'ENOSYS'?)\n"
            " 3 | unknown_errno = \"ENOSYSS\"\n"
            "   |                 ^\n"
            "3 errors in site.toml");
}

TEST(SeccompPolicy, RuleMistakes) {
  EXPECT_EQ(error_of(file_source("[[rule]]\nsyscalls = [\"ioctl\"]\narg = 7\nwidth = 16\ndeny_values = [1]\n")),
            "site.toml:3:7: error: 'rule.arg' must be 0 to 5 (the argument's position)\n"
            " 3 | arg = 7\n"
            "   |       ^\n"
            "site.toml:4:9: error: 'rule.width' must be 32 or 64\n"
            " 4 | width = 16\n"
            "   |         ^\n"
            "2 errors in site.toml");
  EXPECT_EQ(error_of(file_source("[[rule]]\nsyscalls = [\"ioctl\"]\narg = 1\nwidth = 32\ndeny_values = [0x100005412]\n")),
            "site.toml:5:16: error: every item of 'rule.deny_values' 0x100005412 does not fit in 32 bits (width = 32)\n"
            " 5 | deny_values = [0x100005412]\n"
            "   |                ^");
  EXPECT_EQ(error_of(file_source("[[rule]]\nsyscalls = [\"@mount\"]\narg = 0\nallow_values = [1]\ndeny_values = [2]\n")),
            "site.toml:1:1: error: a [[rule]] needs exactly one of 'allow_values', 'deny_values' and 'allow_if_clear'\n"
            " 1 | [[rule]]\n"
            "   | ^\n"
            "site.toml:2:13: error: a [[rule]] names system calls, not groups ('@mount')\n"
            " 2 | syscalls = [\"@mount\"]\n"
            "   |             ^\n"
            "2 errors in site.toml");
  EXPECT_EQ(error_of(file_source("allow = [\"ioctl\"]\n[[rule]]\nsyscalls = [\"ioctl\"]\narg = 1\ndeny_values = [1]\n")),
            "site.toml:3:13: error: 'ioctl' is in [[rule]] and in allow (a call may be named once per policy file)\n"
            " 3 | syscalls = [\"ioctl\"]\n"
            "   |             ^");
  EXPECT_EQ(error_of(file_source("base = \"strict\"\n")),
            "site.toml:1:8: error: 'base' must be a built-in policy (\"default\", \"build\" or \"build-host\"), not 'strict'\n"
            " 1 | base = \"strict\"\n"
            "   |        ^");
}

// Each value of a rule compiles to up to one comparison per bit, and libseccomp's time grows with
// the square of the comparisons: a hostile review's 90,000 values ran for minutes. Bounded per
// rule and per policy (the built-in policies list 11 in all).
TEST(SeccompPolicy, ArgumentRulesListABoundedNumberOfValues) {
  auto values = [](std::size_t n) {
    std::string v;
    for (std::size_t i = 0; i < n; ++i) v += (i ? ", " : "") + std::to_string(i);
    return v;
  };
  auto rule = [&](const std::string& call, std::size_t n) {
    return str("[[rule]]\nsyscalls = [\"", call, "\"]\narg = 1\ndeny_values = [", values(n), "]\n");
  };
  EXPECT_EQ(error_of(file_source(rule("ioctl", k_max_rule_values))), "(no error)");
  const std::string over = error_of(file_source(rule("ioctl", k_max_rule_values + 1)));
  EXPECT_EQ(over.substr(0, over.find('\n')), "site.toml:4:15: error: 'rule.deny_values' lists 65 values; at most 64");
  std::string four;
  for (const char* call : {"read", "write", "lseek", "fcntl"}) four += rule(call, 64);
  EXPECT_EQ(error_of(file_source(four)), "(no error)");
  EXPECT_EQ(error_of(file_source("base = \"default\"\n" + four)),
            "policy 'site.toml': its argument rules list 267 values in all (a rule's values count once for each call it names); at most 256");
}

TEST(SeccompPolicy, AFileOnTheDefaultPolicyOverridesItCallByCall) {
  auto p =
      parse_policy(file_source("base = \"default\"\n"
                               "errno = \"EACCES\"\n"
                               "allow = [\"perf_event_open\"]\n"
                               "deny = [\"ptrace\", \"process_vm_readv\"]\n"
                               "deny_with = { userfaultfd = \"ENOSYS\" }\n"
                               "[[rule]]\n"
                               "syscalls = [\"prctl\"]\n"
                               "arg = 0\n"
                               "width = 32\n"
                               "deny_values = [22]\n"));
  ASSERT_TRUE(p) << p.error().what();
  EXPECT_EQ(p->errno_value, EACCES);
  EXPECT_EQ(p->calls.at("perf_event_open").kind, Disposition::Kind::allow);
  EXPECT_EQ(p->calls.at("perf_event_open").origin, "site.toml:3:10");
  EXPECT_EQ(p->calls.at("ptrace").kind, Disposition::Kind::deny);
  EXPECT_EQ(p->calls.at("userfaultfd").errno_value, ENOSYS);
  EXPECT_EQ(p->calls.at("prctl").kind, Disposition::Kind::rule);
  EXPECT_EQ(p->calls.at("prctl").rule.values, std::vector<std::uint64_t>{22});
  EXPECT_EQ(p->calls.at("mount").kind, Disposition::Kind::deny) << "the base's other decisions stay";
  EXPECT_EQ(p->calls.at("read").kind, Disposition::Kind::allow);
  EXPECT_EQ(p->calls.at("ioctl").kind, Disposition::Kind::rule);
}

TEST(SeccompPolicy, ACallInAllowAndInAGroupOfDenyIsAnError) {
  EXPECT_EQ(error_of(file_source("allow = [\"ptrace\"]\ndeny = [\"@debug\"]\n")),
            "site.toml:2:9: error: 'ptrace' is in deny and in allow (a call may be named once per policy file)\n"
            " 2 | deny = [\"@debug\"]\n"
            "   |         ^");
}

TEST(SeccompPolicy, TheSitesAdditionsApplyLastAndAreReportedInTheConfiguration) {
  PolicySource src{"default",
                   {{builtin_display_name("default"), std::string(builtin_policy_text("default")), "", false},
                    {"/etc/chrootctl/config.toml",
                     "store = \"/srv\"\n[seccomp]\nallow = [\"perf_event_open\"]\ndeny = [\"ptrace\", \"process_vm_readv\"]\n"
                     "errno = \"EACCES\"\nallow_user_namespaces = true\n",
                     "", true}}};
  auto p = parse_policy(src);
  ASSERT_TRUE(p) << p.error().what();
  EXPECT_EQ(p->errno_value, EACCES);
  EXPECT_EQ(p->calls.at("perf_event_open").kind, Disposition::Kind::allow);
  EXPECT_EQ(p->calls.at("ptrace").kind, Disposition::Kind::deny);
  EXPECT_EQ(p->calls.at("ptrace").origin, "/etc/chrootctl/config.toml:4:9");
  EXPECT_TRUE(p->allow_user_namespaces);
  EXPECT_EQ(p->calls.at("mount").kind, Disposition::Kind::allow);
  EXPECT_EQ(p->calls.at("setns").kind, Disposition::Kind::allow);
  EXPECT_EQ(p->calls.at("clone").kind, Disposition::Kind::allow);
  EXPECT_EQ(p->calls.at("unshare").kind, Disposition::Kind::allow);
  EXPECT_EQ(p->calls.at("keyctl").kind, Disposition::Kind::deny) << "only namespaces and mounts open up";

  src.documents[1].text = "[seccomp]\npolicy = \"default\"\ndeny = [\"ptrase\"]\n";
  EXPECT_EQ(error_of(src),
            "/etc/chrootctl/config.toml:3:9: error: unknown system call 'ptrase' (did you mean 'ptrace'?)\n"
            " 3 | deny = [\"ptrase\"]\n"
            "   |         ^");
}

TEST(SeccompPolicy, ErrnoNames) {
  EXPECT_EQ(errno_by_name("EPERM"), EPERM);
  EXPECT_EQ(errno_by_name("ENOSYS"), ENOSYS);
  EXPECT_EQ(errno_by_name("EWHATEVER"), std::nullopt);
  EXPECT_EQ(errno_label(EAFNOSUPPORT), "EAFNOSUPPORT");
}

}  // namespace
}  // namespace chrootctl::seccomp
