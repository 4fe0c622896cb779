#pragma once
/// Creates entries inside a tree being built, safely. Every entry is created relative to an
/// open directory descriptor: parents are walked one component at a time with
/// O_DIRECTORY|O_NOFOLLOW (so no symlink is ever followed, whoever planted it), the last
/// component is created with openat/mkdirat/symlinkat/linkat/mknodat and never followed, and
/// paths are canonical before they get here ("." / ".." / absolute names are refused by
/// normalize_entry_path). Used by archive and OCI extraction, directory and image copies,
/// [[files]] and [layout] (the builder), and by publishing a copy of an image (distribution).

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chrootctl/common/error.hpp"
#include "chrootctl/common/fd.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/common/tree_path.hpp"

namespace chrootctl {

/// Metadata applied to a created entry.
struct EntryMeta {
  std::uint32_t mode = 0644;  ///< 12 permission bits
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::int64_t mtime_sec = 0;
  std::uint32_t mtime_nsec = 0;
  std::vector<sys::Xattr> xattrs;
};

class TreeWriter {
 public:
  /// Opens `root`, which must be an existing directory (not a symlink). With `exclusive`, for
  /// a copy into a directory made for it, every entry must be new: one already at a path is an
  /// error (Errc::exists), never replaced or merged.
  static Result<TreeWriter> open(const std::string& root, bool exclusive = false);

  [[nodiscard]] int root_fd() const { return m_root.get(); }
  [[nodiscard]] const std::string& root() const { return m_root_path; }

  /// The directory holding `path` (canonical, not "/"), opened O_DIRECTORY|O_NOFOLLOW one
  /// component at a time; missing directories are created (0755, 0:0) when `create`. A symlink
  /// or non-directory on the way is an error: nothing is ever written through a symlink.
  Result<Fd> open_parent(std::string_view path, bool create = true);
  /// Opens an existing entry's parent and says whether the entry exists (lstat, no follow).
  Result<bool> exists(std::string_view path);

  /// A directory. An existing directory is kept (its metadata is updated); anything else at
  /// the path is replaced. Directory metadata is applied by finish(), after the contents.
  Status make_dir(std::string_view path, const EntryMeta& meta);
  /// Creates a new regular file (replacing what is there) and returns it open for writing.
  /// Call finish_file() when the data is written.
  Result<Fd> create_file(std::string_view path);
  /// Applies owner, mode (after the owner: chown clears setuid bits), xattrs (after the owner:
  /// chown clears security.capability) and mtime.
  Status finish_file(int fd, std::string_view path, const EntryMeta& meta);
  Status make_symlink(std::string_view path, const std::string& target, const EntryMeta& meta);
  /// A hard link to the existing non-directory `target` (a canonical tree path), resolved
  /// inside the tree without following symlinks.
  Status make_hardlink(std::string_view path, std::string_view target);
  /// A hard link at `path` to the open file `fd` of another tree on the same filesystem, made
  /// to exactly the inode that was opened. Errc::unsupported on EXDEV or EMLINK (copy instead).
  Status link_to_open_file(std::string_view path, int fd);
  /// A character or block device, FIFO (type is S_IFCHR, S_IFBLK or S_IFIFO).
  Status make_node(std::string_view path, mode_t type, dev_t rdev, const EntryMeta& meta);
  /// Removes the entry at `path` (a whole directory tree), if present. Never follows symlinks.
  Status remove(std::string_view path);
  /// Removes everything inside the directory `path` whose path is not in `keep` (sorted).
  Status remove_children_except(std::string_view path, const std::vector<std::string>& keep);

  /// Applies deferred directory metadata, deepest first. Call once at the end.
  Status finish();

 private:
  explicit TreeWriter(Fd root, std::string path, bool exclusive) : m_root(std::move(root)), m_root_path(std::move(path)), m_exclusive(exclusive) {}
  Status clear_for(int parent, const std::string& name, bool keep_dir, std::string_view path);
  Status apply_meta_at(int parent, const std::string& name, std::string_view path, const EntryMeta& meta, bool is_symlink);

  Fd m_root;
  std::string m_root_path;
  bool m_exclusive;
  std::string m_cached_parent;  ///< path whose fd is m_cached_fd ("" = none)
  Fd m_cached_fd;
  std::vector<std::pair<std::string, EntryMeta>> m_dirs;
};

}  // namespace chrootctl
