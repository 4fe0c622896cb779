#pragma once
// What the build steps share: the recipe, the options, the staging paths and the build log.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "chrootctl/builder/build.hpp"
#include "chrootctl/builder/recipe.hpp"
#include "chrootctl/common/manifest.hpp"
#include "chrootctl/launcher/sealed.hpp"

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
  bool sealed = false;  ///< the build makes a sealed image (docs/sealed.md)

  /// A line in build.log.
  void log(const std::string& line) const;
  /// A step: logged with the elapsed time and shown as status.
  void step(const std::string& what) const;
  /// Status only (progress inside a step).
  void progress(const std::string& what) const;
  /// An error pointing at the recipe's [base] source.
  Error at_base(const std::string& message, Errc code) const;
};

/// Runs a host tool for a step (contained: its own mount and PID namespaces); its output goes to
/// build.log and its last lines into the error.
Status run_tool(const BuildContext& c, const std::string& step, std::vector<std::string> argv, const std::string& home = {});

/// The seal step of a sealed build: STAGING/image.erofs from the tree (mkfs.erofs, reproducibly:
/// SOURCE_DATE_EPOCH, a UUID and a dm-verity salt derived from the tree digest), with a
/// dm-verity hash tree appended (libcryptsetup); then the tree is removed.
Result<manifest::Sealed> seal_tree(const BuildContext& c, const std::string& tree_digest);
/// A share of the shared mount of the sealed image in build directory `image_dir` (an
/// `image = "NAME"` base), made through the launcher's sealed-image module with dm-verity where
/// the kernel has it, held by this process until the object goes.
Result<launcher::sealed::Share> mount_sealed_base(const std::string& image_dir, const manifest::Sealed& sealed);

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
