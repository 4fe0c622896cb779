#pragma once
/// Opening paths inside a tree (an image, or the new root being assembled) without ever leaving
/// it: openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS) where the kernel has it (5.6), else a
/// component-by-component walk with O_PATH|O_NOFOLLOW that refuses every symlink.

#include <string>
#include <string_view>

#include "chrootctl/common/error.hpp"
#include "chrootctl/common/fd.hpp"

namespace chrootctl::launcher {

enum class Symlinks {
  refuse,       ///< any symlink on the way is an error (mount targets of a job)
  inside_root,  ///< symlinks are followed, "/" and ".." clamped to the tree (build binds)
};

/// Opens `path` (absolute, normalized) inside the tree `rootfd` with O_PATH. Errc::not_found
/// when a component is missing; Errc::permission naming the symlink when one is refused.
/// `force_walk` uses the pre-openat2 walk (for tests); the walk always refuses symlinks.
Result<Fd> open_in_tree(int rootfd, const std::string& path, Symlinks symlinks, bool force_walk = false);

/// The deepest existing directory on the way to `path` (walked without following symlinks):
/// its fd and its path. Used to decide where a missing mount point must be made.
struct ExistingPrefix {
  Fd fd;
  std::string path;
};
Result<ExistingPrefix> deepest_existing(int rootfd, const std::string& path);

}  // namespace chrootctl::launcher
