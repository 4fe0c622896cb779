#pragma once
// The one place the builder runs a command inside the tree being built.

#include <string>
#include <utility>
#include <vector>

#include "chrootctl/common/error.hpp"
#include "chrootctl/launcher/launch.hpp"

namespace chrootctl::builder::detail {

/// Runs argv inside `root` (see launcher::run_build_command): output to `log_fd`, the host's
/// /etc/resolv.conf bound read-only when `network`. Returns the exit status.
Result<int> run_in_tree(const std::string& root, std::vector<std::string> argv, std::vector<std::pair<std::string, std::string>> env, bool network,
                        int log_fd);

/// The filter of a built-in build policy ("build" for commands in the tree, "build-host" for
/// the host tools), compiled into root's cache on first use.
Result<launcher::SeccompPlan> build_filter(const std::string& policy);

}  // namespace chrootctl::builder::detail
