#pragma once
/// Site settings: where the image store and catalogue live, where recipes are found, and the
/// verification and signature policy. Read from /etc/chrootctl/config.toml (or the file named
/// by $CHROOTCTL_CONFIG); a missing file means defaults.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "chrootctl/common/error.hpp"
#include "chrootctl/common/privilege.hpp"

namespace chrootctl {

struct Settings {
  std::string store;                      ///< image store; the catalogue is STORE/catalogue.toml
  std::vector<std::string> recipe_dirs;   ///< searched in order for NAME.toml
  std::int64_t max_verify_age = 86400;    ///< seconds a full verification stays valid
  bool require_signature = false;         ///< add/resolve/run refuse unsigned images
  std::string trusted_keys = "/etc/chrootctl/trusted.d";
  /// Catalogue names whose images unprivileged launchers must read (the HTCondor wrapper, `run
  /// --unprivileged`); "*" names every image. Such an image must hold no setuid, setgid or
  /// capability file and no device node; every other image is reachable by root only
  /// (docs/catalogue.md, "Who can read what").
  std::vector<std::string> readable_images;
  /// What import does with setuid and setgid files, file capabilities and device nodes
  /// ([strip] in the config; the builder's defaults).
  PrivilegePolicy import_strip;
  std::string config_file;                ///< the file read, or empty if none

  /// True when `name` is in readable_images (or it holds "*").
  [[nodiscard]] bool readable(std::string_view name) const;
};

/// Default store and recipe directories: the checkout's images/ and recipes/ when the binary
/// runs from its build tree, otherwise /var/lib/chrootctl and /etc/chrootctl/recipes.
/// Precedence for the store: `store_override` (--store), $CHROOTCTL_STORE, `store` in the
/// config file, the default.
Result<Settings> load_settings(const std::optional<std::string>& store_override = std::nullopt);

/// True when this binary runs from the build tree of a source checkout.
bool running_from_build_tree();

}  // namespace chrootctl
