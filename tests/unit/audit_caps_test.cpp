// Decoding of security.capability values (VFS_CAP_REVISION_1/2/3) into capability names.
#include <gtest/gtest.h>

#include <string>

#include "chrootctl/audit/caps.hpp"

namespace chrootctl::audit {
namespace {

std::string le32(std::uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[static_cast<std::size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

std::string v2(std::uint32_t flags, std::uint64_t permitted, std::uint64_t inheritable) {
  return le32(0x02000000u | flags) + le32(static_cast<std::uint32_t>(permitted)) + le32(static_cast<std::uint32_t>(inheritable)) +
         le32(static_cast<std::uint32_t>(permitted >> 32)) + le32(static_cast<std::uint32_t>(inheritable >> 32));
}

TEST(AuditCaps, DecodesRevision2WithEffectiveFlag) {
  // What `setcap cap_net_raw+ep` writes.
  auto c = decode_caps(v2(1, 1ull << 13, 0));
  ASSERT_TRUE(c) << c.error().what();
  EXPECT_EQ(c->version, 2);
  EXPECT_TRUE(c->effective);
  EXPECT_EQ(c->permitted, 1ull << 13);
  EXPECT_EQ(c->inheritable, 0u);
  EXPECT_FALSE(c->rootid);
  EXPECT_EQ(caps_text(*c), "cap_net_raw=ep");
}

TEST(AuditCaps, DecodesHighWordsAndGroupsByFlags) {
  // cap_bpf (39) and cap_perfmon (38) live in the second 32-bit word.
  auto c = decode_caps(v2(0, (1ull << 39) | (1ull << 38) | (1ull << 12), (1ull << 12) | (1ull << 0)));
  ASSERT_TRUE(c) << c.error().what();
  EXPECT_FALSE(c->effective);
  EXPECT_EQ(cap_names(c->permitted), (std::vector<std::string>{"cap_net_admin", "cap_perfmon", "cap_bpf"}));
  EXPECT_EQ(caps_text(*c), "cap_chown=i cap_net_admin=ip cap_perfmon,cap_bpf=p");
}

TEST(AuditCaps, DecodesRevision3WithRootid) {
  const std::string raw = le32(0x03000001u) + le32(1u << 10) + le32(0) + le32(0) + le32(0) + le32(100000);
  auto c = decode_caps(raw);
  ASSERT_TRUE(c) << c.error().what();
  EXPECT_EQ(c->version, 3);
  ASSERT_TRUE(c->rootid);
  EXPECT_EQ(*c->rootid, 100000u);
  EXPECT_EQ(caps_text(*c), "cap_net_bind_service=ep [rootid=100000]");
}

TEST(AuditCaps, DecodesRevision1) {
  auto c = decode_caps(le32(0x01000000u) + le32(1u << 21) + le32(0));
  ASSERT_TRUE(c) << c.error().what();
  EXPECT_EQ(c->version, 1);
  EXPECT_EQ(caps_text(*c), "cap_sys_admin=p");
}

TEST(AuditCaps, RejectsMalformedValues) {
  EXPECT_EQ(decode_caps("ab").error().message(), "security.capability value of 2 bytes is too short");
  EXPECT_EQ(decode_caps(le32(0x05000000u) + std::string(16, '\0')).error().message(), "security.capability has unknown revision 0x05");
  EXPECT_EQ(decode_caps(le32(0x02000000u) + std::string(12, '\0')).error().message(), "security.capability revision 2 must be 20 bytes, not 16");
  EXPECT_EQ(decode_caps(le32(0x03000000u) + std::string(16, '\0')).error().message(), "security.capability revision 3 must be 24 bytes, not 20");
  EXPECT_EQ(decode_caps(le32(0x02000010u) + std::string(16, '\0')).error().message(), "security.capability has unknown flag bits 0x000010");
}

TEST(AuditCaps, NamesAndNumbers) {
  EXPECT_EQ(cap_name(0), "cap_chown");
  EXPECT_EQ(cap_name(40), "cap_checkpoint_restore");
  EXPECT_EQ(cap_name(50), "cap_50");
  EXPECT_EQ(cap_number("CAP_NET_RAW"), 13u);
  EXPECT_EQ(cap_number("cap_nonsense"), std::nullopt);
  EXPECT_EQ(caps_text(FileCaps{}), "=");
}

}  // namespace
}  // namespace chrootctl::audit
