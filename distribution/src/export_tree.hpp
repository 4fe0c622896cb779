#pragma once
// Reading an image's tree in manifest order, for export and publishing (a copy is made with
// common/tree_writer.hpp). Not part of the API.
//
// It works entry by entry from a manifest that was checked to be the registered one: every
// entry is reached from the root one component at a time with O_DIRECTORY|O_NOFOLLOW, so no
// symlink in the tree is ever followed, and each entry is compared with its manifest line as it
// is read (type, mode, owner, size, link target, device numbers, xattrs; the contents' SHA-256
// as they stream). A tree that changed since it was verified is refused, never exported.

#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chrootctl/common/error.hpp"
#include "chrootctl/common/fd.hpp"
#include "chrootctl/common/manifest.hpp"
#include "chrootctl/common/sha256.hpp"

namespace chrootctl::distribution::detail {

/// Opens entries of one tree by their manifest paths.
class TreeReader {
 public:
  static Result<TreeReader> open(const std::string& root);
  [[nodiscard]] const std::string& root() const { return m_root_path; }
  /// The directory holding `path` (not "/"), reached without following symlinks; cached for
  /// consecutive entries of one directory. The fd stays owned by the reader.
  Result<int> parent(std::string_view path);
  /// The regular file `e` open for reading, after checking that it is one, with the manifest's
  /// mode, owner, size and xattrs.
  Result<Fd> open_file(const manifest::Entry& e);
  /// Checks a directory, symlink, device, FIFO or socket against its manifest line (lstat,
  /// readlinkat, xattrs through the pinned parent).
  Status check_other(const manifest::Entry& e);
  /// Checks the tree's own root directory ("/").
  Status check_root_entry(const manifest::Entry& e);

 private:
  TreeReader(Fd root, std::string path) : m_root(std::move(root)), m_root_path(std::move(path)) {}
  Fd m_root;
  std::string m_root_path;
  std::string m_cached;
  Fd m_cached_fd;
};

/// What an entry is on disk compared with its manifest line: "" when they agree, else one
/// clause such as "mode 0600, not 0644".
std::string compare_meta(const manifest::Entry& e, const struct stat& st);

/// Streams the contents of the open file `fd` to `sink` in chunks, hashing them; fails with
/// Errc::mismatch naming `label` when the size or SHA-256 differ from `e`.
template <class Sink>
Status stream_checked(int fd, const manifest::Entry& e, const std::string& label, Sink&& sink);

Status stream_checked_impl(int fd, const manifest::Entry& e, const std::string& label, const std::function<Status(const char*, std::size_t)>& sink);
template <class Sink>
Status stream_checked(int fd, const manifest::Entry& e, const std::string& label, Sink&& sink) {
  return stream_checked_impl(fd, e, label, std::function<Status(const char*, std::size_t)>(std::forward<Sink>(sink)));
}

/// Xattr names an archive round trip through the builder's extraction does not restore
/// (trusted.* and system.*): an image holding them cannot be exported faithfully.
bool unrestorable_xattr(std::string_view name);

}  // namespace chrootctl::distribution::detail
