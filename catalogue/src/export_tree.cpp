// Reading an image's tree in manifest order, checked as it is read, and writing a copy of one.
#include "export_tree.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"

namespace chrootctl::catalogue::detail {

namespace {

constexpr std::size_t k_chunk = 1u << 20;

manifest::Type type_of(mode_t m) {
  if (S_ISREG(m)) return manifest::Type::file;
  if (S_ISDIR(m)) return manifest::Type::dir;
  if (S_ISLNK(m)) return manifest::Type::symlink;
  if (S_ISCHR(m)) return manifest::Type::chardev;
  if (S_ISBLK(m)) return manifest::Type::blockdev;
  if (S_ISFIFO(m)) return manifest::Type::fifo;
  return manifest::Type::socket;
}

tl::unexpected<Error> changed(const manifest::Entry& e, const std::string& what) {
  return fail(Errc::mismatch, str(quote(e.path), " changed since it was verified: ", what));
}

// Walks `path` (a directory path inside the tree, "/" for the root) from `root` one component
// at a time, never following a symlink.
Result<Fd> walk_dir(int root, std::string_view path) {
  const int first = ::fcntl(root, F_DUPFD_CLOEXEC, 0);
  if (first < 0) return fail_errno("fcntl(F_DUPFD_CLOEXEC)", errno);
  Fd cur(first);
  std::size_t pos = 1;
  while (pos < path.size()) {
    auto next = path.find('/', pos);
    if (next == std::string_view::npos) next = path.size();
    const std::string comp(path.substr(pos, next - pos));
    pos = next + 1;
    cur = TRY(sys::open_at(cur.get(), comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  }
  return cur;
}

std::string proc_path(int dirfd, const std::string& name) { return str("/proc/self/fd/", dirfd, "/", name); }

Status compare_xattrs(const manifest::Entry& e, const std::vector<sys::Xattr>& actual) {
  if (actual == e.xattrs) return {};
  std::vector<std::string> names;
  for (const auto& x : actual) names.push_back(x.name);
  std::vector<std::string> expected;
  for (const auto& x : e.xattrs) expected.push_back(x.name);
  return changed(e, str("its extended attributes differ (now [", join(names, ", "), "], recorded [", join(expected, ", "), "])"));
}

}  // namespace

std::pair<std::string, std::string> split_entry_path(std::string_view path) {
  const auto slash = path.find_last_of('/');
  return {slash == 0 ? std::string("/") : std::string(path.substr(0, slash)), std::string(path.substr(slash + 1))};
}

Status check_entry_path(std::string_view path) {
  if (path.empty() || path[0] != '/') return fail(Errc::parse, str("manifest path ", quote(path), " is not absolute"));
  if (path == "/") return {};
  std::size_t pos = 1;
  while (pos <= path.size()) {
    auto next = path.find('/', pos);
    if (next == std::string_view::npos) next = path.size();
    const auto comp = path.substr(pos, next - pos);
    if (comp.empty() || comp == "." || comp == "..") return fail(Errc::parse, str("manifest path ", quote(path), " is not canonical"));
    pos = next + 1;
  }
  return {};
}

std::string compare_meta(const manifest::Entry& e, const struct stat& st) {
  const auto t = type_of(st.st_mode);
  if (t != e.type) return str("it is a ", manifest::type_name(t), ", not a ", manifest::type_name(e.type));
  if ((st.st_mode & 07777) != e.mode) return str("mode ", mode_octal(st.st_mode & 07777), ", not ", mode_octal(e.mode));
  if (st.st_uid != e.uid) return str("uid ", st.st_uid, ", not ", e.uid);
  if (st.st_gid != e.gid) return str("gid ", st.st_gid, ", not ", e.gid);
  if (t == manifest::Type::file && static_cast<std::uint64_t>(st.st_size) != e.size) return str("size ", st.st_size, ", not ", e.size);
  if ((t == manifest::Type::chardev || t == manifest::Type::blockdev) && (major(st.st_rdev) != e.rdev_major || minor(st.st_rdev) != e.rdev_minor))
    return str("device ", major(st.st_rdev), ",", minor(st.st_rdev), ", not ", e.rdev_major, ",", e.rdev_minor);
  return "";
}

bool unrestorable_xattr(std::string_view name) { return name.starts_with("trusted.") || name.starts_with("system."); }

// ---- TreeReader ----

Result<TreeReader> TreeReader::open(const std::string& root) {
  auto fd = TRY(sys::open_path(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  return TreeReader(std::move(fd), root);
}

Result<int> TreeReader::parent(std::string_view path) {
  const auto dir = split_entry_path(path).first;
  if (!m_cached_fd || m_cached != dir) {
    m_cached_fd = TRY(with_context(walk_dir(m_root.get(), dir), [&] { return str("opening ", quote(dir), " in ", m_root_path); }));
    m_cached = dir;
  }
  return m_cached_fd.get();
}

Result<Fd> TreeReader::open_file(const manifest::Entry& e) {
  const int pfd = TRY(parent(e.path));
  const std::string name = split_entry_path(e.path).second;
  auto fd = sys::open_at(pfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
  if (!fd) {
    if (fd.error().sys_errno() == ENOENT) return changed(e, "it is missing");
    if (fd.error().sys_errno() == ELOOP) return changed(e, "it is a symbolic link");
    return fail(std::move(fd.error()));
  }
  auto st = TRY(sys::fstat(fd->get()));
  if (auto why = compare_meta(e, st); !why.empty()) return changed(e, why);
  const auto xattrs = TRY(sys::xattrs_fd(fd->get()));
  TRY(compare_xattrs(e, xattrs));
  return std::move(*fd);
}

Status TreeReader::check_other(const manifest::Entry& e) {
  const int pfd = TRY(parent(e.path));
  const std::string name = split_entry_path(e.path).second;
  auto st = sys::lstat_at(pfd, name);
  if (!st) {
    if (st.error().sys_errno() == ENOENT) return changed(e, "it is missing");
    return fail(std::move(st.error()));
  }
  if (auto why = compare_meta(e, *st); !why.empty()) return changed(e, why);
  if (e.type == manifest::Type::symlink) {
    auto target = TRY(sys::readlink_at(pfd, name));
    if (target != e.target) return changed(e, str("it points to ", quote(target), ", not ", quote(e.target)));
  }
  const auto xattrs = TRY(sys::xattrs_at(pfd, name));
  return compare_xattrs(e, xattrs);
}

Status TreeReader::check_root_entry(const manifest::Entry& e) {
  auto st = TRY(sys::fstat(m_root.get()));
  if (auto why = compare_meta(e, st); !why.empty()) return changed(e, why);
  const auto xattrs = TRY(sys::xattrs_fd(m_root.get()));
  return compare_xattrs(e, xattrs);
}

Status stream_checked_impl(int fd, const manifest::Entry& e, const std::string& label, const std::function<Status(const char*, std::size_t)>& sink) {
  std::vector<char> buf(k_chunk);
  Sha256 sha;
  std::uint64_t total = 0;
  while (true) {
    const ssize_t n = sys::retry_eintr([&] { return ::read(fd, buf.data(), buf.size()); });
    if (n < 0) return fail_errno(str("read(", quote(label), ")"), errno);
    if (n == 0) break;
    total += static_cast<std::uint64_t>(n);
    if (total > e.size) return changed(e, str("it grew beyond its recorded ", e.size, " bytes"));
    sha.update(buf.data(), static_cast<std::size_t>(n));
    TRY(sink(buf.data(), static_cast<std::size_t>(n)));
  }
  if (total != e.size) return changed(e, str("it has ", total, " bytes, not ", e.size));
  const std::string hex = sha.hex_final();
  if (hex != e.sha256) return changed(e, str("sha256 ", hex, ", not ", e.sha256));
  return {};
}

// ---- TreeCopier ----

Result<TreeCopier> TreeCopier::open(const std::string& dest) {
  auto fd = TRY(sys::open_path(dest, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  return TreeCopier(std::move(fd), dest);
}

Result<int> TreeCopier::parent(std::string_view path) {
  const auto dir = split_entry_path(path).first;
  if (!m_cached_fd || m_cached != dir) {
    m_cached_fd = TRY(with_context(walk_dir(m_root.get(), dir), [&] { return str("opening ", quote(dir), " in ", m_root_path); }));
    m_cached = dir;
  }
  return m_cached_fd.get();
}

Status TreeCopier::make_dir(const manifest::Entry& e) {
  if (e.path != "/") {
    const int pfd = TRY(parent(e.path));
    TRY(sys::mkdir_at(pfd, split_entry_path(e.path).second, 0700));
  }
  m_dirs.push_back(e);
  return {};
}

Result<Fd> TreeCopier::create_file(const manifest::Entry& e) {
  const int pfd = TRY(parent(e.path));
  return sys::open_at(pfd, split_entry_path(e.path).second, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
}

Status TreeCopier::finish_file(int fd, const manifest::Entry& e) {
  const std::string label = m_root_path + e.path;
  if (::fchown(fd, e.uid, e.gid) != 0) return fail_errno(str("fchown(", quote(label), ", ", e.uid, ", ", e.gid, ")"), errno);
  if (::fchmod(fd, e.mode) != 0) return fail_errno(str("fchmod(", quote(label), ", ", mode_octal(e.mode), ")"), errno);
  for (const auto& x : e.xattrs)
    if (::fsetxattr(fd, x.name.c_str(), x.value.data(), x.value.size(), 0) != 0)
      return fail_errno(str("fsetxattr(", quote(label), ", ", quote(x.name), ")"), errno);
  const struct timespec times[2] = {{0, UTIME_OMIT}, {static_cast<time_t>(e.mtime_sec), static_cast<long>(e.mtime_nsec)}};
  if (::futimens(fd, times) != 0) return fail_errno(str("futimens(", quote(label), ")"), errno);
  return {};
}

Status TreeCopier::link_within(const manifest::Entry& e, std::string_view target) {
  auto [tdir, tname] = split_entry_path(target);
  auto tfd = TRY(walk_dir(m_root.get(), tdir));
  const int pfd = TRY(parent(e.path));
  const std::string name = split_entry_path(e.path).second;
  if (::linkat(tfd.get(), tname.c_str(), pfd, name.c_str(), 0) != 0)
    return fail_errno(str("linkat(", quote(m_root_path + std::string(target)), ", ", quote(m_root_path + e.path), ")"), errno);
  return {};
}

Status TreeCopier::link_to(const manifest::Entry& e, int fd) {
  const int pfd = TRY(parent(e.path));
  const std::string name = split_entry_path(e.path).second;
  // Through /proc/self/fd the link is made to exactly the inode that was opened and checked.
  const std::string src = str("/proc/self/fd/", fd);
  if (::linkat(AT_FDCWD, src.c_str(), pfd, name.c_str(), AT_SYMLINK_FOLLOW) != 0) {
    const int err = errno;
    if (err == EXDEV || err == EMLINK)
      return fail(Errc::unsupported, str("cannot hard-link ", quote(m_root_path + e.path), ": ", sys::errno_message(err)));
    return fail_errno(str("linkat(", src, ", ", quote(m_root_path + e.path), ")"), err);
  }
  return {};
}

Status TreeCopier::make_symlink(const manifest::Entry& e) {
  const int pfd = TRY(parent(e.path));
  const std::string name = split_entry_path(e.path).second;
  if (::symlinkat(e.target.c_str(), pfd, name.c_str()) != 0)
    return fail_errno(str("symlinkat(", quote(e.target), ", ", quote(m_root_path + e.path), ")"), errno);
  return apply_meta(pfd, name, e, true);
}

Status TreeCopier::make_node(const manifest::Entry& e) {
  const int pfd = TRY(parent(e.path));
  const std::string name = split_entry_path(e.path).second;
  mode_t type = 0;
  dev_t rdev = 0;
  switch (e.type) {
    case manifest::Type::chardev:
      type = S_IFCHR;
      rdev = makedev(e.rdev_major, e.rdev_minor);
      break;
    case manifest::Type::blockdev:
      type = S_IFBLK;
      rdev = makedev(e.rdev_major, e.rdev_minor);
      break;
    case manifest::Type::fifo:
      type = S_IFIFO;
      break;
    default:
      return fail(Errc::unsupported, str(quote(e.path), " is a ", manifest::type_name(e.type), ", which cannot be copied"));
  }
  if (::mknodat(pfd, name.c_str(), type | 0600, rdev) != 0) return fail_errno(str("mknodat(", quote(m_root_path + e.path), ")"), errno);
  return apply_meta(pfd, name, e, false);
}

Status TreeCopier::apply_meta(int pfd, const std::string& name, const manifest::Entry& e, bool is_symlink) {
  const std::string label = m_root_path + e.path;
  // Every entry here was created by this copier in a directory only it writes, so the names
  // are the entries it made; still, nothing follows a symlink.
  if (::fchownat(pfd, name.c_str(), e.uid, e.gid, AT_SYMLINK_NOFOLLOW) != 0)
    return fail_errno(str("fchownat(", quote(label), ", ", e.uid, ", ", e.gid, ")"), errno);
  if (!is_symlink) {
    auto fd = TRY(sys::open_at(pfd, name, O_PATH | O_NOFOLLOW));
    const std::string p = str("/proc/self/fd/", fd.get());
    if (::fchmodat(AT_FDCWD, p.c_str(), e.mode, 0) != 0) return fail_errno(str("chmod(", quote(label), ", ", mode_octal(e.mode), ")"), errno);
  }
  const std::string p = proc_path(pfd, name);
  for (const auto& x : e.xattrs)
    if (::lsetxattr(p.c_str(), x.name.c_str(), x.value.data(), x.value.size(), 0) != 0)
      return fail_errno(str("lsetxattr(", quote(label), ", ", quote(x.name), ")"), errno);
  const struct timespec times[2] = {{0, UTIME_OMIT}, {static_cast<time_t>(e.mtime_sec), static_cast<long>(e.mtime_nsec)}};
  if (::utimensat(pfd, name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) return fail_errno(str("utimensat(", quote(label), ")"), errno);
  return {};
}

Status TreeCopier::finish() {
  m_cached_fd.reset();
  m_cached.clear();
  // Deepest first: a path sorts after its parent, so reverse manifest order works.
  for (auto it = m_dirs.rbegin(); it != m_dirs.rend(); ++it) {
    const auto& e = *it;
    if (e.path == "/") {
      const std::string label = m_root_path;
      if (::fchown(m_root.get(), e.uid, e.gid) != 0) return fail_errno(str("fchown(", quote(label), ")"), errno);
      if (::fchmod(m_root.get(), e.mode) != 0) return fail_errno(str("fchmod(", quote(label), ", ", mode_octal(e.mode), ")"), errno);
      for (const auto& x : e.xattrs)
        if (::fsetxattr(m_root.get(), x.name.c_str(), x.value.data(), x.value.size(), 0) != 0)
          return fail_errno(str("fsetxattr(", quote(label), ", ", quote(x.name), ")"), errno);
      const struct timespec times[2] = {{0, UTIME_OMIT}, {static_cast<time_t>(e.mtime_sec), static_cast<long>(e.mtime_nsec)}};
      if (::futimens(m_root.get(), times) != 0) return fail_errno(str("futimens(", quote(label), ")"), errno);
      continue;
    }
    auto [dir, name] = split_entry_path(e.path);
    auto pfd = TRY(walk_dir(m_root.get(), dir));
    TRY(apply_meta(pfd.get(), name, e, false));
  }
  m_dirs.clear();
  return {};
}

}  // namespace chrootctl::catalogue::detail
