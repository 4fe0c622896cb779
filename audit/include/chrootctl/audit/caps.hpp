#pragma once
/// File capabilities (`security.capability` xattrs) decoded into capability names, without
/// libcap: the on-disk layouts are those of linux/capability.h (VFS_CAP_REVISION_1, _2 and _3).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chrootctl/common/error.hpp"

namespace chrootctl::audit {

/// One decoded `security.capability` value.
struct FileCaps {
  int version = 2;              ///< 1, 2 or 3 (VFS_CAP_REVISION_N)
  bool effective = false;       ///< VFS_CAP_FLAGS_EFFECTIVE: permitted caps are raised at exec
  std::uint64_t permitted = 0;  ///< bit N = capability N
  std::uint64_t inheritable = 0;
  std::optional<std::uint32_t> rootid;  ///< v3 only: the namespace root uid the caps apply to
  friend bool operator==(const FileCaps&, const FileCaps&) = default;
};

/// Decodes a raw xattr value. Errors (Errc::parse) say what is wrong: unknown revision, a size
/// that does not fit the revision, bits set in reserved flag positions.
Result<FileCaps> decode_caps(std::string_view raw);

/// "cap_net_raw", or "cap_N" for a capability this build does not know by name.
std::string cap_name(unsigned bit);
/// Capability number of a name such as "cap_net_raw" (case-insensitive), or nullopt.
std::optional<unsigned> cap_number(std::string_view name);
/// The names of the bits set in `mask`, in bit order.
std::vector<std::string> cap_names(std::uint64_t mask);

/// getcap(8)-style text: capabilities with the same flags grouped, "cap_net_admin,cap_net_raw=ep",
/// groups separated by a space, then " [rootid=N]" for v3. An empty set gives "=" (as getcap).
std::string caps_text(const FileCaps& caps);

}  // namespace chrootctl::audit
