#pragma once
// Helpers shared by the unit, integration and privileged test binaries.

#include <gtest/gtest.h>
#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

namespace chrootctl::test {

/// A fresh directory per test (mode 0700 under $TMPDIR or /tmp), removed afterwards.
class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  std::string path(const std::string& rel) const { return m_dir + "/" + rel; }
  std::string m_dir;
};

struct CommandResult {
  int exit_code = -1;  ///< exit status, or 128+signal
  std::string out;
  std::string err;
};

/// Runs argv (no shell), feeding `input` on stdin; captures stdout and stderr.
CommandResult run(const std::vector<std::string>& argv, const std::string& input = {}, const std::map<std::string, std::string>& env = {});
/// Runs the chrootctl binary built with the tests.
CommandResult run_chrootctl(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {});
/// Runs a shell command line with /bin/sh -c.
CommandResult sh(const std::string& command);

void write_file(const std::string& path, const std::string& content, mode_t mode = 0644);
std::string read_file(const std::string& path);
void mkdirs(const std::string& path, mode_t mode = 0755);

/// Why the privileged operation `what` ("root", "mount-ns", "user-ns", "pid-ns", "cgroup-v1",
/// "cgroup" (job cgroups with limits, v1 or v2), "mknod") cannot run here, or "" if it can
/// (probed in a forked child).
std::string privilege_missing(const std::string& what);

/// Where the cgroup2 hierarchy is mounted ("" if nowhere).
std::string cgroup2_mount();
/// The cgroup version the launcher gives jobs here, by its rule: "v2" when the cgroup2 hierarchy
/// offers the memory controller, else "v1" when a v1 memory hierarchy is mounted, else "".
/// (One test binary then checks v1 on a v1 host and v2 on a v2 host, such as the VM stage's.)
std::string cgroup_version();

/// True when CHROOTCTL_REQUIRE_PRIVILEGED=1: a skip for missing privilege becomes a failure.
bool privileged_required();

/// Path of the checkout (for recipes and scripts).
std::string source_dir();

}  // namespace chrootctl::test

/// Skips the test (or fails it under CHROOTCTL_REQUIRE_PRIVILEGED=1) when `what` is not possible.
#define CHROOTCTL_REQUIRE_PRIVILEGE(what)                                          \
  do {                                                                             \
    const std::string chrootctl_why_ = ::chrootctl::test::privilege_missing(what); \
    if (!chrootctl_why_.empty()) {                                                 \
      if (::chrootctl::test::privileged_required()) FAIL() << chrootctl_why_;      \
      GTEST_SKIP() << chrootctl_why_;                                              \
    }                                                                              \
  } while (0)

/// Skips (or fails under CHROOTCTL_REQUIRE_PRIVILEGED=1) when a host tool is missing.
#define CHROOTCTL_REQUIRE_TOOL(tool)                                                    \
  do {                                                                                  \
    if (::chrootctl::test::sh("command -v " tool " >/dev/null").exit_code != 0) {       \
      if (::chrootctl::test::privileged_required()) FAIL() << tool " is not installed"; \
      GTEST_SKIP() << tool " is not installed";                                         \
    }                                                                                   \
  } while (0)
