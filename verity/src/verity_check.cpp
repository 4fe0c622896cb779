// dm-verity through libcryptsetup: the hash tree made for a sealed build, and checked in
// userspace by verify, add, sign and import. Apart from verity.cpp, so that the front, which
// only activates and removes devices, links none of this (nor the libcryptsetup functions it
// calls).
#include <fcntl.h>
#include <libcryptsetup.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/verity/verity.hpp"
#include "internal.hpp"

namespace chrootctl::verity {

using namespace detail;

std::string library_version() { return CHROOTCTL_CRYPTSETUP_VERSION; }

std::string uuid_from_digest(const std::string& hex) {
  const std::string h = hex.substr(0, 32);
  return str(h.substr(0, 8), "-", h.substr(8, 4), "-", h.substr(12, 4), "-", h.substr(16, 4), "-", h.substr(20, 12));
}

Result<Formatted> format(const std::string& image, const std::string& salt_hex, const std::string& uuid) {
  auto salt = from_hex(salt_hex);
  if (!salt || salt->size() != k_salt_bytes) return fail(Errc::invalid_argument, str("bad verity salt ", quote(salt_hex)));
  // The data area is whole blocks: pad the filesystem image (its tools write whole blocks, so
  // this changes nothing for them).
  std::uint64_t data_size = 0;
  {
    Fd fd = TRY(sys::open_path(image, O_RDWR | O_NOFOLLOW));
    const auto st = TRY(sys::fstat(fd.get()));
    if (!S_ISREG(st.st_mode) || st.st_size <= 0) return fail(Errc::invalid_argument, str(image, " is not a non-empty regular file"));
    data_size = (static_cast<std::uint64_t>(st.st_size) + k_block_size - 1) / k_block_size * k_block_size;
    if (data_size != static_cast<std::uint64_t>(st.st_size) && ::ftruncate(fd.get(), static_cast<off_t>(data_size)) != 0)
      return fail_errno(str("ftruncate(", quote(image), ", ", data_size, ")"), errno);
  }
  std::string log;
  Device cd = TRY(open_device(image, log));
  crypt_params_verity p{};
  p.hash_name = k_hash;
  p.data_device = image.c_str();
  p.salt = salt->data();
  p.salt_size = static_cast<std::uint32_t>(salt->size());
  p.hash_type = k_hash_type;
  p.data_block_size = k_block_size;
  p.hash_block_size = k_block_size;
  p.data_size = data_size / k_block_size;
  p.hash_area_offset = data_size;
  p.flags = CRYPT_VERITY_CREATE_HASH;
  if (const int r = crypt_format(cd.get(), CRYPT_VERITY, nullptr, nullptr, uuid.c_str(), nullptr, 0, &p); r < 0)
    return fail(Errc::io, explain(str("making the dm-verity hash tree of ", image), r, log));
  char root[k_root_hash_bytes];
  std::size_t root_size = sizeof root;
  if (const int r = crypt_volume_key_get(cd.get(), CRYPT_ANY_SLOT, root, &root_size, nullptr, 0); r < 0 || root_size != sizeof root)
    return fail(Errc::io, explain(str("reading the root hash of ", image), r < 0 ? r : -EINVAL, log));
  Formatted f;
  f.root_hash = to_hex(reinterpret_cast<const unsigned char*>(root), root_size);
  f.hash_offset = data_size;
  const auto st = TRY(sys::stat_path(image));
  f.size = static_cast<std::uint64_t>(st.st_size);
  return f;
}

Status verify(const std::string& image, const manifest::Sealed& sealed) {
  const std::string root = TRY(root_hash_bytes(sealed.root_hash));
  std::string log;
  Device cd = TRY(open_device(image, log));
  TRY(load_checked(cd.get(), image, sealed, CRYPT_VERITY_CHECK_HASH, log));
  // No name: libcryptsetup only checks (every data and hash block, up to the root hash).
  if (const int r = crypt_activate_by_volume_key(cd.get(), nullptr, root.data(), root.size(), 0); r < 0) {
    // libcryptsetup: -EPERM when a block does not match its hash, -EFAULT when the tree does not
    // lead to the root hash.
    if (r == -EPERM || r == -EFAULT)
      return fail(Errc::mismatch,
                  str(image, " does not match its dm-verity root hash ", sealed.root_hash, " (", log.empty() ? "a block was changed" : log, ")"));
    return fail(Errc::io, explain(str("checking the dm-verity hash tree of ", image), r, log));
  }
  return {};
}

}  // namespace chrootctl::verity
