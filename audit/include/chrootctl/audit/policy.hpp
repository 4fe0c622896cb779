#pragma once
/// The site's audit policy, /etc/chrootctl/audit.toml (format in docs/audit.md): allow-lists of
/// setuid/setgid files and file capabilities (by path and sha256), device nodes and accounts;
/// severities per check; ignore rules with a mandatory reason. Mistakes are reported together as
/// `FILE:LINE:COL: error: ...`.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chrootctl/audit/audit.hpp"
#include "chrootctl/common/error.hpp"
#include "chrootctl/common/manifest.hpp"
#include "chrootctl/common/toml.hpp"

namespace chrootctl::audit {

/// A setuid or setgid file the site accepts: this path with exactly these contents.
struct SetuidAllow {
  std::string path;
  std::string sha256;
};

/// A file the site accepts with file capabilities: this path with these contents, and, when
/// `capabilities` is set, exactly these permitted capabilities (names like "cap_net_raw").
struct CapabilityAllow {
  std::string path;
  std::string sha256;
  std::optional<std::vector<std::string>> capabilities;
};

/// A device node, FIFO or socket the site accepts at this path (devices: with these numbers).
struct DeviceAllow {
  std::string path;
  manifest::Type type = manifest::Type::chardev;
  std::uint32_t major = 0;
  std::uint32_t minor = 0;
};

/// An account the site accepts despite an account check: `uid` allows the name to hold that uid
/// although another account holds it too (including 0); `password` allows a usable password hash.
struct AccountAllow {
  std::string name;
  std::optional<std::uint32_t> uid;
  bool password = false;
};

/// Findings of `check` matching `path` (a pattern: `*` matches within one path component, `**`
/// across components, `?` one character) and `account` (exact) are listed as ignored, with
/// `reason`, and do not count. An absent path or account matches every finding of the check.
struct Ignore {
  std::string check;
  std::optional<std::string> path;
  std::optional<std::string> account;
  std::string reason;
};

struct Policy {
  std::string source;  ///< the file read, or empty for the built-in policy
  std::vector<SetuidAllow> setuid;
  std::vector<CapabilityAllow> capabilities;
  std::vector<DeviceAllow> devices;  ///< the built-in minimal /dev list unless the policy drops it
  std::vector<AccountAllow> accounts;
  std::map<std::string, Severity, std::less<>> severities;  ///< check id -> severity
  std::vector<Ignore> ignores;

  /// The severity of a check under this policy.
  [[nodiscard]] Severity severity_of(std::string_view check) const;
  /// The first ignore rule matching `f`, or nullptr.
  [[nodiscard]] const Ignore* ignore_for(const Finding& f) const;
};

/// The minimal /dev accepted when the policy does not say otherwise: null, zero, full, random,
/// urandom, tty, console and ptmx with their usual numbers.
std::vector<DeviceAllow> builtin_devices();
/// The built-in policy: built-in devices, no other allow-list entry, default severities.
Policy default_policy();

/// Parses policy TOML (`doc.name` names the file in errors).
Result<Policy> parse_policy(const TomlDocument& doc);
Result<Policy> load_policy(const std::string& path);

/// The default location of the site policy.
inline constexpr std::string_view k_site_policy = "/etc/chrootctl/audit.toml";
/// The policy to use: `explicit_path` (--policy) if given, else $CHROOTCTL_AUDIT_POLICY if set,
/// else /etc/chrootctl/audit.toml if it exists, else the built-in policy.
Result<Policy> load_site_policy(const std::optional<std::string>& explicit_path);

/// Path patterns of ignore rules (see Ignore).
bool path_matches(std::string_view pattern, std::string_view path);

}  // namespace chrootctl::audit
