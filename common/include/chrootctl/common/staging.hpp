#pragma once
/// Staging directories of an image store (docs/recipes.md, "The store"): where a build or an
/// import makes a tree before it is renamed into place as STORE/NAME/BUILD-ID. A tree being
/// made may hold what must not run on the host, so STORE/.staging and STORE/.locks are this
/// process's and mode 0700, whatever was there before. Builds and imports share them, so that
/// the cleaner run by each build never removes a live import and removes one that was killed.

#include <cstddef>
#include <string>
#include <vector>

#include "chrootctl/common/error.hpp"
#include "chrootctl/common/fd.hpp"

namespace chrootctl::store {

/// Makes `path` a directory of this process's euid with mode 0700: created if missing, its mode
/// corrected if it has another, refused if someone else owns it or it is not a directory.
Status ensure_private_dir(const std::string& path);

/// STORE (0755, created if missing) with its private .staging and .locks.
Status prepare(const std::string& store);

/// A staging directory STORE/.staging/NAME.XXXXXX, flock-held while it lives (so that the
/// cleaner leaves it alone) and removed on destruction unless `path` was cleared.
struct Staging {
  Staging() = default;
  Staging(Staging&&) = default;
  Staging& operator=(Staging&&) = default;
  Staging(const Staging&) = delete;
  Staging& operator=(const Staging&) = delete;
  ~Staging();
  std::string path;
  Fd fd;  ///< the directory, opened O_NOFOLLOW, holding the flock
};

/// A new staging directory for `name` in a prepared store. Created and locked under
/// STORE/.locks/staging.lock, so that a concurrent cleaner never sees it unlocked.
Result<Staging> create_staging(const std::string& store, const std::string& name);

/// Removes the staging directories whose flock is free (their builder or importer died);
/// returns how many. What could not be removed is added to `problems`.
Result<std::size_t> clean_staging(const std::string& store, std::vector<std::string>* problems);

}  // namespace chrootctl::store
