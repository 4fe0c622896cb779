#pragma once
// Running `chrootctl resolve --json NAME` from slurmstepd: the catalogue (TOML++, OpenSSL) stays
// out of slurmstepd's address space; the plugin only reads the answer.

#include <sys/types.h>

#include <string>

#include "chrootctl/common/error.hpp"
#include "spank_config.hpp"

namespace chrootctl::batch {

/// Runs the configured chrootctl binary (never one found in PATH) with a fixed environment and
/// stdin from /dev/null, and returns the resolved root. A refusal (exit 1: unknown name, not
/// verified, ...) is Errc::mismatch with the resolver's own message; anything else (cannot
/// start, killed after the timeout, exit 2, unreadable output) is another error. Safe to call
/// from a multi-threaded process (posix_spawn; the child is waited for by its pid only).
Result<ResolvedName> run_resolver(const SpankConfig& config, const std::string& name);

/// `chrootctl mount --json --hold-for PID NAME`: the shared mount of the sealed image NAME, held
/// for the process `holder` (slurmstepd, which lives as long as the step) until run_unmount or
/// its end (docs/sealed.md). Same conventions as run_resolver.
Result<MountedImage> run_mount(const SpankConfig& config, const std::string& name, pid_t holder);
/// `chrootctl unmount --hold-for PID NAME`.
Status run_unmount(const SpankConfig& config, const std::string& name, pid_t holder);

}  // namespace chrootctl::batch
