#pragma once
// The system-call filter of a job launch (run, condor-wrapper): which policy, and its compiled
// program, from the cache or compiled into it by chrootctl-full (the front links no libseccomp).

#include <optional>
#include <string>

#include "chrootctl/common/error.hpp"
#include "chrootctl/common/files.hpp"
#include "chrootctl/common/settings.hpp"
#include "chrootctl/launcher/launch.hpp"

namespace chrootctl::cli {

struct JobSeccomp {
  launcher::SeccompPlan plan;
  /// A private cache for a caller without a state directory, removed with this (after the launch).
  std::optional<TempDir> scratch;
};

/// Chooses the job's policy (`requested`: `--seccomp FILE|default|none`, `none` for root only;
/// else `image_policy`, the catalogue entry's; else the site's), hashes its source and finds the
/// program compiled from it in the cache; on a miss, runs `chrootctl-full seccomp compile` once
/// to put it there. Errors name the policy; the compiler's own messages go to stderr.
Result<JobSeccomp> prepare_job_seccomp(const Settings& settings, const std::optional<std::string>& requested, const std::string& image_policy);

}  // namespace chrootctl::cli
