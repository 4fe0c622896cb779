#pragma once
/// Site settings: where the image store and catalogue live, where recipes are found, and the
/// verification and signature policy. Read from /etc/chrootctl/config.toml (or the file named
/// by $CHROOTCTL_CONFIG); a missing file means defaults.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "chrootctl/common/error.hpp"

namespace chrootctl {

struct Settings {
  std::string store;                      ///< image store; the catalogue is STORE/catalogue.toml
  std::vector<std::string> recipe_dirs;   ///< searched in order for NAME.toml
  std::int64_t max_verify_age = 86400;    ///< seconds a full verification stays valid
  bool require_signature = false;         ///< add/resolve/run refuse unsigned images
  std::string trusted_keys = "/etc/chrootctl/trusted.d";
  /// Host ids for the user namespaces of jobs, 65,536 per running job
  /// (`job_ids = { start = N, count = M }`); unset: the launcher's default (launcher/idmap.hpp).
  std::optional<std::uint32_t> job_ids_start;
  std::optional<std::uint32_t> job_ids_count;
  /// Size of a job's /dev/shm when neither --shm nor a smaller --memory says (`shm_size`,
  /// like "64M"); unset: the launcher's default, 64 MiB.
  std::optional<std::uint64_t> shm_size;
  /// Sealed images (docs/sealed.md): keep an image's shared mount when its last launch ends
  /// (`sealed_keep_mounted`), and use dm-verity where the kernel has device-mapper
  /// (`sealed_verity`; false: check the image file's SHA-256 once per boot instead).
  bool sealed_keep_mounted = false;
  bool sealed_verity = true;
  /// Directory images: what `run NAME` checks before each launch (`launch_check`): `metadata`
  /// compares every entry with the stat record; `periodic` relies on the last full verification
  /// (within max_verify_age) alone, and applies only to images on a read-only filesystem or in a
  /// store that only root can traverse (docs/catalogue.md); others keep the metadata check.
  enum class LaunchCheck { metadata, periodic };
  LaunchCheck launch_check = LaunchCheck::metadata;
  std::string config_file;                ///< the file read, or empty if none
};

/// Default store and recipe directories: the checkout's images/ and recipes/ when the binary
/// runs from its build tree, otherwise /var/lib/chrootctl and /etc/chrootctl/recipes.
/// Precedence for the store: `store_override` (--store), $CHROOTCTL_STORE, `store` in the
/// config file, the default.
Result<Settings> load_settings(const std::optional<std::string>& store_override = std::nullopt);

/// True when this binary runs from the build tree of a source checkout.
bool running_from_build_tree();

}  // namespace chrootctl
