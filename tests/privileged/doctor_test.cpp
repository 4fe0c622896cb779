// chrootctl doctor on the machine it runs on: here (cgroup v1 controllers, Linux 6.18) and in
// the VM stage (Debian 12's 6.1 with cgroup v2), whose suites.txt selects Doctor*. The report
// validates against docs/doctor.schema.json and says what the launcher would do on each.
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>

#include <cstdlib>

#include "chrootctl/common/strings.hpp"
#include "launcher_fixture.hpp"
#include "test_support.hpp"

namespace chrootctl {
namespace {

// Checks a doctor --json report (on stdin) against the schema, then prints one line per check
// "ID VERDICT REQUIRED" and the facts the tests look at, for the C++ side to compare.
constexpr const char* k_check = R"PY(
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
doc = json.load(sys.stdin)
jsonschema.Draft202012Validator(schema).validate(doc)
for c in doc["checks"]:
    print(c["id"], c["verdict"], "required" if c["required"] else "optional")
facts = {c["id"]: c["facts"] for c in doc["checks"]}
print("cgroup-version", facts["cgroups"]["version"])
print("kernel", facts["kernel"]["release"])
print("seccomp-digest", facts["seccomp"]["digest"])
print("user-job", facts["idmapped-mounts"]["user_job"])
print("root-job", facts["idmapped-mounts"]["root_job"])
s = facts["idmapped-mounts"]["sandbox"]
print("sandbox", s["type"] if s else "none")
print("overlaps", len(facts["job-ids"]["overlaps"]))
print("exit", doc["exit_status"], ",".join(doc["failed_required"]) or "-")
)PY";

class DoctorHost : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    CHROOTCTL_REQUIRE_PRIVILEGE("root");
    CHROOTCTL_REQUIRE_PRIVILEGE("user-ns");
    CHROOTCTL_REQUIRE_TOOL("python3");
    if (test::sh("python3 -c 'import jsonschema'").exit_code != 0) {
      if (test::privileged_required()) FAIL() << "python3's jsonschema module is missing (python3-jsonschema)";
      GTEST_SKIP() << "python3's jsonschema module is missing (python3-jsonschema)";
    }
    ASSERT_EQ(::chmod(m_dir.c_str(), 0755), 0);
    store = path("store");
    test::mkdirs(store);
    config = path("config.toml");
    test::write_file(config, str("store = \"", store, "\"\n[accounting]\npath = \"", path("log/launches.jsonl"), "\"\n"));
  }
  // doctor --json ARGS, checked against the schema: the lines k_check prints, and doctor's own
  // exit status, which must be the one the report states.
  std::map<std::string, std::string> doctor(const std::vector<std::string>& args, int* status = nullptr, const std::string& prefix = {}) {
    std::string cmd = prefix + " env CHROOTCTL_CONFIG='" + config + "' '" + CHROOTCTL_BIN + "' doctor --json";
    for (const auto& a : args) cmd += " '" + a + "'";
    auto r = test::sh(cmd + " > '" + path("doctor.json") + "'");
    if (status) *status = r.exit_code;
    EXPECT_TRUE(r.exit_code == 0 || r.exit_code == 1) << r.exit_code << r.err;
    test::write_file(path("check.py"), k_check);
    auto v = test::sh("python3 '" + path("check.py") + "' '" + test::source_dir() + "/docs/doctor.schema.json' < '" + path("doctor.json") + "'");
    EXPECT_EQ(v.exit_code, 0) << v.err << test::read_file(path("doctor.json"));
    std::map<std::string, std::string> out;
    for (const auto& line : split(v.out, '\n')) {
      const auto space = line.find(' ');
      if (space != std::string::npos) out[line.substr(0, space)] = line.substr(space + 1);
    }
    const auto exit = out["exit"];
    EXPECT_EQ(std::to_string(r.exit_code), exit.substr(0, exit.find(' '))) << exit;
    return out;
  }
  std::string store, config;
};

