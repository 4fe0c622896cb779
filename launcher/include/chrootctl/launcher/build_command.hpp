#pragma once
/// Running a command inside a tree that is being built: the builder's [packages] and [run]
/// steps. Unlike a job launch, the tree is writable and the command runs as root with its
/// capabilities, because recipes are written by the site's administrators and package managers
/// need them. It still runs in private mount, PID, IPC and UTS namespaces with a fresh /proc and
/// a minimal /dev, so nothing it mounts or starts outlives it, and nothing is ever mounted in the
/// host's mount namespace.

#include <string>
#include <utility>
#include <vector>

#include "chrootctl/common/error.hpp"
#include "chrootctl/launcher/launch.hpp"

namespace chrootctl::launcher {

struct BuildCommand {
  std::string root;                                      ///< the tree being built (host path, a directory)
  std::vector<std::string> argv;                         ///< argv[0] is looked up inside the tree with PATH from `env`
  std::vector<std::pair<std::string, std::string>> env;  ///< the command's whole environment
  /// Host paths bound read-only into the tree (host path, path inside the tree), e.g.
  /// /etc/resolv.conf for package downloads. Targets are resolved inside the tree, never
  /// through a symlink that leaves it; a missing target file is created as an empty mount point.
  std::vector<std::pair<std::string, std::string>> binds;
  bool network = true;  ///< share the host's network namespace (package downloads)
  int stdout_fd = 1;    ///< where the command's output goes (e.g. build.log)
  int stderr_fd = 2;
  /// The build policy's system-call filter (compiled by the builder), installed last, just
  /// before the command's exec. Empty program: none.
  SeccompPlan seccomp;
};

/// Runs `cmd` and returns its exit status: the command's code, or 128+signal. An error means the
/// command could not be started (the tree, a bind or a namespace could not be set up).
Result<int> run_build_command(const BuildCommand& cmd);

}  // namespace chrootctl::launcher
