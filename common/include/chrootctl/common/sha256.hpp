#pragma once
/// SHA-256 through OpenSSL's EVP interface (uses the CPU's SHA extensions where present).

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "chrootctl/common/error.hpp"

namespace chrootctl {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;

  void update(const void* data, std::size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  /// Finishes and returns the lowercase hex digest; the object is reset for reuse.
  std::string hex_final();
  /// Finishes and returns the raw 32-byte digest; the object is reset for reuse.
  std::array<unsigned char, 32> raw_final();

  static std::string hex(std::string_view data);

 private:
  struct Ctx;
  std::unique_ptr<Ctx> m_ctx;
};

struct FileHash {
  std::string hex;
  std::uint64_t size = 0;  ///< bytes hashed
};
/// Hashes the open regular file `fd` from offset 0 to EOF. With `may_be_sparse` (the caller saw
/// fewer allocated blocks than the size), holes are hashed as the zeros they read as without
/// reading them. `label` names the file in errors. `expected_size` (from fstat, or UINT64_MAX)
/// lets a short read at that size end the loop without a final zero-length read.
Result<FileHash> sha256_fd(int fd, const std::string& label, bool may_be_sparse, std::uint64_t expected_size);
/// Opens and hashes a host file (for recipe inputs and archives).
Result<FileHash> sha256_file(const std::string& path);

}  // namespace chrootctl
