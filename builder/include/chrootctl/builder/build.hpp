#pragma once
/// `chrootctl build`: turns a recipe into an image in the store (layout in docs/recipes.md):
///
///   STORE/NAME/BUILD-ID/{root/, manifest, manifest.stat, recipe.toml, lock, build.log, strip-report}
///   STORE/NAME/BUILD-ID/{image.erofs, manifest, recipe.toml, lock, build.log, strip-report}   (sealed)
///   STORE/NAME/latest -> BUILD-ID
///
/// A build runs in STORE/.staging/NAME.XXXXXX (held by an flock while the build lives) and is
/// renamed to STORE/NAME/BUILD-ID only when everything in it is complete and synced, so a failed
/// or killed build never leaves anything at an image path; the next build removes stale staging
/// directories. Builds of one recipe are serialised by STORE/.locks/NAME.lock.
///
/// BUILD-ID is `KKKKKKKKKKKK-TTTTTTTT`: the first 12 hex digits of the input key (the SHA-256 of
/// every input in the lock) and the first 8 of the tree digest. It is deterministic from the
/// inputs, so a cached build prints the same id, and a rebuild that gives a different tree (a
/// mirror moved on) gets a new id instead of replacing an image that may be registered.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "chrootctl/builder/recipe.hpp"
#include "chrootctl/common/error.hpp"
#include "chrootctl/common/manifest.hpp"

namespace chrootctl::builder {

/// The builder's own version, an input of every build: bump it when a step changes what it
/// produces, so cached images are not reused across such a change.
inline constexpr int k_builder_version = 2;

/// Resolves an `image = "NAME"` base to the build directory of that image (which holds root/
/// and manifest). The CLI resolves through the catalogue once it exists; store_latest() is the
/// default.
using ImageResolver = std::function<Result<std::string>(const std::string& name)>;

struct BuildOptions {
  std::string store;     ///< image store directory (created if missing)
  bool rebuild = false;  ///< build even when an image with the same inputs exists
  /// SOURCE_DATE_EPOCH from the environment: overrides the recipe's and the default.
  std::optional<std::int64_t> source_date_epoch;
  ImageResolver resolve_image;  ///< empty: store_latest(store, NAME)
  /// Called once per step ("base: mmdebstrap minbase bookworm"), for people and logs.
  std::function<void(const std::string&)> status;
  /// Called often inside a step ("mmdebstrap: I: extracting archives..."), for a terminal display.
  std::function<void(const std::string&)> progress;
  unsigned threads = 0;  ///< manifest hashing threads (0 = one per CPU)
  /// `build --sealed`: overrides the recipe's [output] format.
  std::optional<Output::Format> output;
};

struct BuildResult {
  std::string name;
  std::string build_id;
  std::string build_dir;                   ///< STORE/NAME/BUILD-ID
  std::string root;                        ///< build_dir + "/root", or the sealed image file build_dir + "/image.erofs"
  std::string tree_digest;                 ///< hex SHA-256 from the manifest's end line
  std::optional<manifest::Sealed> sealed;  ///< a sealed build: its image file (the manifest's #sealed line)
  std::string input_key;                   ///< hex SHA-256 of the inputs
  std::int64_t source_date_epoch = 0;
  bool cached = false;  ///< an existing image was reused (no work done)
  std::uint64_t entries = 0;
  std::uint64_t strip_actions = 0;
  double seconds = 0;
  /// Wall time of each step ("base", "packages", "files", "layout", "run", "strip", "manifest",
  /// "seal", "commit"), in the order they ran; empty for a cached build.
  std::vector<std::pair<std::string, double>> step_seconds;
};

/// Builds `recipe` into the store (or finds it there). Errors carry the recipe's file:line:col
/// where the problem is in the recipe.
Result<BuildResult> build(const Recipe& recipe, const BuildOptions& options);

/// The build directory STORE/NAME/latest points at, checked to be a complete image.
Result<std::string> store_latest(const std::string& store, const std::string& name);

/// Removes staging directories left by builds that died (their flock is free). Returns how many.
Result<std::size_t> clean_stale_staging(const std::string& store);

/// One input of a build, as written to the lock.
struct LockInput {
  std::string kind;    ///< "builder", "recipe", "base.archive", "file", "tool", "apt-sources", ...
  std::string name;    ///< what it is (a path, a tool, a URL)
  std::string digest;  ///< "sha256:HEX", or a version for tools
};
/// Resolved after the base and package steps (not part of the input key): name and version.
struct LockPackage {
  std::string name;
  std::string version;
  std::string arch;
};

/// The input key: SHA-256 over the inputs' canonical lines, in order.
std::string input_key(const std::vector<LockInput>& inputs);

}  // namespace chrootctl::builder
