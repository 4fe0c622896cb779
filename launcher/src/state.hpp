#pragma once
// The id block claims directory (state.cpp), as cleanup.cpp uses it too: to free the claims of
// launches that are gone.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "chrootctl/common/error.hpp"
#include "chrootctl/common/fd.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/launcher/cleanup.hpp"

namespace chrootctl::launcher::detail {

/// The claims directory, locked: every look at, creation and removal of a claim happens with
/// the flock of CLAIMS/.lock held, so that what was read is still true when it is acted on.
struct LockedClaims {
  Fd lock;
  Fd dir;
};
Result<LockedClaims> lock_claims(const std::string& dir);

/// A claim is stale when its launch is gone and left no record: a record means the launch's
/// processes may not all be gone yet (its cgroup could not be removed), so its block stays
/// taken until cleanup has removed the record.
bool claim_is_stale(int dirfd, const std::string& file, const std::string& state_dir, bool (*is_live)(const LaunchOwner&));

/// Removes the claim `file` if `name` holds it (the lock held).
bool remove_claim_of(const LockedClaims& c, const std::string& file, const std::string& name);

/// The first host id of each claimed block (claim files are named by it).
std::vector<std::pair<std::uint32_t, std::string>> claimed_bases(const std::vector<sys::DirEntry>& entries);

}  // namespace chrootctl::launcher::detail
