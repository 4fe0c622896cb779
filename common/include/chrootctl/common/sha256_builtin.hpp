#pragma once
/// SHA-256 without OpenSSL, for the one digest the front executable computes at every job
/// launch: the system-call policy's (seccomp/source.hpp). Loading libcrypto for it would cost
/// the front more than the whole filter (about half a millisecond; cli/lazy_libcrypto.cpp),
/// and a policy is a few kilobytes. Everything else hashes with OpenSSL (sha256.hpp); the unit
/// tests check that both agree.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace chrootctl {

/// FIPS 180-4 SHA-256, one message at a time.
class BuiltinSha256 {
 public:
  BuiltinSha256();
  void update(std::string_view data);
  /// Finishes and returns the lowercase hex digest; the object must not be used afterwards.
  std::string hex_final();

  static std::string hex(std::string_view data);

 private:
  void block(const unsigned char* p);
  std::array<std::uint32_t, 8> m_state;
  std::array<unsigned char, 64> m_buffer{};
  std::size_t m_buffered = 0;
  std::uint64_t m_length = 0;  ///< bytes hashed so far
};

}  // namespace chrootctl