TEST_F(DoctorHost, TheReportValidatesAndSaysWhatALaunchWouldDoHere) {
  auto d = doctor({});
  // The cgroup version the launcher uses on this machine: v1 on the development machine,
  // v2 in the VM stage.
  ASSERT_FALSE(test::cgroup_version().empty());
  EXPECT_EQ(d["cgroup-version"], test::cgroup_version());
  // The VM stage's guest says which it boots with (tests/vm/guest-init.sh): v2.
  if (const char* expected = std::getenv("CHROOTCTL_TEST_EXPECT_CGROUP")) {
    EXPECT_EQ(d["cgroup-version"], expected);
  }
  EXPECT_EQ(d["cgroups"], "ok required");
  struct utsname u {};
  ASSERT_EQ(::uname(&u), 0);
  EXPECT_EQ(d["kernel"], u.release);
  EXPECT_EQ(d["user-namespaces"], "ok required");
  // 6.1 and 6.18 have every call the launcher prefers; the ext4 store idmaps on both.
  for (const char* call : {"openat2", "mount_setattr", "clone3", "close_range"}) EXPECT_EQ(d[call], "ok optional") << call;
  EXPECT_EQ(d["user-job"], "mapped");
  EXPECT_EQ(d["root-job"], "mapped");
  EXPECT_EQ(d["seccomp"], "ok required");
  auto show = test::run_chrootctl({"seccomp", "show", "--json"}, {{"CHROOTCTL_CONFIG", config}});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find("\"digest\": \"" + d["seccomp-digest"] + "\""), std::string::npos) << show.out;
  EXPECT_EQ(d["store"], "ok required");
  EXPECT_EQ(d["job-ids"], "ok required");
  EXPECT_EQ(d["overlaps"], "0");
  EXPECT_EQ(d["config"], "ok required");
  // Nothing the configuration asks for is missing; what is optional may be (no Slurm here).
  EXPECT_EQ(d["exit"], "0 -");
}

TEST_F(DoctorHost, ASandboxOnTmpfsIdmapsFromLinux6_3) {
  // A tmpfs in a mount namespace of doctor's own: root jobs need their sandbox idmapped, which
  // tmpfs allows from 6.3 (6.1 refuses, 6.18 maps).
  const std::string sandbox = path("tmpfs");
  test::mkdirs(sandbox);
  auto d = doctor({"--sandbox", sandbox}, nullptr,
                  "unshare -m --propagation private sh -c \"mount -t tmpfs none '" + sandbox + "' && exec \\\"\\$0\\\" \\\"\\$@\\\"\"");
  EXPECT_EQ(d["sandbox"], "tmpfs");
  struct utsname u {};
  ASSERT_EQ(::uname(&u), 0);
  int major = 0, minor = 0;
  ASSERT_EQ(std::sscanf(u.release, "%d.%d", &major, &minor), 2);
  const bool tmpfs_idmaps = major > 6 || (major == 6 && minor >= 3);
  EXPECT_EQ(d["root-job"], tmpfs_idmaps ? "mapped" : "refused");
  EXPECT_EQ(d["user-job"], "mapped");
  EXPECT_EQ(d["idmapped-mounts"], tmpfs_idmaps ? "ok optional" : "degraded optional");
  EXPECT_TRUE(test::launcher::host_mounts_mentioning(sandbox).empty());
}

TEST_F(DoctorHost, AJobIdRangeSomeoneHasIsAnError) {
  // /etc/subuid with a range inside the job ids, seen only by doctor (a private bind mount
  // over the host's file, which Debian's passwd package makes).
  if (::access("/etc/subuid", F_OK) != 0) {
    if (test::privileged_required()) FAIL() << "/etc/subuid does not exist";
    GTEST_SKIP() << "/etc/subuid does not exist";
  }
  test::write_file(path("subuid"), "someone:1879100000:65536\n");
  const std::string prefix =
      "unshare -m --propagation private sh -c \"mount --bind '" + path("subuid") + "' /etc/subuid && exec \\\"\\$0\\\" \\\"\\$@\\\"\"";
  int status = 0;
  auto d = doctor({}, &status, prefix);
  EXPECT_EQ(d["job-ids"], "error required");
  EXPECT_EQ(d["overlaps"], "1");
  EXPECT_EQ(status, 1);
  EXPECT_EQ(d["exit"], "1 job-ids");
  // Moved out of the way in the configuration: fine again.
  // (Before [accounting]: a key after it would be one of that table's, which it refuses.)
  test::write_file(config, "job_ids = { start = 2013265920, count = 65536 }\n" + test::read_file(config));
  d = doctor({}, &status, prefix);
  EXPECT_EQ(d["config"], "ok required");
  EXPECT_EQ(d["job-ids"], "ok required");
  EXPECT_EQ(d["overlaps"], "0");
  EXPECT_EQ(status, 0);
}

