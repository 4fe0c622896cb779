#include "chrootctl/common/sys.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "chrootctl/common/strings.hpp"

namespace chrootctl::sys {

namespace {
std::string dir_label(int dirfd) {
  if (dirfd == AT_FDCWD) return "AT_FDCWD";
  return str("fd ", dirfd);
}

std::string flags_label(int flags) {
  std::string out;
  auto add = [&](int bit, const char* name) {
    if (flags & bit) {
      if (!out.empty()) out += '|';
      out += name;
    }
  };
  switch (flags & O_ACCMODE) {
    case O_RDONLY:
      out = "O_RDONLY";
      break;
    case O_WRONLY:
      out = "O_WRONLY";
      break;
    case O_RDWR:
      out = "O_RDWR";
      break;
  }
  if ((flags & O_PATH) == O_PATH) out = "O_PATH";
  add(O_CREAT, "O_CREAT");
  add(O_EXCL, "O_EXCL");
  add(O_TRUNC, "O_TRUNC");
  add(O_DIRECTORY, "O_DIRECTORY");
  add(O_NOFOLLOW, "O_NOFOLLOW");
  return out;
}

std::string node_type_label(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFCHR:
      return "S_IFCHR";
    case S_IFBLK:
      return "S_IFBLK";
    case S_IFIFO:
      return "S_IFIFO";
    case S_IFSOCK:
      return "S_IFSOCK";
    default:
      return "S_IFREG";
  }
}
}  // namespace

std::string errno_message(int err) { return std::strerror(err); }

Result<Fd> open_at(int dirfd, const std::string& path, int flags, mode_t mode) {
  const int fd = retry_eintr([&] { return ::openat(dirfd, path.c_str(), flags | O_CLOEXEC, mode); });
  if (fd < 0) return fail_errno(str("openat(", dir_label(dirfd), ", ", quote(path), ", ", flags_label(flags), ")"), errno);
  return Fd(fd);
}

Result<Fd> open_path(const std::string& path, int flags, mode_t mode) {
  const int fd = retry_eintr([&] { return ::open(path.c_str(), flags | O_CLOEXEC, mode); });
  if (fd < 0) return fail_errno(str("open(", quote(path), ", ", flags_label(flags), ")"), errno);
  return Fd(fd);
}

Result<Fd> open_dir_at(int dirfd, const std::string& name) { return open_at(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW); }

Result<Fd> open_dir(const std::string& path) { return open_path(path, O_RDONLY | O_DIRECTORY); }

Result<Fd> open_in_root(int rootfd, const std::string& path, int flags, bool no_symlinks) {
  struct open_how how {};
  how.flags = static_cast<std::uint64_t>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  if (no_symlinks) how.resolve |= RESOLVE_NO_SYMLINKS;
  const long fd = retry_eintr([&] { return ::syscall(SYS_openat2, rootfd, path.c_str(), &how, sizeof how); });
  if (fd < 0) {
    const int err = errno;
    if (err == ENOSYS) return fail(Errc::unsupported, "openat2 is not available on this kernel (Linux 5.6 or later is required)");
    return fail_errno(str("openat2(", dir_label(rootfd), ", ", quote(path), ", RESOLVE_IN_ROOT", no_symlinks ? "|RESOLVE_NO_SYMLINKS" : "", ")"),
                      err);
  }
  return Fd(static_cast<int>(fd));
}

Result<struct stat> fstat(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return fail_errno(str("fstat(fd ", fd, ")"), errno);
  return st;
}

Result<struct stat> lstat_at(int dirfd, const std::string& name) {
  struct stat st {};
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
    return fail_errno(str("fstatat(", dir_label(dirfd), ", ", quote(name), ", AT_SYMLINK_NOFOLLOW)"), errno);
  return st;
}

Result<struct stat> stat_path(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return fail_errno(str("stat(", quote(path), ")"), errno);
  return st;
}

Result<struct stat> lstat_path(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return fail_errno(str("lstat(", quote(path), ")"), errno);
  return st;
}

