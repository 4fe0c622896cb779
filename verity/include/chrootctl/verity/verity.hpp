#pragma once
/// dm-verity for sealed images, through libcryptsetup (docs/sealed.md). chrootctl never computes
/// or checks a hash tree itself: libcryptsetup formats it (the builder), checks it in userspace
/// (verify, add, import) and activates it (the launch, through the front's lazy loader,
/// cli/lazy_libcryptsetup.cpp).
///
/// The hash tree chrootctl makes: SHA-256, 4096-byte data and hash blocks, hash format 1 (the
/// kernel's "normal" type), a 32-byte salt, with the verity superblock at `hash_offset` in the
/// same file as the filesystem it covers (`veritysetup format --hash-offset`), so the image
/// travels as one file.

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "chrootctl/common/error.hpp"
#include "chrootctl/common/manifest.hpp"

namespace chrootctl::verity {

inline constexpr std::uint32_t k_block_size = 4096;

/// What `format` wrote.
struct Formatted {
  std::string root_hash;          ///< 64 hex digits
  std::uint64_t hash_offset = 0;  ///< where the superblock and the hash tree start
  std::uint64_t size = 0;         ///< the whole file, after the hash tree
};

/// Appends a verity superblock and hash tree to `image`, a regular file holding a filesystem
/// (padded here to a whole number of 4096-byte blocks). `salt_hex` (64 hex digits) and `uuid`
/// ("xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx") are the caller's, so that the same filesystem gives
/// the same file and root hash every time.
Result<Formatted> format(const std::string& image, const std::string& salt_hex, const std::string& uuid);

/// Checks the whole hash tree of `image` (a file or block device) against `sealed.root_hash` in
/// userspace, reading every data and hash block, after checking that its verity superblock has
/// the parameters above and the recorded salt (`veritysetup verify`). Errc::mismatch when the
/// tree does not match.
Status verify(const std::string& image, const manifest::Sealed& sealed);

/// Activates the read-only dm-verity device `name` over `device` (a block device holding the
/// image file: the filesystem, then the superblock and hash tree at `sealed.hash_offset`), with
/// the recorded root hash. The superblock must have the parameters above and the recorded salt.
/// A block that does not match the tree then fails every read of it with EIO.
Status activate(const std::string& device, const std::string& name, const manifest::Sealed& sealed);

/// Removes the dm device `name`; with `deferred`, once its last user has closed it (the
/// kernel's deferred removal), so that a mount namespace still being torn down does not make
/// the removal fail. Not an error when no such device exists.
Status deactivate(const std::string& name, bool deferred);

/// The version of libcryptsetup chrootctl was built against ("2.6.1"), an input of sealed builds.
std::string library_version();

/// A UUID in text form from the first 16 bytes of a 64-hex-digit digest (for reproducible
/// filesystem and verity superblock UUIDs).
std::string uuid_from_digest(const std::string& hex);

}  // namespace chrootctl::verity
