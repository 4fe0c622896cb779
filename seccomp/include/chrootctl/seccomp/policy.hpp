#pragma once
/// System-call policies: the TOML format (docs/seccomp.md) parsed into a plain `Policy`, with
/// every mistake reported at FILE:LINE:COL with the source line, a caret and, for a misspelt
/// system call, group, errno or key, a suggestion. Names are checked against libseccomp's
/// tables, so this links libseccomp (chrootctl-full only).

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chrootctl/common/error.hpp"
#include "chrootctl/seccomp/source.hpp"

namespace chrootctl::seccomp {

/// An argument check (a [[rule]]): which values of one argument a call may take.
struct ArgRule {
  enum class Kind {
    allow_values,    ///< only these values are allowed
    deny_values,     ///< these values are denied, every other one allowed
    allow_if_clear,  ///< allowed only when none of the bits of `mask` is set
  };
  Kind kind = Kind::allow_values;
  unsigned arg = 0;     ///< 0 to 5
  unsigned width = 64;  ///< 32: only the low 32 bits are compared (the kernel reads an int)
  std::vector<std::uint64_t> values;
  std::uint64_t mask = 0;
  std::optional<int> errno_value;  ///< what refused values get; unset: the policy's errno
  friend bool operator==(const ArgRule&, const ArgRule&) = default;
};

/// What one system call gets.
struct Disposition {
  enum class Kind { allow, deny, rule };
  Kind kind = Kind::allow;
  std::optional<int> errno_value;  ///< deny: a specific errno (deny_with); unset: the policy's errno
  ArgRule rule;                    ///< kind == rule
  std::string origin;              ///< where it was decided: "FILE:LINE:COL"
};

struct Policy {
  std::string name;  ///< PolicySource::policy
  std::string description;
  int errno_value = 1;     ///< what denied calls return (EPERM unless set)
  int unknown_errno = 38;  ///< what calls the policy does not name return (ENOSYS unless set)
  bool allow_user_namespaces = false;
  std::map<std::string, Disposition> calls;  ///< by system-call name
};

/// Bounds on argument rules: the values one [[rule]] may list, and the values of all rules of a
/// policy, counted once per call they apply to. Each value compiles to up to one comparison per
/// bit of the argument, and libseccomp's time grows with the square of the comparisons.
inline constexpr std::size_t k_max_rule_values = 64;
inline constexpr std::size_t k_max_policy_rule_values = 256;

/// Parses the documents of `source` in order: each policy file applies its `base` first, then
/// its own lists; a site document adds to (and overrides) what came before. Every error of a
/// document is reported together (Errc::parse).
Result<Policy> parse_policy(const PolicySource& source);

/// A named group of system calls ("@mount"), systemd-style.
struct Group {
  std::string_view name;
  std::string_view description;
  std::vector<std::string_view> members;
};
const std::vector<Group>& groups();
const Group* find_group(std::string_view name);

/// Every system-call name libseccomp knows on x86-64 or i386 (including the socketcall and
/// ipc operations of i386), sorted.
const std::vector<std::string>& known_syscalls();
bool is_known_syscall(std::string_view name);

/// errno values by name ("EPERM"), and back.
std::optional<int> errno_by_name(std::string_view name);
std::string errno_label(int value);

/// The calls multiplexed on i386 through socketcall (socket, bind, ...) or ipc (shmat, ...):
/// there the arguments of the operation are in memory, out of a filter's reach.
bool is_i386_multiplexed(std::string_view name);

}  // namespace chrootctl::seccomp
