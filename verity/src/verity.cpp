// dm-verity through libcryptsetup: activation and removal (the front's part: it loads
// libcryptsetup lazily, cli/lazy_libcryptsetup.cpp), and what they share with verity_check.cpp.
#include "chrootctl/verity/verity.hpp"

#include <dlfcn.h>
#include <fcntl.h>
#include <libcryptsetup.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "internal.hpp"

namespace chrootctl::verity {

namespace detail {

void collect_log(int level, const char* msg, void* usrptr) {
  if (level != CRYPT_LOG_ERROR && level != CRYPT_LOG_NORMAL) return;
  auto* out = static_cast<std::string*>(usrptr);
  std::string m = msg ? msg : "";
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  if (m.empty()) return;
  if (!out->empty()) *out += "; ";
  *out += m;
}

Result<Device> open_device(const std::string& device, std::string& log) {
  crypt_device* cd = nullptr;
  if (const int r = crypt_init_data_device(&cd, device.c_str(), device.c_str()); r < 0)
    return fail_errno(str("crypt_init_data_device(", quote(device), ")"), -r);
  Device d(cd);
  crypt_set_log_callback(cd, collect_log, &log);
  if (const int r = crypt_metadata_locking(cd, 0); r < 0) return fail_errno("crypt_metadata_locking(0)", -r);
  return d;
}

std::string explain(const std::string& what, int r, const std::string& log) {
  return str(what, ": ", sys::errno_message(-r), log.empty() ? "" : str(" (", log, ")"));
}

Status load_checked(crypt_device* cd, const std::string& image, const manifest::Sealed& sealed, std::uint32_t flags, const std::string& log) {
  crypt_params_verity p{};
  p.hash_area_offset = sealed.hash_offset;
  p.flags = flags;
  if (const int r = crypt_load(cd, CRYPT_VERITY, &p); r < 0)
    return fail(Errc::mismatch, explain(str("reading the verity superblock of ", image, " at offset ", sealed.hash_offset), r, log));
  crypt_params_verity info{};
  if (const int r = crypt_get_verity_info(cd, &info); r < 0) return fail_errno(str("crypt_get_verity_info(", quote(image), ")"), -r);
  const std::string salt = info.salt ? to_hex(reinterpret_cast<const unsigned char*>(info.salt), info.salt_size) : "";
  std::string wrong;
  if (!info.hash_name || std::strcmp(info.hash_name, k_hash) != 0) wrong = str("hash ", info.hash_name ? info.hash_name : "(none)");
  else if (info.hash_type != k_hash_type) wrong = str("hash type ", info.hash_type);
  else if (info.data_block_size != k_block_size || info.hash_block_size != k_block_size)
    wrong = str("block sizes ", info.data_block_size, "/", info.hash_block_size);
  else if (info.data_size * k_block_size != sealed.hash_offset)
    wrong = str("a data area of ", info.data_size, " blocks, not ", sealed.hash_offset / k_block_size);
  else if (salt != sealed.salt) wrong = "another salt";
  if (!wrong.empty()) return fail(Errc::mismatch, str("the verity superblock of ", image, " has ", wrong, ", not what its manifest records"));
  return {};
}

Result<std::string> root_hash_bytes(const std::string& hex) {
  auto bytes = from_hex(hex);
  if (!bytes || bytes->size() != k_root_hash_bytes) return fail(Errc::invalid_argument, str("bad root hash ", quote(hex)));
  return std::move(*bytes);
}

}  // namespace detail

using namespace detail;

namespace {

// libdevmapper (under libcryptsetup) waits for udev to confirm each device it makes or removes
// whenever it believes udev runs, which it judges by /run/udev/control alone: a stale one (an
// initramfs's, a stopped udevd's) makes it wait forever. chrootctl needs no /dev/mapper node (it
// mounts through a node of its own), so it switches the waiting off. The front loads
// libcryptsetup with DM_DISABLE_UDEV set instead (cli/lazy_libcryptsetup.cpp), since there
// libdevmapper is not in the global scope this looks in.
void no_udev_sync() {
  using SetSync = void (*)(int);
  if (auto set = reinterpret_cast<SetSync>(::dlsym(RTLD_DEFAULT, "dm_udev_set_sync_support"))) set(0);
}

}  // namespace

Status activate(const std::string& device, const std::string& name, const manifest::Sealed& sealed) {
  no_udev_sync();
  const std::string root = TRY(root_hash_bytes(sealed.root_hash));
  std::string log;
  Device cd = TRY(open_device(device, log));
  TRY(load_checked(cd.get(), device, sealed, 0, log));
  if (const int r = crypt_activate_by_volume_key(cd.get(), name.c_str(), root.data(), root.size(), CRYPT_ACTIVATE_READONLY); r < 0)
    return fail(Errc::io, explain(str("activating the dm-verity device ", name, " over ", device), r, log));
  return {};
}

Status deactivate(const std::string& name, bool deferred) {
  no_udev_sync();
  crypt_device* raw = nullptr;
  if (const int r = crypt_init_by_name(&raw, name.c_str()); r < 0) {
    if (r == -ENODEV) return {};
    return fail_errno(str("crypt_init_by_name(", quote(name), ")"), -r);
  }
  Device cd(raw);
  std::string log;
  crypt_set_log_callback(raw, collect_log, &log);
  const int r = crypt_deactivate_by_name(raw, name.c_str(), deferred ? CRYPT_DEACTIVATE_DEFERRED : 0);
  if (r < 0 && r != -ENODEV) return fail(Errc::io, explain(str("removing the dm-verity device ", name), r, log));
  return {};
}

}  // namespace chrootctl::verity
