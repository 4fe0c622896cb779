#include "chrootctl/common/files.hpp"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"

namespace chrootctl {

Status write_file_atomic(const std::string& path, std::string_view data, mode_t mode) {
  const auto slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  std::string tmpl = str(dir, "/.", base, ".tmp.XXXXXX");
  const int raw = ::mkostemp(tmpl.data(), O_CLOEXEC);
  if (raw < 0) return fail_errno(str("mkostemp(", quote(tmpl), ")"), errno);
  Fd fd(raw);
  auto cleanup = [&] { (void)sys::unlink_at(AT_FDCWD, tmpl); };
  if (::fchmod(fd.get(), mode) != 0) {
    const int err = errno;
    cleanup();
    return fail_errno(str("fchmod(", quote(tmpl), ")"), err);
  }
  if (auto r = sys::write_all(fd.get(), data); !r) {
    cleanup();
    return fail(std::move(r.error()).add_context(str("writing ", path)));
  }
  if (auto r = sys::fsync(fd.get()); !r) {
    cleanup();
    return fail(std::move(r.error()).add_context(str("writing ", path)));
  }
  fd.reset();
  if (auto r = sys::rename_at(AT_FDCWD, tmpl, AT_FDCWD, path); !r) {
    const int err = r.error().sys_errno();
    cleanup();
    return fail_errno(str("rename(", quote(tmpl), ", ", quote(path), ")"), err);
  }
  return sys::fsync_path(dir);
}

Result<LockFile> LockFile::acquire(const std::string& path, bool exclusive, bool nonblocking) {
  auto fd = TRY(sys::open_path(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NOCTTY, 0600));
  auto r = sys::flock(fd.get(), exclusive, nonblocking);
  if (!r) return fail(std::move(r.error()).add_context(str("locking ", path)));
  return LockFile(std::move(fd));
}

Result<TempDir> TempDir::create(const std::string& prefix) { return TempDir(TRY(sys::mkdtemp(prefix + "XXXXXX"))); }

TempDir::~TempDir() {
  if (!m_path.empty()) (void)sys::remove_tree(m_path);
}

std::string TempDir::release() {
  std::string p = std::move(m_path);
  m_path.clear();
  return p;
}

}  // namespace chrootctl
