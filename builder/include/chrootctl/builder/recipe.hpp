#pragma once
/// Recipes: what `chrootctl build` turns into an image. Format in docs/recipes.md. Parsing
/// collects every error of a file (unknown keys with a did-you-mean, wrong types, bad values),
/// each rendered as `recipes/x.toml:LINE:COL: error: ...` with the source line and a caret.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "chrootctl/common/error.hpp"
#include "chrootctl/common/privilege.hpp"
#include "chrootctl/common/toml.hpp"

namespace chrootctl::builder {

// ---- base sources: exactly one per recipe ----

/// A local rootfs tarball (tar, optionally gz/xz/zstd/bzip2), pinned by sha256.
struct ArchiveBase {
  std::string path;    ///< absolute (relative paths in the recipe are resolved against its directory)
  std::string sha256;  ///< lowercase hex; all zeros means "not pinned yet"
  SourcePos pos;       ///< where the source is declared, for errors found while building
};

/// A `docker save` tarball or an OCI image layout tarball, pinned by sha256.
struct OciBase {
  std::string path;
  std::string sha256;
  std::string image;  ///< which image in a tarball holding several (a RepoTag or org.opencontainers.image.ref.name)
  SourcePos pos;
};

/// A Debian tree from mmdebstrap (debootstrap when mmdebstrap is missing, or when asked for).
struct DebootstrapBase {
  enum class Tool { mmdebstrap, debootstrap };
  Tool tool = Tool::mmdebstrap;
  bool fallback = true;  ///< mmdebstrap recipes fall back to debootstrap when mmdebstrap is missing
  std::string suite;
  std::string variant = "minbase";
  std::vector<std::string> packages;    ///< extra packages (--include)
  std::vector<std::string> components;  ///< default: main
  std::string mirror;                   ///< empty: the host's apt sources for this suite
  SourcePos pos;
};

/// An RPM tree from `dnf --installroot`.
struct DnfBase {
  std::string releasever;
  std::vector<std::string> packages;
  std::map<std::string, std::string> repos;  ///< repo id -> baseurl (sorted by id)
  std::string reposdir;                      ///< directory of .repo files (used when `repos` is empty)
  bool gpgcheck = true;
  std::vector<std::string> gpgkeys;  ///< key files or URLs for `repos`
  std::string arch;                  ///< --forcearch, empty for the host's
  bool install_weak_deps = false;
  SourcePos pos;
};

/// An image already in the store, found through the build's image resolver.
struct ImageBase {
  std::string name;
  SourcePos pos;
};

/// A host directory tree, copied with owners, modes, links, devices and xattrs.
struct DirectoryBase {
  std::string path;
  SourcePos pos;
};

/// An empty tree: everything comes from [[files]] and [layout].
struct ScratchBase {
  SourcePos pos;
};

using Base = std::variant<ArchiveBase, OciBase, DebootstrapBase, DnfBase, ImageBase, DirectoryBase, ScratchBase>;
/// "archive", "oci", "mmdebstrap", "debootstrap", "dnf", "image", "directory", "scratch".
std::string base_kind(const Base& b);

// ---- steps after the base ----

struct Packages {
  enum class Manager { automatic, apt, dnf };
  Manager manager = Manager::automatic;
  std::vector<std::string> install;
  std::vector<std::string> remove;
};

// The privilege keys (setuid, allow_setuid, capabilities, allow_capabilities, devices) are the
// PrivilegePolicy that import applies too (common/privilege.hpp).
using chrootctl::setuid_policy_name;
using chrootctl::SetuidPolicy;

struct Strip : PrivilegePolicy {
  bool shadow = true;               ///< replace password hashes in /etc/shadow, /etc/gshadow
  std::vector<std::string> remove;  ///< path globs (`*`, `?`, `[...]`, `**`)
};

struct Layout {
  std::vector<std::string> mkdir;
  std::vector<std::pair<std::string, std::string>> symlinks;  ///< path -> target, in recipe order
};

struct FileSpec {
  std::optional<std::string> src;      ///< host path (absolute after parsing)
  std::optional<std::string> content;  ///< inline contents
  std::string dst;                     ///< absolute path inside the tree
  std::uint32_t mode = 0644;
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  SourcePos pos;
};

struct Run {
  std::vector<std::string> commands;  ///< each run with /bin/sh -c inside the tree
  bool network = false;
};

/// `[output]`: what a build makes (docs/recipes.md). A directory image is the tree itself; a
/// sealed image is one read-only EROFS image file of it with a dm-verity hash tree
/// (docs/sealed.md), and no tree.
struct Output {
  enum class Format { directory, sealed };
  Format format = Format::directory;
  SourcePos pos;
};

struct Recipe {
  std::string name;
  std::string description;
  std::optional<std::int64_t> source_date_epoch;
  Base base;
  Packages packages;
  Strip strip;
  Layout layout;
  std::vector<FileSpec> files;
  Run run;
  Output output;

  // Where it came from.
  std::string path;          ///< host path of the recipe file
  std::string display_name;  ///< how errors name it ("recipes/debian12.toml")
  std::string dir;           ///< directory relative inputs are resolved against
  std::string text;          ///< the recipe as read (saved as recipe.toml in the image)
  TomlDocument doc;          ///< kept for diagnostics found while building
};

/// True for a valid recipe (and store directory) name: 1-64 of [a-z0-9._-], starting with a
/// letter or digit.
bool valid_recipe_name(std::string_view name);

/// Parses recipe text. `dir` resolves relative `path`/`src` values. Every problem is reported in
/// one Errc::parse error.
Result<Recipe> parse_recipe(std::string text, const std::string& display_name, const std::string& dir);
/// Reads and parses a recipe file.
Result<Recipe> load_recipe(const std::string& path, const std::string& display_name = {});

/// Finds NAME.toml in `dirs` (in order), or takes an argument ending in .toml as a path. A
/// recipe found by name must say `name = "NAME"`.
Result<Recipe> find_recipe(const std::string& name_or_path, const std::vector<std::string>& dirs);

/// An error at a place in the recipe, rendered like the parser's (`file:line:col`, line, caret).
Error recipe_error(const Recipe& r, SourcePos pos, const std::string& message);

}  // namespace chrootctl::builder
