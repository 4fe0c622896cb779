#pragma once
// What the build steps share: the recipe, the options, the staging paths and the build log.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "chrootctl/builder/build.hpp"
#include "chrootctl/builder/recipe.hpp"

namespace chrootctl::builder::detail {

/// Decisions made while gathering inputs, used by the steps.
struct Plan {
  std::string tool;         ///< mmdebstrap or debootstrap
  std::string apt_sources;  ///< deb822 text from the host's sources (when the recipe names no mirror)
  std::string mirror;       ///< the recipe's mirror, or the first host mirror for the suite
  std::string image_dir;    ///< the base image's build directory
  std::optional<std::int64_t> sde_default;
  std::string sde_origin;
};

struct BuildContext {
  const Recipe& recipe;
  const BuildOptions& options;
  std::int64_t started_ns = 0;
  std::vector<LockInput> inputs;
  std::vector<LockPackage> packages;
  Plan plan;
  std::string staging;  ///< STORE/.staging/NAME.XXXXXX
  std::string root;     ///< staging + "/root"
  int log_fd = -1;
  mutable std::vector<std::pair<std::string, std::int64_t>> step_starts;  ///< step name, monotonic ns
  std::optional<std::int64_t> sde;
  std::string sde_origin = "none (0)";

  /// A line in build.log.
  void log(const std::string& line) const;
  /// A step: logged with the elapsed time and shown as status.
  void step(const std::string& what) const;
  /// Status only (progress inside a step).
  void progress(const std::string& what) const;
  /// An error pointing at the recipe's [base] source.
  Error at_base(const std::string& message, Errc code) const;
};

Status run_base(BuildContext& c);
Status run_packages(BuildContext& c);
Status run_files_and_layout(BuildContext& c);
Status run_commands(BuildContext& c);
/// Runs dnf --installroot on the tree (contained, with the builder's dnf.conf and rpm macros),
/// then empties the tree's /var/cache/dnf. An empty b.releasever lets dnf read it from the tree.
Status run_dnf(const BuildContext& c, const DnfBase& b, const std::string& reposdir, const std::string& verb,
               const std::vector<std::string>& packages);
/// Packages installed in the tree (dpkg status, or rpm --root), sorted by name.
Result<std::vector<LockPackage>> installed_packages(BuildContext& c);

}  // namespace chrootctl::builder::detail
