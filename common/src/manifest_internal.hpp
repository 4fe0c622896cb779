#pragma once
// Shared between the manifest sources; not part of the library's interface.
#include "chrootctl/common/manifest.hpp"

namespace chrootctl::manifest {

struct CompareOptions {
  bool content = true;  ///< sha256, link target, xattrs, hard-link groups
  bool stat = false;    ///< device, inode and ctime
};
DiffResult diff_with(const Manifest& expected, const Manifest& actual, const CompareOptions& opt);

}  // namespace chrootctl::manifest
