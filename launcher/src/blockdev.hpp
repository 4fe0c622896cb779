#pragma once
// Block devices of sealed images: loop devices and the two read-only device-mapper queries a
// launch makes (the device number of a dm device, and whether dm-verity found a corrupted
// block). Like kernel.hpp, every call retries EINTR, captures errno and names itself in errors.
// Creating and removing dm-verity devices is libcryptsetup's (chrootctl::verity), not this
// file's.

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "chrootctl/common/error.hpp"
#include "chrootctl/common/fd.hpp"

namespace chrootctl::launcher::blockdev {

/// A loop device attached to a file, read-only, with LO_FLAGS_AUTOCLEAR: the kernel detaches it
/// when its last user closes it (this descriptor, the mount or the dm device on top), so a
/// killed launcher never leaves one attached.
struct Loop {
  Fd fd;             ///< the loop device, open read-only
  std::string path;  ///< "/dev/loopN"
  dev_t device = 0;
};
/// Attaches the regular file `file_fd` to a free loop device (LOOP_CONFIGURE, or LOOP_SET_FD and
/// LOOP_SET_STATUS64 before Linux 5.8). `label` names the file in errors.
Result<Loop> attach_loop(int file_fd, const std::string& label);

/// True if /dev/mapper/control exists: the kernel has device-mapper (dm-verity itself may be a
/// module that the kernel loads on first use).
bool have_device_mapper();

/// The device number of the dm device `name` (DM_DEV_STATUS); Errc::not_found if there is none.
Result<dev_t> dm_device(const std::string& name);

/// The state dm-verity reports for the device `name` (DM_TABLE_STATUS): 'V' verified so far,
/// 'C' a corrupted block was read (and failed with EIO).
Result<char> dm_verity_state(const std::string& name);

}  // namespace chrootctl::launcher::blockdev
