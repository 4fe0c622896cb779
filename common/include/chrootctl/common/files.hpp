#pragma once
/// File-level guards: atomic replacement, lock files, temporary directories.

#include <sys/types.h>

#include <string>
#include <string_view>

#include "chrootctl/common/error.hpp"
#include "chrootctl/common/fd.hpp"

namespace chrootctl {

/// Replaces `path` with `data`: writes a temporary file in the same directory, fsyncs it,
/// renames it over `path` and fsyncs the directory. A reader sees the old or the new file,
/// never a torn one, even if the process is killed at any point.
Status write_file_atomic(const std::string& path, std::string_view data, mode_t mode = 0644);

/// An flock(2)-held lock file, released on destruction.
class LockFile {
 public:
  /// Opens (creating, mode 0600) and locks `path`. Blocks unless `nonblocking`, in which case a
  /// lock held elsewhere gives Errc::busy.
  static Result<LockFile> acquire(const std::string& path, bool exclusive = true, bool nonblocking = false);
  [[nodiscard]] int fd() const { return m_fd.get(); }

 private:
  explicit LockFile(Fd fd) : m_fd(std::move(fd)) {}
  Fd m_fd;
};

/// A directory removed (recursively, not crossing mounts) on destruction unless released.
class TempDir {
 public:
  /// Creates a new directory from a mkdtemp template prefix: `prefix` + "XXXXXX".
  static Result<TempDir> create(const std::string& prefix);
  TempDir(TempDir&& o) noexcept : m_path(std::move(o.m_path)) { o.m_path.clear(); }
  TempDir& operator=(TempDir&&) = delete;
  TempDir(const TempDir&) = delete;
  ~TempDir();
  [[nodiscard]] const std::string& path() const { return m_path; }
  /// Keeps the directory; returns its path.
  std::string release();

 private:
  explicit TempDir(std::string path) : m_path(std::move(path)) {}
  std::string m_path;
};

}  // namespace chrootctl
