#pragma once
/// Who can reach an image's tree on the host (docs/catalogue.md, "Who can read what"). An image
/// tree is either reachable by root only, or it holds no setuid, setgid or capability file and
/// no device node: whoever can reach a setuid-root binary can run it on the host, outside any
/// job. Root-only means that a directory on the way to the tree, owned by root, gives group and
/// others no search permission (mode 0700): the builder and import make every build directory
/// STORE/RECIPE/BUILD-ID so. Images that unprivileged launchers must read (the HTCondor wrapper
/// runs as the job's user) are named in readable_images in the site's configuration; their
/// trees must hold nothing privileged, and only then is their build directory opened (0755).

#include <optional>
#include <string>
#include <vector>

#include "chrootctl/common/error.hpp"
#include "chrootctl/common/manifest.hpp"
#include "chrootctl/common/settings.hpp"

namespace chrootctl::catalogue {

/// The first directory on the way from "/" to `path` (`path` included) that only root can
/// pass: owned by root, with no search (x) permission for group or others. A POSIX ACL that
/// lets a user search shows in the group bits (the mask), so it counts as searchable. nullopt
/// when every host user can reach `path` as far as modes say.
Result<std::optional<std::string>> root_only_dir(const std::string& path);

/// The entries of `m` that give privileges on the host, each as "'/usr/bin/su' (setuid root
/// (mode 4755))", in path order.
std::vector<std::string> privileged_entries(const manifest::Manifest& m);

/// "3 entries: 'a' (...), 'b' (...), 'c' (...)", at most `max` listed.
std::string list_privileged(const std::vector<std::string>& entries, std::size_t max = 5);

/// How the rule stands for one tree. A sealed image (m.sealed) holds nothing privileged on the
/// host: its entries exist only inside its nosuid, nodev mount.
struct Exposure {
  std::optional<std::string> root_only_by;  ///< the directory that keeps host users out, if any
  std::vector<std::string> privileged;      ///< privileged_entries of its manifest
  [[nodiscard]] bool breaks_rule() const { return !root_only_by && !privileged.empty(); }
};
Result<Exposure> exposure(const std::string& root, const manifest::Manifest& m);

/// True when `image` is a build directory of the store (STORE/RECIPE/BUILD-ID) whose tree is
/// IMAGE/root (or, sealed, IMAGE/image.erofs): its mode is chrootctl's to set. `store` is
/// canonical.
bool in_store(const std::string& store, const std::string& image, const std::string& root);

/// Applies the rule to an image about to be registered (`add`, `import`) under a name whose
/// readability the site decides (Settings::readable):
///  * readable: its tree must hold nothing privileged, otherwise Errc::permission says what it
///    holds; a build directory of the store is then opened (0755);
///  * otherwise: a tree that breaks the rule is refused (Errc::permission) unless it is a build
///    directory of the store, which is made root-only (0700).
/// Returns notes for the administrator (what was changed, or why unprivileged launchers still
/// cannot reach it).
Result<std::vector<std::string>> settle_access(const Settings& s, const std::string& name, const std::string& image, const std::string& root,
                                               const manifest::Manifest& m);

/// What `verify` does for an image registered under `names`: a tree that breaks the rule is
/// made root-only when it is a build directory of the store (a note says so); a readable
/// image's root-only build directory that holds nothing privileged is opened. Returns notes,
/// and an error message when the tree breaks the rule and cannot be repaired (outside the store).
struct AccessRepair {
  std::vector<std::string> notes;
  std::optional<std::string> problem;
};
Result<AccessRepair> repair_access(const Settings& s, const std::vector<std::string>& names, const std::string& image, const std::string& root,
                                   const manifest::Manifest& m);

}  // namespace chrootctl::catalogue
