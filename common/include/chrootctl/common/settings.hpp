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

/// The `[seccomp]` table: the site's system-call policy for jobs (docs/seccomp.md). The names
/// are checked when the policy is compiled (chrootctl-full), which reports every mistake at
/// FILE:LINE:COL of the configuration.
struct SeccompSettings {
  /// "default" (the built-in job policy), "none" (no filter) or a policy file's absolute path.
  std::string policy = "default";
  std::vector<std::string> allow;  ///< system calls and @groups allowed on top of the policy
  std::vector<std::string> deny;   ///< ... and denied
  std::string errno_name;          ///< what denied calls return (empty: the policy's own, EPERM)
  std::optional<bool> allow_user_namespaces;
  /// The table adds to whichever policy a job runs with (anything but `policy`).
  [[nodiscard]] bool has_additions() const { return !allow.empty() || !deny.empty() || !errno_name.empty() || allow_user_namespaces.has_value(); }
};

/// The `[accounting]` table: where launches are recorded (docs/accounting.md). Launchers run as
/// root append to `path`; others to DIR/users/UID.jsonl beside it (DIR, the directory of
/// `path`). A file that reaches `max_bytes` is renamed to PATH.1 (PATH.1 to PATH.2, ..., up to
/// PATH.KEEP) before the next line.
struct AccountingSettings {
  bool enabled = true;
  std::string path;                       ///< absolute; default below (load_settings)
  std::uint64_t max_bytes = 64ull << 20;  ///< `max_size`, like "64M"
  unsigned keep = 4;                      ///< rotated files kept
};

struct Settings {
  std::string store;                     ///< image store; the catalogue is STORE/catalogue.toml
  std::vector<std::string> recipe_dirs;  ///< searched in order for NAME.toml
  std::int64_t max_verify_age = 86400;   ///< seconds a full verification stays valid
  bool require_signature = false;        ///< add/resolve/run refuse unsigned images
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
  /// Catalogue names whose images unprivileged launchers must read (the HTCondor wrapper, a
  /// user's own `run`); "*" names every image. Such an image must hold no setuid, setgid or
  /// capability file and no device node; every other image is reachable by root only
  /// (docs/catalogue.md, "Who can read what").
  std::vector<std::string> readable_images;
  /// What import does with setuid and setgid files, file capabilities and device nodes
  /// ([strip] in the config; the builder's defaults).
  PrivilegePolicy import_strip;
  std::string config_file;  ///< the file read, or empty if none
  std::string config_text;  ///< its text, as read (a system-call policy's source cites it)
  SeccompSettings seccomp;
  AccountingSettings accounting;

  /// True when `name` is in readable_images (or it holds "*").
  [[nodiscard]] bool readable(std::string_view name) const;
};

/// Default store and recipe directories: the checkout's images/ and recipes/ when the binary
/// runs from its build tree, otherwise /var/lib/chrootctl and /etc/chrootctl/recipes. The
/// accounting log's default is BUILD/accounting/launches.jsonl from a build tree, otherwise
/// /var/log/chrootctl/launches.jsonl.
/// Precedence for the store: `store_override` (--store), $CHROOTCTL_STORE, `store` in the
/// config file, the default.
Result<Settings> load_settings(const std::optional<std::string>& store_override = std::nullopt);
/// The settings without a configuration file (what load_settings starts from).
Settings default_settings();

/// True when this binary runs from the build tree of a source checkout.
bool running_from_build_tree();

}  // namespace chrootctl
