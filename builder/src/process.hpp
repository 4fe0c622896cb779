#pragma once
// Running host tools (mmdebstrap, debootstrap, dnf, rpm) for the builder: output goes to the
// build log and, line by line, to a status callback; the tool dies with the builder.

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "chrootctl/common/error.hpp"
#include "chrootctl/launcher/seccomp_program.hpp"

namespace chrootctl::builder::detail {

struct HostCommand {
  std::vector<std::string> argv;                         ///< argv[0] looked up in PATH from `env`
  std::vector<std::pair<std::string, std::string>> env;  ///< the whole environment
  /// Installed in the child just before its exec (it keeps root's capabilities, so no
  /// no_new_privs is needed); null: none.
  const launcher::SeccompProgram* filter = nullptr;
};

/// Runs `cmd` with stdin from /dev/null and stdout+stderr copied to `log_fd` and, line by
/// line, to `on_line`. Returns the exit code, or 128+signal.
Result<int> run_host(const HostCommand& cmd, int log_fd, const std::function<void(const std::string&)>& on_line);

/// Runs `argv` and returns its stdout (stderr discarded); error if it does not exit 0.
Result<std::string> capture(const std::vector<std::string>& argv);

/// The absolute path of `tool` in the builder's PATH, or "".
std::string find_in_path(const std::string& tool);

/// The environment every host tool and build command gets (PATH, LANG, HOME, TMPDIR, plus extras).
std::vector<std::pair<std::string, std::string>> base_env(std::int64_t source_date_epoch);

/// "a 'b c' d" for logs.
std::string render_argv(const std::vector<std::string>& argv);

}  // namespace chrootctl::builder::detail