Result<std::string> readlink_at(int dirfd, const std::string& name) {
  std::string buf(256, '\0');
  while (true) {
    const ssize_t n = ::readlinkat(dirfd, name.c_str(), buf.data(), buf.size());
    if (n < 0) return fail_errno(str("readlinkat(", dir_label(dirfd), ", ", quote(name), ")"), errno);
    if (static_cast<std::size_t>(n) < buf.size()) {
      buf.resize(static_cast<std::size_t>(n));
      return buf;
    }
    buf.resize(buf.size() * 2);
  }
}

Result<std::string> read_fd(int fd, std::size_t limit) {
  // Read in place: sized from fstat for a regular file (one more byte to see the end), so a
  // large file is neither copied nor reallocated on the way; grown by doubling from one page
  // otherwise (proc and cgroup files report no size). The buffer is zero-filled as it is
  // made, so it starts no larger than the file: the launch reads a dozen small files.
  std::size_t want = 4096;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) want = std::min<std::size_t>(static_cast<std::size_t>(st.st_size), limit) + 1;
  std::string out(want, '\0');
  std::size_t used = 0;
  while (true) {
    if (used == out.size()) out.resize(out.size() * 2);
    const ssize_t n = retry_eintr([&] { return ::read(fd, out.data() + used, out.size() - used); });
    if (n < 0) return fail_errno(str("read(fd ", fd, ")"), errno);
    if (n == 0) break;
    used += static_cast<std::size_t>(n);
    if (used > limit) return fail(Errc::invalid_argument, str("file is larger than ", human_size(limit)));
  }
  out.resize(used);
  return out;
}

Result<std::string> read_file(const std::string& path, std::size_t limit) {
  auto fd = TRY(open_path(path, O_RDONLY | O_NOFOLLOW | O_NOCTTY));
  return with_context(read_fd(fd.get(), limit), str("reading ", path));
}

Status write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = retry_eintr([&] { return ::write(fd, data.data(), data.size()); });
    if (n < 0) return fail_errno(str("write(fd ", fd, ")"), errno);
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

Status mkdir_at(int dirfd, const std::string& name, mode_t mode, bool exist_ok) {
  if (::mkdirat(dirfd, name.c_str(), mode) != 0 && !(exist_ok && errno == EEXIST))
    return fail_errno(str("mkdirat(", dir_label(dirfd), ", ", quote(name), ", ", mode_octal(mode), ")"), errno);
  return {};
}

