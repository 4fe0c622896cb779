#pragma once
/// `chrootctl diff OLD NEW`: what changed between two images (or manifests), setuid, setgid and
/// capability changes first, then entries added, removed and changed by field, then packages
/// added, removed and changed in version.

#include <optional>
#include <string>
#include <vector>

#include "chrootctl/audit/packages.hpp"
#include "chrootctl/common/error.hpp"
#include "chrootctl/common/json.hpp"
#include "chrootctl/common/manifest.hpp"

namespace chrootctl::audit {

/// One side of a diff: a manifest, and the image root when there is one (build directories and
/// catalogue entries have one; a bare manifest does not, so its packages are unknown).
struct DiffSide {
  std::string label;                       ///< as the user named it
  std::string manifest;                    ///< path of the manifest file
  std::string root;                        ///< empty for a bare manifest (and for a sealed image until its caller mounts it)
  std::string sealed_file;                 ///< a sealed image's file
  std::optional<manifest::Sealed> sealed;  ///< and its #sealed line
};

/// A regular file is a bare manifest; a directory holding a `manifest` file is a build
/// directory (with `root/` if present). Anything else is an error naming the argument.
Result<DiffSide> side_from_path(const std::string& arg);

/// A setuid, setgid or capability change: the entry is privileged on at least one side and its
/// privilege, owner or contents differ.
struct PrivilegeChange {
  enum class Kind { added, removed, changed };
  Kind kind = Kind::changed;
  std::string path;
  std::optional<manifest::Entry> before, after;  ///< absent on the side it does not exist
  std::vector<std::string> changes;              ///< "setuid added", "capabilities cap_net_raw=ep -> -", ...
};

struct PackageChange {
  enum class Kind { added, removed, changed };
  Kind kind = Kind::changed;
  std::string name;
  std::string arch;
  std::string old_version;  ///< empty when added
  std::string new_version;  ///< empty when removed
};

struct ImageDiff {
  DiffSide old_side, new_side;
  std::vector<PrivilegeChange> privileged;
  manifest::DiffResult entries;  ///< without mtime-only differences
  std::uint64_t mtime_only = 0;  ///< entries whose mtime alone changed (not listed)
  bool packages_available = false;
  std::string packages_note;  ///< why the package diff is not available
  std::vector<PackageChange> packages;

  /// True when anything other than mtimes differs.
  [[nodiscard]] bool differs() const;
};

/// Compares two manifests (pure); packages are compared only when both lists are given and
/// readable.
ImageDiff compare_images(const manifest::Manifest& before, const manifest::Manifest& after, const PackageList* old_packages,
                         const PackageList* new_packages);
/// Loads both manifests, reads both package databases where there is a root, and compares.
Result<ImageDiff> diff_images(const DiffSide& before, const DiffSide& after);

/// Privileged changes, then entries, then packages, ending with a one-line summary.
std::string render_text(const ImageDiff& d);
/// The JSON document (schema in docs/audit.schema.json, `$defs/diff`).
std::string render_json(const ImageDiff& d);

}  // namespace chrootctl::audit
