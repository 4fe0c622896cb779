// Loop devices and read-only device-mapper queries for sealed images (blockdev.hpp).
#include "blockdev.hpp"

#include <fcntl.h>
#include <linux/dm-ioctl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"

namespace chrootctl::launcher::blockdev {

namespace {

// Another launcher may take the free loop device between LOOP_CTL_GET_FREE and our
// configuration of it (EBUSY): ask for another, a bounded number of times.
constexpr int k_loop_attempts = 32;

int ioctl_retry(int fd, unsigned long request, void* arg) {
  return sys::retry_eintr([&] { return ::ioctl(fd, request, arg); });
}

// For the requests whose argument is a number (LOOP_SET_FD takes the descriptor itself).
int ioctl_retry_value(int fd, unsigned long request, unsigned long arg) {
  return sys::retry_eintr([&] { return ::ioctl(fd, request, arg); });
}

Result<Loop> configure(int file_fd, const std::string& label, int number) {
  Loop loop;
  loop.path = str("/dev/loop", number);
  loop.fd = TRY(sys::open_path(loop.path, O_RDONLY | O_CLOEXEC));
  loop_config config{};
  config.fd = static_cast<__u32>(file_fd);
  config.info.lo_flags = LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR;
  std::strncpy(reinterpret_cast<char*>(config.info.lo_file_name), label.c_str(), LO_NAME_SIZE - 1);
  if (ioctl_retry(loop.fd.get(), LOOP_CONFIGURE, &config) != 0) {
    const int err = errno;
    if (err != EINVAL && err != ENOTTY) return fail_errno(str("ioctl(", loop.path, ", LOOP_CONFIGURE, ", label, ")"), err);
    // Before Linux 5.8: attach, then set the flags. The device is ours (EBUSY otherwise)
    // between the two calls, and autoclear is set before this process can let go of it.
    if (ioctl_retry_value(loop.fd.get(), LOOP_SET_FD, static_cast<unsigned long>(file_fd)) != 0)
      return fail_errno(str("ioctl(", loop.path, ", LOOP_SET_FD, ", label, ")"), errno);
    if (ioctl_retry(loop.fd.get(), LOOP_SET_STATUS64, &config.info) != 0) {
      const int e = errno;
      (void)ioctl_retry(loop.fd.get(), LOOP_CLR_FD, nullptr);
      return fail_errno(str("ioctl(", loop.path, ", LOOP_SET_STATUS64, LO_FLAGS_READ_ONLY|LO_FLAGS_AUTOCLEAR)"), e);
    }
  }
  const auto st = TRY(sys::fstat(loop.fd.get()));
  if (!S_ISBLK(st.st_mode)) return fail(Errc::internal, str(loop.path, " is not a block device"));
  loop.device = st.st_rdev;
  return loop;
}

// One device-mapper ioctl on `name`, with room for the reply after the header.
struct DmReply {
  std::vector<unsigned char> buffer;
  [[nodiscard]] const dm_ioctl& header() const { return *reinterpret_cast<const dm_ioctl*>(buffer.data()); }
};
Result<DmReply> dm_call(unsigned long request, const char* request_name, const std::string& name, std::uint32_t flags) {
  if (name.empty() || name.size() >= DM_NAME_LEN) return fail(Errc::invalid_argument, str("bad device-mapper name ", quote(name)));
  Fd control = TRY(sys::open_path("/dev/mapper/control", O_RDWR | O_CLOEXEC));
  DmReply r;
  r.buffer.assign(16384, 0);
  auto* io = reinterpret_cast<dm_ioctl*>(r.buffer.data());
  io->version[0] = DM_VERSION_MAJOR;
  io->version[1] = 0;
  io->version[2] = 0;
  io->data_size = static_cast<__u32>(r.buffer.size());
  io->data_start = sizeof(dm_ioctl);
  io->flags = flags;
  std::memcpy(io->name, name.c_str(), name.size() + 1);
  if (ioctl_retry(control.get(), request, io) != 0) {
    const int err = errno;
    if (err == ENXIO) return fail(Errc::not_found, str("no device-mapper device ", quote(name)));
    return fail_errno(str("ioctl(/dev/mapper/control, ", request_name, ", ", quote(name), ")"), err);
  }
  if (io->flags & DM_BUFFER_FULL_FLAG) return fail(Errc::internal, str(request_name, " of ", quote(name), ": reply too long"));
  return r;
}

}  // namespace

Result<Loop> attach_loop(int file_fd, const std::string& label) {
  Fd control = TRY(sys::open_path("/dev/loop-control", O_RDWR | O_CLOEXEC));
  for (int attempt = 0; attempt < k_loop_attempts; ++attempt) {
    const int number = sys::retry_eintr([&] { return ::ioctl(control.get(), LOOP_CTL_GET_FREE); });
    if (number < 0) return fail_errno("ioctl(/dev/loop-control, LOOP_CTL_GET_FREE)", errno);
    auto loop = configure(file_fd, label, number);
    if (loop || loop.error().sys_errno() != EBUSY) return loop;
  }
  return fail(Errc::busy, str("no free loop device for ", label, " after ", k_loop_attempts, " attempts (others took each one first)"));
}

bool have_device_mapper() {
  // The node alone does not say: one left by a tool (dmsetup makes it) or made by hand on a
  // kernel without device-mapper answers ENODEV when opened, and every sealed launch would fail
  // where the SHA-256 check would have done. Opening it loads dm-mod where that is a module.
  auto control = sys::open_path("/dev/mapper/control", O_RDWR | O_CLOEXEC);
  if (!control) return false;
  const auto st = sys::fstat(control->get());
  return st && S_ISCHR(st->st_mode);
}

Result<dev_t> dm_device(const std::string& name) {
  const DmReply r = TRY(dm_call(DM_DEV_STATUS, "DM_DEV_STATUS", name, 0));
  // The kernel's huge_encode_dev: minor bits 0-7 and 20-31, major bits 8-19.
  const std::uint64_t dev = r.header().dev;
  const unsigned major = static_cast<unsigned>((dev >> 8) & 0xfff);
  const unsigned minor = static_cast<unsigned>((dev & 0xff) | ((dev >> 12) & 0xfff00));
  return makedev(major, minor);
}

Result<char> dm_verity_state(const std::string& name) {
  const DmReply r = TRY(dm_call(DM_TABLE_STATUS, "DM_TABLE_STATUS", name, 0));
  const dm_ioctl& io = r.header();
  if (io.target_count != 1 || io.data_start + sizeof(dm_target_spec) >= io.data_size)
    return fail(Errc::mismatch, str("device-mapper device ", quote(name), " has ", io.target_count, " targets, not one verity target"));
  const auto* spec = reinterpret_cast<const dm_target_spec*>(r.buffer.data() + io.data_start);
  const std::size_t text_at = io.data_start + sizeof(dm_target_spec);
  const std::size_t text_max = std::min<std::size_t>(io.data_size, r.buffer.size()) - text_at;
  const std::string type(spec->target_type, strnlen(spec->target_type, DM_MAX_TYPE_NAME));
  const std::string status(reinterpret_cast<const char*>(r.buffer.data() + text_at),
                           strnlen(reinterpret_cast<const char*>(r.buffer.data() + text_at), text_max));
  if (type != "verity") return fail(Errc::mismatch, str("device-mapper device ", quote(name), " is a ", type, " target, not verity"));
  if (status.empty() || (status[0] != 'V' && status[0] != 'C'))
    return fail(Errc::mismatch, str("unexpected dm-verity status of ", quote(name), ": ", quote(status)));
  return status[0];
}

}  // namespace chrootctl::launcher::blockdev
