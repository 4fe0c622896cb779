#pragma once
/// A check run on each entry of an archive while it is unpacked, so that the first entry that
/// is not what it should be stops the unpacking before anything of it is written. The builder's
/// extraction calls it (builder/extract.hpp); import supplies one that holds every entry to the
/// signature-checked manifest (distribution/src/import.cpp). It lives here so that neither of the
/// two has to know the other.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "chrootctl/common/error.hpp"
#include "chrootctl/common/manifest.hpp"
#include "chrootctl/common/sys.hpp"

namespace chrootctl {

/// An entry about to be unpacked, as its archive header describes it.
struct ArchiveEntry {
  std::string path;  ///< canonical, relative to the directory unpacked into ("/root/etc/hosts"; "/" for it)
  manifest::Type type = manifest::Type::file;
  std::uint32_t mode = 0;  ///< the 12 permission bits
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::uint64_t size = 0;        ///< regular files: the size the header gives
  bool sparse = false;           ///< the header describes holes (a sparse file)
  std::string target;            ///< symlinks
  std::uint32_t rdev_major = 0;  ///< devices
  std::uint32_t rdev_minor = 0;
  std::string hardlink;            ///< a hard link to this earlier entry (canonical path), or empty
  std::vector<sys::Xattr> xattrs;  ///< sorted by name; trusted.* and system.* already left out
};

/// What to write for an admitted entry.
struct Admission {
  bool skip = false;               ///< write nothing for it (and skip its data)
  std::uint32_t mode = 0;          ///< the permission bits to give it
  std::vector<sys::Xattr> xattrs;  ///< the attributes to give it
};

class UnpackCheck {
 public:
  virtual ~UnpackCheck() = default;
  /// Called before anything of `e` is written. An error stops the unpacking at once.
  virtual Result<Admission> begin(const ArchiveEntry& e) = 0;
  /// Each block of a regular file's data, in order, before it is written.
  virtual Status data(std::string_view block, std::uint64_t offset) = 0;
  /// After a regular file is written and its metadata set; `ino` is its inode number.
  virtual Status end(std::uint64_t ino) = 0;
};

}  // namespace chrootctl
