#pragma once
/// Copying a host directory tree (the `directory` and `image` bases) into a tree being built,
/// keeping owners, modes, hard links, symlinks, device nodes, FIFOs, xattrs and mtimes.

#include <cstdint>
#include <functional>
#include <string>

#include "chrootctl/common/error.hpp"
#include "chrootctl/common/tree_writer.hpp"

namespace chrootctl::builder {

struct CopyStats {
  std::uint64_t entries = 0;
  std::uint64_t bytes = 0;
};

/// Copies everything below `source` (walked dirfd-relative, never following a symlink, never
/// crossing into another filesystem) into the writer's root, and the root directory's own
/// metadata. Sockets are skipped. Calls finish() on the writer.
Result<CopyStats> copy_tree(const std::string& source, TreeWriter& tree, const std::function<void(const CopyStats&)>& progress = {});

}  // namespace chrootctl::builder
