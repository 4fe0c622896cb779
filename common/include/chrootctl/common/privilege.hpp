#pragma once
/// The privilege part of the strip policy: what happens to setuid and setgid files, file
/// capabilities and device nodes. A recipe's [strip] table sets it for a build
/// (docs/recipes.md); the site's [strip] table in config.toml sets it for every import
/// (docs/signing.md). The builder's strip step and import decide with the same function, so
/// one policy holds for trees built here and trees brought in.

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chrootctl/common/manifest.hpp"

namespace chrootctl {

enum class SetuidPolicy { remove, clear_bit, keep };
/// "remove", "clear-bit", "keep".
std::string_view setuid_policy_name(SetuidPolicy p);
std::optional<SetuidPolicy> parse_setuid_policy(std::string_view name);

struct PrivilegePolicy {
  SetuidPolicy setuid = SetuidPolicy::clear_bit;  ///< setuid and setgid regular files
  std::vector<std::string> allow_setuid;          ///< exact paths kept whatever the policy
  bool capabilities = true;                       ///< drop security.capability
  std::vector<std::string> allow_capabilities;    ///< exact paths that keep theirs
  bool devices = true;                            ///< remove every character and block device
};

/// What the policy does to one entry.
struct PrivilegeActions {
  enum class Kept { no, allow_list, policy };
  bool remove = false;           ///< leave the entry out: a setuid/setgid file under "remove", a device node
  bool clear_setuid = false;     ///< clear its setuid and setgid bits
  bool drop_capability = false;  ///< remove its security.capability attribute
  Kept setuid_kept = Kept::no;   ///< a setuid/setgid file the policy keeps, and why
  Kept capability_kept = Kept::no;
  [[nodiscard]] bool changes() const { return remove || clear_setuid || drop_capability; }
};

/// The actions for the entry at `path` (absolute inside the tree) with `st_mode` (type and
/// permission bits) and, for a regular file, whether it carries a file capability.
PrivilegeActions privilege_actions(std::string_view path, mode_t st_mode, bool has_capability, const PrivilegePolicy& policy);
/// The same for a manifest entry.
PrivilegeActions privilege_actions(const manifest::Entry& e, const PrivilegePolicy& policy);

/// "setuid-removed", "device-removed", "setuid-cleared", "capability-dropped" or
/// "setuid-cleared,capability-dropped": the strip record action (docs/manifest.md).
std::string strip_action_name(const PrivilegeActions& a, const manifest::Entry& e);

/// Why `path` cannot be on an allow-list (it must be absolute and canonical), or nullopt.
std::optional<std::string> allow_path_problem(std::string_view path);

}  // namespace chrootctl