TEST_F(DoctorHost, AConfigurationThatCannotBeReadFailsButTheRestIsReported) {
  test::write_file(config, "stroe = 1\n");
  int status = 0;
  auto d = doctor({}, &status);
  EXPECT_EQ(d["config"], "error required");
  EXPECT_EQ(d["cgroups"], "ok required");
  EXPECT_EQ(status, 1);
  EXPECT_EQ(d["exit"], "1 config");
  auto text = test::run_chrootctl({"doctor"}, {{"CHROOTCTL_CONFIG", config}});
  EXPECT_EQ(text.exit_code, 1);
  EXPECT_NE(text.out.find("error     config           cannot read " + config + "\n"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("\ndoctor: "), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("; not available as the configuration asks: config\n"), std::string::npos) << text.out;
}

TEST_F(DoctorHost, PolicyNoneIsDegradedAndSlurmsLineIsJudged) {
  test::write_file(config, test::read_file(config) + "[seccomp]\npolicy = \"none\"\n");
  test::write_file(path("plugstack.conf"), "optional " + path("nowhere/chrootctl_spank.so") + " chrootctl=" + CHROOTCTL_BIN + "\n");
  int status = 0;
  auto d = doctor({"--slurm-plugstack", path("plugstack.conf"), "--condor-config", path("no-condor")}, &status);
  EXPECT_EQ(d["seccomp"], "degraded optional");
  EXPECT_EQ(d["slurm"], "error optional");  // the plugin file is missing
  EXPECT_EQ(d["htcondor"], "missing optional");
  EXPECT_EQ(status, 0);
  auto text = test::run_chrootctl({"doctor", "--slurm-plugstack", path("plugstack.conf")}, {{"CHROOTCTL_CONFIG", config}});
  EXPECT_NE(text.out.find("error     slurm            optional " + path("nowhere/chrootctl_spank.so") + " (" + path("plugstack.conf") +
                          ":1)\n                           " + path("plugstack.conf") + ":1: the plugin " + path("nowhere/chrootctl_spank.so") +
                          " does not exist\n"),
            std::string::npos)
      << text.out;
}

// Doctor under the seccomp filter that makes chrootctl see Linux 4.18's system calls (as in
// LauncherOldKernel): each fallback is named, and nothing the configuration asks for fails.
TEST_F(DoctorHost, OnAnOldKernelTheFallbacksAreNamed) {
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const unsigned k_missing[] = {437, 442, 435, 436, 428, 429};  // openat2 mount_setattr clone3 close_range open_tree move_mount
    std::vector<sock_filter> prog{
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
    };
    for (unsigned nr : k_missing) {
      prog.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1));
      prog.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)));
    }
    prog.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
    struct sock_fprog fprog {
      static_cast<unsigned short>(prog.size()), prog.data()
    };
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog) != 0) ::_exit(90);
    ::_exit(test::sh("CHROOTCTL_CONFIG='" + config + "' '" + CHROOTCTL_BIN + "' doctor > '" + path("old.txt") + "'").exit_code);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  const std::string out = test::read_file(path("old.txt"));
  EXPECT_EQ(WEXITSTATUS(status), 0) << out;
  EXPECT_NE(out.find("degraded  openat2          openat2 is not available (Linux 5.6 or later)\n"
                     "                           mount targets are resolved by a component-by-component walk that refuses every symlink\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("degraded  mount_setattr    mount_setattr is not available (Linux 5.12 or later)\n"), std::string::npos) << out;
  EXPECT_NE(out.find("degraded  clone3           clone3 is not available (Linux 5.3 or later)\n"), std::string::npos) << out;
  EXPECT_NE(out.find("degraded  close_range      close_range is not available (Linux 5.9 or later)\n"), std::string::npos) << out;
  EXPECT_NE(out.find(": a user's job identity (own ids only), a job as root refused\n"), std::string::npos) << out;
  EXPECT_NE(out.find("degraded  idmapped-mounts  store " + store + " on "), std::string::npos) << out;
}

}  // namespace
}  // namespace chrootctl
