// Decoding of security.capability values. The layouts (linux/capability.h) are little-endian:
//   magic_etc (revision in the top byte, VFS_CAP_FLAGS_EFFECTIVE in bit 0),
//   then {permitted, inheritable} for capabilities 0-31 and (v2, v3) 32-63,
//   then (v3 only) rootid: the uid that is root in the user namespace the caps belong to.
#include "chrootctl/audit/caps.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>

#include "chrootctl/common/strings.hpp"

namespace chrootctl::audit {

namespace {

// Values from linux/capability.h, spelled out so that the decoder does not depend on the
// build host's kernel headers.
constexpr std::uint32_t k_revision_mask = 0xFF000000u;
constexpr std::uint32_t k_flags_effective = 0x000001u;
constexpr std::uint32_t k_revision_1 = 0x01000000u;
constexpr std::uint32_t k_revision_2 = 0x02000000u;
constexpr std::uint32_t k_revision_3 = 0x03000000u;
constexpr std::size_t k_size_1 = 4 + 2 * 4;      // XATTR_CAPS_SZ_1
constexpr std::size_t k_size_2 = 4 + 2 * 2 * 4;  // XATTR_CAPS_SZ_2
constexpr std::size_t k_size_3 = k_size_2 + 4;   // XATTR_CAPS_SZ_3

// Capability numbers 0..40 (CAP_LAST_CAP on Linux 6.x is CAP_CHECKPOINT_RESTORE = 40).
constexpr std::array<std::string_view, 41> k_names = {
    "cap_chown",
    "cap_dac_override",
    "cap_dac_read_search",
    "cap_fowner",
    "cap_fsetid",
    "cap_kill",
    "cap_setgid",
    "cap_setuid",
    "cap_setpcap",
    "cap_linux_immutable",
    "cap_net_bind_service",
    "cap_net_broadcast",
    "cap_net_admin",
    "cap_net_raw",
    "cap_ipc_lock",
    "cap_ipc_owner",
    "cap_sys_module",
    "cap_sys_rawio",
    "cap_sys_chroot",
    "cap_sys_ptrace",
    "cap_sys_pacct",
    "cap_sys_admin",
    "cap_sys_boot",
    "cap_sys_nice",
    "cap_sys_resource",
    "cap_sys_time",
    "cap_sys_tty_config",
    "cap_mknod",
    "cap_lease",
    "cap_audit_write",
    "cap_audit_control",
    "cap_setfcap",
    "cap_mac_override",
    "cap_mac_admin",
    "cap_syslog",
    "cap_wake_alarm",
    "cap_block_suspend",
    "cap_audit_read",
    "cap_perfmon",
    "cap_bpf",
    "cap_checkpoint_restore",
};

std::uint32_t le32(std::string_view raw, std::size_t offset) {
  const auto* p = reinterpret_cast<const unsigned char*>(raw.data()) + offset;
  return static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 | static_cast<std::uint32_t>(p[2]) << 16 |
         static_cast<std::uint32_t>(p[3]) << 24;
}

}  // namespace

Result<FileCaps> decode_caps(std::string_view raw) {
  if (raw.size() < 4) return fail(Errc::parse, str("security.capability value of ", raw.size(), " bytes is too short"));
  const std::uint32_t magic = le32(raw, 0);
  const std::uint32_t revision = magic & k_revision_mask;
  const std::uint32_t flags = magic & ~k_revision_mask;
  FileCaps caps;
  std::size_t words = 2;
  std::size_t expected = 0;
  switch (revision) {
    case k_revision_1:
      caps.version = 1;
      words = 1;
      expected = k_size_1;
      break;
    case k_revision_2:
      caps.version = 2;
      expected = k_size_2;
      break;
    case k_revision_3:
      caps.version = 3;
      expected = k_size_3;
      break;
    default:
      return fail(Errc::parse, str("security.capability has unknown revision 0x", to_hex(reinterpret_cast<const unsigned char*>(raw.data()) + 3, 1)));
  }
  if (raw.size() != expected)
    return fail(Errc::parse, str("security.capability revision ", caps.version, " must be ", expected, " bytes, not ", raw.size()));
  if (flags & ~k_flags_effective) {
    char hex[16];
    (void)std::snprintf(hex, sizeof hex, "0x%06x", flags);
    return fail(Errc::parse, str("security.capability has unknown flag bits ", hex));
  }
  caps.effective = (flags & k_flags_effective) != 0;
  for (std::size_t i = 0; i < words; ++i) {
    caps.permitted |= static_cast<std::uint64_t>(le32(raw, 4 + i * 8)) << (32 * i);
    caps.inheritable |= static_cast<std::uint64_t>(le32(raw, 8 + i * 8)) << (32 * i);
  }
  if (caps.version == 3) caps.rootid = le32(raw, k_size_2);
  return caps;
}

std::string cap_name(unsigned bit) {
  if (bit < k_names.size()) return std::string(k_names[bit]);
  return str("cap_", bit);
}

std::optional<unsigned> cap_number(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (unsigned i = 0; i < k_names.size(); ++i)
    if (k_names[i] == lower) return i;
  return std::nullopt;
}

std::vector<std::string> cap_names(std::uint64_t mask) {
  std::vector<std::string> out;
  for (unsigned bit = 0; bit < 64; ++bit)
    if (mask & (std::uint64_t{1} << bit)) out.push_back(cap_name(bit));
  return out;
}

std::string caps_text(const FileCaps& caps) {
  // Group capabilities by their flag letters, in the order getcap prints them (e, i, p).
  std::vector<std::pair<std::string, std::vector<std::string>>> groups;
  for (unsigned bit = 0; bit < 64; ++bit) {
    const std::uint64_t m = std::uint64_t{1} << bit;
    const bool p = caps.permitted & m, i = caps.inheritable & m;
    if (!p && !i) continue;
    std::string flags;
    if (caps.effective) flags += 'e';
    if (i) flags += 'i';
    if (p) flags += 'p';
    auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == flags; });
    if (it == groups.end()) {
      groups.push_back({flags, {}});
      it = std::prev(groups.end());
    }
    it->second.push_back(cap_name(bit));
  }
  std::string out;
  for (const auto& [flags, names] : groups) {
    if (!out.empty()) out += ' ';
    out += join(names, ",") + "=" + flags;
  }
  if (out.empty()) out = "=";
  if (caps.rootid) out += str(" [rootid=", *caps.rootid, "]");
  return out;
}

}  // namespace chrootctl::audit