Result<Fd> open_dirs_below(int base, const std::string& base_label, std::string_view rel, const MakeDir& make, std::string_view remedy) {
  const auto parts = split(rel, '/');
  if (std::find(parts.begin(), parts.end(), "..") != parts.end()) return fail(Errc::invalid_argument, str(quote(rel), " must not contain '..'"));
  Fd cur;  // none yet: `base` itself
  std::string label = base_label;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (parts[i].empty() || parts[i] == ".") continue;
    label += "/" + parts[i];
    const bool last =
        std::all_of(parts.begin() + static_cast<std::ptrdiff_t>(i) + 1, parts.end(), [](const std::string& p) { return p.empty() || p == "."; });
    // Opened first (it exists on every call but the first), made only when missing.
    const int at = cur ? cur.get() : base;
    auto next = open_at(at, parts[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (!next && next.error().sys_errno() == ENOENT) {
      TRY(make(at, parts[i], label, last));
      next = open_at(at, parts[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    }
    if (!next && (next.error().sys_errno() == ELOOP || next.error().sys_errno() == ENOTDIR))
      return fail(Errc::permission, str(quote(label), " is a symlink or not a directory; ", remedy));
    if (!next) return fail(std::move(next.error()));
    cur = std::move(*next);
  }
  if (!cur) return open_at(base, ".", O_RDONLY | O_DIRECTORY);
  return cur;
}

Status mkdir_path(const std::string& path, mode_t mode, bool exist_ok) {
  if (::mkdir(path.c_str(), mode) != 0 && !(exist_ok && errno == EEXIST))
    return fail_errno(str("mkdir(", quote(path), ", ", mode_octal(mode), ")"), errno);
  return {};
}

Status chmod_dir(const std::string& path, mode_t mode) {
  auto fd = TRY(open_path(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  if (::fchmod(fd.get(), mode) != 0) return fail_errno(str("chmod(", quote(path), ", ", mode_octal(mode), ")"), errno);
  return {};
}

Status chmod_at(int dirfd, const std::string& name, mode_t mode, int flags) {
  if (::fchmodat(dirfd, name.c_str(), mode, flags) != 0)
    return fail_errno(str("fchmodat(", dir_label(dirfd), ", ", quote(name), ", ", mode_octal(mode),
                          flags & AT_SYMLINK_NOFOLLOW ? ", AT_SYMLINK_NOFOLLOW" : "", ")"),
                      errno);
  return {};
}

Status chown_at(int dirfd, const std::string& name, uid_t uid, gid_t gid, int flags) {
  if (::fchownat(dirfd, name.c_str(), uid, gid, flags) != 0)
    return fail_errno(
        str("fchownat(", dir_label(dirfd), ", ", quote(name), ", ", uid, ", ", gid, flags & AT_SYMLINK_NOFOLLOW ? ", AT_SYMLINK_NOFOLLOW" : "", ")"),
        errno);
  return {};
}

Status utimens_at(int dirfd, const std::string& name, const struct timespec times[2], int flags) {
  if (::utimensat(dirfd, name.c_str(), times, flags) != 0)
    return fail_errno(str("utimensat(", dir_label(dirfd), ", ", quote(name), flags & AT_SYMLINK_NOFOLLOW ? ", AT_SYMLINK_NOFOLLOW" : "", ")"), errno);
  return {};
}

Status symlink_at(const std::string& target, int dirfd, const std::string& name) {
  if (::symlinkat(target.c_str(), dirfd, name.c_str()) != 0)
    return fail_errno(str("symlinkat(", quote(target), ", ", dir_label(dirfd), ", ", quote(name), ")"), errno);
  return {};
}

Status mknod_at(int dirfd, const std::string& name, mode_t mode, dev_t dev) {
  if (::mknodat(dirfd, name.c_str(), mode, dev) != 0)
    return fail_errno(str("mknodat(", dir_label(dirfd), ", ", quote(name), ", ", node_type_label(mode), "|", mode_octal(mode), ", ", major(dev), ":",
                          minor(dev), ")"),
                      errno);
  return {};
}

Result<std::string> random_hex(std::size_t bytes) {
  std::string raw(bytes, '\0');
  std::size_t got = 0;
  while (got < raw.size()) {
    const ssize_t n = retry_eintr([&] { return ::getrandom(raw.data() + got, raw.size() - got, 0); });
    if (n <= 0) return fail_errno(str("getrandom(", bytes, " bytes)"), n < 0 ? errno : EIO);
    got += static_cast<std::size_t>(n);
  }
  return to_hex(reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
}

Result<std::string> mkdtemp(std::string tmpl) {
  const std::string shown = tmpl;
  if (::mkdtemp(tmpl.data()) == nullptr) return fail_errno(str("mkdtemp(", quote(shown), ")"), errno);
  return tmpl;
}

Status access_path(const std::string& path, int mode) {
  if (retry_eintr([&] { return ::access(path.c_str(), mode); }) != 0) return fail_errno(str("access(", quote(path), ")"), errno);
  return {};
}

Status chdir(const std::string& path) {
  if (::chdir(path.c_str()) != 0) return fail_errno(str("chdir(", quote(path), ")"), errno);
  return {};
}

Result<std::string> realpath(const std::string& path) {
  std::unique_ptr<char, decltype(&::free)> real(::realpath(path.c_str(), nullptr), &::free);
  if (!real) return fail_errno(str("realpath(", quote(path), ")"), errno);
  return std::string(real.get());
}

Result<std::optional<std::string>> get_xattr_path(const std::string& path, const std::string& name) {
  std::string buf(256, '\0');
  while (true) {
    const ssize_t n = ::lgetxattr(path.c_str(), name.c_str(), buf.data(), buf.size());
    if (n >= 0) {
      buf.resize(static_cast<std::size_t>(n));
      return std::optional<std::string>(std::move(buf));
    }
    if (errno == ENODATA) return std::optional<std::string>();
    if (errno != ERANGE) return fail_errno(str("lgetxattr(", quote(path), ", ", quote(name), ")"), errno);
    buf.resize(buf.size() * 4);
  }
}

Status remove_xattr_path(const std::string& path, const std::string& name) {
  if (::lremovexattr(path.c_str(), name.c_str()) != 0) return fail_errno(str("lremovexattr(", quote(path), ", ", quote(name), ")"), errno);
  return {};
}

Status mkdir_p(const std::string& path, mode_t mode) {
  if (path.empty()) return fail(Errc::invalid_argument, "mkdir_p: empty path");
  std::string cur;
  std::size_t pos = 0;
  while (pos <= path.size()) {
    const auto next = path.find('/', pos);
    cur = path.substr(0, next == std::string::npos ? path.size() : next);
    pos = next == std::string::npos ? path.size() + 1 : next + 1;
    if (cur.empty()) continue;
    if (::mkdir(cur.c_str(), mode) != 0 && errno != EEXIST) return fail_errno(str("mkdir(", quote(cur), ", ", mode_octal(mode), ")"), errno);
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return fail_errno(str("stat(", quote(path), ")"), errno);
  if (!S_ISDIR(st.st_mode)) return fail(Errc::exists, str(quote(path), " exists and is not a directory"));
  return {};
}

Status unlink_at(int dirfd, const std::string& name, int flags) {
  if (::unlinkat(dirfd, name.c_str(), flags) != 0)
    return fail_errno(str("unlinkat(", dir_label(dirfd), ", ", quote(name), flags & AT_REMOVEDIR ? ", AT_REMOVEDIR" : "", ")"), errno);
  return {};
}

Status rename_at(int olddirfd, const std::string& oldname, int newdirfd, const std::string& newname, unsigned flags) {
  if (::renameat2(olddirfd, oldname.c_str(), newdirfd, newname.c_str(), flags) != 0)
    return fail_errno(str("renameat2(", quote(oldname), ", ", quote(newname), ")"), errno);
  return {};
}

Status fsync(int fd) {
  if (retry_eintr([&] { return ::fsync(fd); }) != 0) return fail_errno(str("fsync(fd ", fd, ")"), errno);
  return {};
}

Status fsync_path(const std::string& dir) {
  auto fd = TRY(open_path(dir, O_RDONLY | O_DIRECTORY));
  return fsync(fd.get());
}

Result<std::vector<DirEntry>> read_dir(int dirfd, bool rewind) {
  // getdents64 on a duplicate so the caller's fd offset is untouched.
  struct linux_dirent64 {
    ino64_t d_ino;
    off64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
  };
  // Start from the beginning whatever the fd's offset (an fd is read by one thread at a time).
  if (rewind && ::lseek(dirfd, 0, SEEK_SET) < 0) return fail_errno(str("lseek(fd ", dirfd, ", 0)"), errno);
  std::vector<DirEntry> out;
  alignas(8) char buf[32768];
  while (true) {
    const long n = retry_eintr([&] { return ::syscall(SYS_getdents64, dirfd, buf, sizeof buf); });
    if (n < 0) return fail_errno(str("getdents64(fd ", dirfd, ")"), errno);
    if (n == 0) break;
    for (long off = 0; off < n;) {
      auto* d = reinterpret_cast<linux_dirent64*>(buf + off);
      off += d->d_reclen;
      const char* name = d->d_name;
      if (name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'))) continue;
      out.push_back({std::string(name), d->d_type, static_cast<ino_t>(d->d_ino)});
    }
  }
  return out;
}

namespace {
Status remove_children(int dirfd, dev_t dev, const std::string& label) {
  auto entries = TRY(read_dir(dirfd));
  for (const auto& e : entries) {
    auto st = TRY(lstat_at(dirfd, e.name));
    if (S_ISDIR(st.st_mode)) {
      if (st.st_dev != dev) return fail(Errc::permission, str("refusing to remove ", quote(label + "/" + e.name), ": it is a mount point"));
      auto child = TRY(open_dir_at(dirfd, e.name));
      TRY(remove_children(child.get(), dev, label + "/" + e.name));
      TRY(unlink_at(dirfd, e.name, AT_REMOVEDIR));
    } else {
      TRY(unlink_at(dirfd, e.name));
    }
  }
  return {};
}
}  // namespace

Status remove_tree_at(int dirfd, const std::string& name) {
  auto st = lstat_at(dirfd, name);
  if (!st) {
    if (st.error().sys_errno() == ENOENT) return {};
    return fail(st.error());
  }
  if (!S_ISDIR(st->st_mode)) return unlink_at(dirfd, name);
  auto fd = TRY(open_dir_at(dirfd, name));
  TRY(remove_children(fd.get(), st->st_dev, name));
  return unlink_at(dirfd, name, AT_REMOVEDIR);
}

Status remove_tree(const std::string& path) {
  // Split into parent and last component so the last component is never followed.
  const auto slash = path.find_last_of('/');
  const std::string parent = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  if (name.empty() || name == "." || name == "..") return fail(Errc::invalid_argument, str("remove_tree: bad path ", quote(path)));
  auto dir = open_path(parent, O_RDONLY | O_DIRECTORY);
  if (!dir) {
    if (dir.error().sys_errno() == ENOENT) return {};
    return fail(dir.error());
  }
  return with_context(remove_tree_at(dir->get(), name), str("removing ", path));
}

namespace {
template <class List, class Get, class Label>
Result<std::vector<Xattr>> collect_xattrs(List&& list_fn, Get&& get_fn, Label&& label) {
  std::vector<Xattr> out;
  std::string names;
  while (true) {
    ssize_t n = list_fn(nullptr, 0);
    if (n < 0) {
      if (errno == ENOTSUP || errno == EOPNOTSUPP) return out;
      return fail_errno(str("listxattr(", label(), ")"), errno);
    }
    if (n == 0) return out;
    names.resize(static_cast<std::size_t>(n));
    n = list_fn(names.data(), names.size());
    if (n < 0) {
      if (errno == ERANGE) continue;
      return fail_errno(str("listxattr(", label(), ")"), errno);
    }
    names.resize(static_cast<std::size_t>(n));
    break;
  }
  for (std::size_t pos = 0; pos < names.size();) {
    const std::string name(names.c_str() + pos);
    pos += name.size() + 1;
    if (name.empty()) continue;
    std::string value;
    while (true) {
      ssize_t n = get_fn(name.c_str(), nullptr, 0);
      if (n < 0) {
        if (errno == ENODATA) break;  // removed meanwhile
        return fail_errno(str("getxattr(", label(), ", ", quote(name), ")"), errno);
      }
      value.resize(static_cast<std::size_t>(n));
      n = get_fn(name.c_str(), value.data(), value.size());
      if (n < 0) {
        if (errno == ERANGE) continue;
        return fail_errno(str("getxattr(", label(), ", ", quote(name), ")"), errno);
      }
      value.resize(static_cast<std::size_t>(n));
      out.push_back({name, std::move(value)});
      break;
    }
  }
  std::sort(out.begin(), out.end(), [](const Xattr& a, const Xattr& b) { return a.name < b.name; });
  return out;
}
}  // namespace

Result<std::vector<Xattr>> xattrs_fd(int fd) {
  return collect_xattrs([&](char* buf, std::size_t size) { return ::flistxattr(fd, buf, size); },
                        [&](const char* name, void* buf, std::size_t size) { return ::fgetxattr(fd, name, buf, size); },
                        [&] { return str("fd ", fd); });
}

Result<std::vector<Xattr>> xattrs_at(int dirfd, const std::string& name) {
  const std::string path = "/proc/self/fd/" + std::to_string(dirfd) + "/" + name;
  return collect_xattrs([&](char* buf, std::size_t size) { return ::llistxattr(path.c_str(), buf, size); },
                        [&](const char* n, void* buf, std::size_t size) { return ::lgetxattr(path.c_str(), n, buf, size); },
                        [&] { return quote(name); });
}

Status flock(int fd, bool exclusive, bool nonblocking) {
  const int op = (exclusive ? LOCK_EX : LOCK_SH) | (nonblocking ? LOCK_NB : 0);
  if (retry_eintr([&] { return ::flock(fd, op); }) != 0) {
    if (errno == EWOULDBLOCK) return fail(Errc::busy, "lock is held by another process");
    return fail_errno(str("flock(fd ", fd, ")"), errno);
  }
  return {};
}

std::int64_t now_unix() {
  // Not time(2): it reads the coarse clock, which can trail by a tick the fine-grained
  // timestamps a file gets (multigrain timestamps, Linux 6.13), making a file just written
  // look a second younger than zero.
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec);
}

std::int64_t monotonic_ns() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

namespace {
Result<int> wait_status(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return fail_errno(str("waitpid(", pid, ")"), errno);
  }
  return status;
}
}  // namespace

Result<int> wait_child(pid_t pid) {
  const int status = TRY(wait_status(pid));
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

Result<ChildOutput> collect_child(pid_t pid, Fd out, Fd err, std::int64_t timeout_ms, std::size_t limit) {
  ChildOutput r;
  const std::int64_t deadline = timeout_ms > 0 ? monotonic_ns() + timeout_ms * 1'000'000 : 0;
  while (out || err) {
    int wait_ms = -1;
    if (deadline) {
      const std::int64_t left_ms = (deadline - monotonic_ns()) / 1'000'000;
      if (left_ms <= 0) {
        r.timed_out = true;
        (void)::kill(pid, SIGKILL);
        break;
      }
      wait_ms = static_cast<int>(std::min<std::int64_t>(left_ms, 1'000'000));
    }
    struct pollfd fds[2] = {{out ? out.get() : -1, POLLIN, 0}, {err ? err.get() : -1, POLLIN, 0}};
    if (::poll(fds, 2, wait_ms) < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      (void)::kill(pid, SIGKILL);
      (void)wait_child(pid);
      return fail_errno("poll()", e);
    }
    for (int i = 0; i < 2; ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      Fd& fd = i == 0 ? out : err;
      std::string& dst = i == 0 ? r.out : r.err;
      char buf[65536];
      const ssize_t got = retry_eintr([&] { return ::read(fd.get(), buf, sizeof buf); });
      if (got < 0 && !r.read_errno) r.read_errno = errno;
      if (got <= 0) {
        fd.reset();
        continue;
      }
      const auto n = static_cast<std::size_t>(got);
      if (dst.size() + n > limit) r.truncated = true;
      if (dst.size() < limit) dst.append(buf, std::min(n, limit - dst.size()));
    }
  }
  // Its output is closed, but it may still run: wait for its end within what is left of the
  // time, through a pidfd (readable once it has exited).
  if (deadline && !r.timed_out) {
    Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    while (pidfd) {
      const std::int64_t left_ms = (deadline - monotonic_ns()) / 1'000'000;
      struct pollfd p = {pidfd.get(), POLLIN, 0};
      const int n = left_ms > 0 ? ::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left_ms, 1'000'000))) : 0;
      if (n < 0 && errno == EINTR) continue;
      if (n == 0) {
        r.timed_out = true;
        (void)::kill(pid, SIGKILL);
      }
      break;  // exited, killed, or poll failed: the wait below decides
    }
  }
  const int status = TRY(wait_status(pid));
  r.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + r.signal;
  return r;
}

}  // namespace chrootctl::sys
