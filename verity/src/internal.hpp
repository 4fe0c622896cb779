#pragma once
// What verity.cpp (activation, in the front too) and verity_check.cpp (format and check, in
// chrootctl-full) share.

#include <libcryptsetup.h>

#include <cstdint>
#include <memory>
#include <string>

#include "chrootctl/common/error.hpp"
#include "chrootctl/common/manifest.hpp"

namespace chrootctl::verity::detail {

inline constexpr const char* k_hash = "sha256";
inline constexpr std::uint32_t k_hash_type = 1;
inline constexpr std::size_t k_salt_bytes = 32;
inline constexpr std::size_t k_root_hash_bytes = 32;

/// libcryptsetup's own messages (errors and verbose notes), collected into the std::string at
/// `usrptr` to explain a failure.
void collect_log(int level, const char* msg, void* usrptr);

struct DeviceDeleter {
  void operator()(crypt_device* cd) const { crypt_free(cd); }
};
using Device = std::unique_ptr<crypt_device, DeviceDeleter>;

/// A crypt_device over `device` (data and hash on it), with its log collected into `log` and
/// no metadata locking (a verity device has no metadata to lock, and the lock directory,
/// /run/cryptsetup, need not exist).
Result<Device> open_device(const std::string& device, std::string& log);

/// "WHAT: EIO (libcryptsetup's messages)".
std::string explain(const std::string& what, int r, const std::string& log);

/// Loads the superblock at `sealed.hash_offset` and checks that it describes the hash tree
/// chrootctl makes over exactly the filesystem before it, with the recorded salt: a superblock
/// changed to another algorithm, block size, data size or salt is refused before anything uses
/// it (the root hash would not match either, but the refusal then names the cause).
Status load_checked(crypt_device* cd, const std::string& image, const manifest::Sealed& sealed, std::uint32_t flags, const std::string& log);

/// The 32 raw bytes of a root hash given in hex.
Result<std::string> root_hash_bytes(const std::string& hex);

}  // namespace chrootctl::verity::detail
