#include "seccomp_choice.hpp"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/seccomp/source.hpp"
#include "cli.hpp"

extern char** environ;

namespace chrootctl::cli {

namespace {

// `chrootctl-full seccomp compile`, waited for. Its errors (with FILE:LINE:COL) go to our stderr.
Status run_compiler(const std::string& policy, const std::string& digest, const std::string& dir) {
  const std::string full = full_tool_path();
  if (full.empty())
    return fail(Errc::not_found, str("the system-call policy ", quote(policy),
                                     " is not compiled yet, and chrootctl-full, which compiles it, is not installed next to ", own_directory()));
  std::vector<std::string> args = {"chrootctl", "seccomp", "compile", "--policy", policy, "--expect-digest", digest, "--cache-dir", dir, "--quiet"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (const int rc = ::posix_spawn(&pid, full.c_str(), nullptr, nullptr, argv.data(), environ); rc != 0)
    return fail_errno(str("posix_spawn(", quote(full), " seccomp compile)"), rc);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return fail_errno(str("waitpid(", pid, ")"), errno);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return fail(Errc::parse, str("the system-call policy ", quote(policy), " could not be compiled (",
                                 WIFEXITED(status) ? str("chrootctl-full seccomp compile exited with status ", WEXITSTATUS(status))
                                                   : str("chrootctl-full seccomp compile was killed by signal ", WTERMSIG(status)),
                                 ")"));
  return {};
}

}  // namespace

Result<JobSeccomp> prepare_job_seccomp(const Settings& settings, const std::optional<std::string>& requested, const std::string& image_policy) {
  std::optional<std::string> asked = requested;
  if (asked && *asked == "none" && ::getuid() != 0)
    return fail(Errc::permission, "--seccomp none: only root may run a job without a system-call filter");
  if (asked && asked->empty()) return fail(Errc::invalid_argument, "--seccomp: expected FILE, default or none");
  if (asked && *asked != "none" && *asked != "default" && (*asked)[0] != '/') {
    // A policy file named relative to the caller's directory.
    char cwd[4096];
    if (!::getcwd(cwd, sizeof cwd)) return fail_errno("getcwd()", errno);
    asked = str(cwd, std::string_view(cwd) == "/" ? "" : "/", *asked);
  }
  const std::string choice = seccomp::choose_job_policy(asked, image_policy, settings);
  JobSeccomp out;
  auto source = TRY(seccomp::load_source(choice, settings));
  if (!source) return out;  // "none"
  const std::string digest = seccomp::policy_digest(*source);
  std::string dir = seccomp::cache_dir();
  auto found = seccomp::find_cached_program(dir, digest);
  if (!found) {
    if (dir.empty()) {
      // No state directory (a user without $XDG_RUNTIME_DIR): a private cache for this launch.
      out.scratch.emplace(TRY(TempDir::create("/tmp/chrootctl-seccomp.")));
      dir = out.scratch->path();
    }
    TRY(run_compiler(choice, digest, dir));
    found = seccomp::program_path(dir, digest);
  }
  out.plan.policy = choice;
  out.plan.digest = digest;
  out.plan.program = *found;
  return out;
}

}  // namespace chrootctl::cli
