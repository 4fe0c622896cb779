#pragma once
/// The strip step: the recipe's security policy, applied last to the finished tree. Removes
/// paths matching globs, handles setuid/setgid files (remove, clear the bits, or keep; exact
/// paths may be allowed), drops file capabilities, removes every device node, and
/// replaces password hashes in /etc/shadow and /etc/gshadow. Every action is reported.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "chrootctl/builder/recipe.hpp"
#include "chrootctl/common/error.hpp"

namespace chrootctl::builder {

struct StripAction {
  enum class Kind {
    removed,             ///< matched a [strip] remove glob (detail: the pattern)
    setuid_removed,      ///< setuid/setgid file deleted (detail: its mode)
    setuid_cleared,      ///< setuid/setgid bits cleared (detail: "4755 -> 0755")
    setuid_kept,         ///< kept by policy "keep" or the allow-list (detail: why)
    capability_dropped,  ///< security.capability removed (detail: the value, hex)
    capability_kept,     ///< on the allow-list
    device_removed,      ///< a device node (detail: "c 1,3")
    password_locked,     ///< a password field replaced (detail: file:user and the new value)
  };
  Kind kind;
  std::string path;
  std::string detail;
};
std::string_view action_name(StripAction::Kind k);

struct StripReport {
  std::vector<StripAction> actions;   ///< in the order they were taken
  std::uint64_t entries_removed = 0;  ///< entries deleted (a removed directory counts all inside it)
  std::uint64_t mtimes_clamped = 0;
  /// One line per action, for build.log ("strip: removed /usr/share/doc (matches /usr/share/doc/**)").
  [[nodiscard]] std::string log_text() const;
  /// The strip-report document (JSON), with the policy that produced it.
  [[nodiscard]] std::string json(const Strip& policy) const;
};

/// Applies `policy` to the tree at `root`, walking it dirfd-relative without following symlinks.
/// With `clamp_mtime`, every mtime newer than it is set to it (SOURCE_DATE_EPOCH), in the same
/// walk, directories after their contents.
Result<StripReport> strip_tree(const std::string& root, const Strip& policy, std::optional<std::int64_t> clamp_mtime);

/// The shadow(5)/gshadow(5) rule, exposed for tests: the new password field, or nullopt to
/// keep it. Locked or disabled fields ("*...", "!", "!*") stay; "!HASH" becomes "!"; anything
/// else (a hash, or an empty field that allows login without a password) becomes "*".
std::optional<std::string> locked_password(std::string_view field);

}  // namespace chrootctl::builder
