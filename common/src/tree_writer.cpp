#include "chrootctl/common/tree_writer.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "chrootctl/common/strings.hpp"

namespace chrootctl {

namespace {

std::string fd_path(int dirfd, const std::string& name) { return str("/proc/self/fd/", dirfd, "/", name); }

Status set_xattrs(int fd, int parent, const std::string& name, const std::vector<sys::Xattr>& xattrs, std::string_view path) {
  for (const auto& x : xattrs) {
    int rc;
    if (fd >= 0) {
      rc = ::fsetxattr(fd, x.name.c_str(), x.value.data(), x.value.size(), 0);
    } else {
      // Symlinks and device nodes cannot be opened for writing: name them through the pinned
      // parent directory with the l* call, which does not follow the last component.
      const std::string p = fd_path(parent, name);
      rc = ::lsetxattr(p.c_str(), x.name.c_str(), x.value.data(), x.value.size(), 0);
    }
    if (rc != 0) return fail_errno(str("setxattr(", quote(path), ", ", quote(x.name), ")"), errno);
  }
  return {};
}

}  // namespace

Result<TreeWriter> TreeWriter::open(const std::string& root, bool exclusive) {
  auto fd = TRY(sys::open_path(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  return TreeWriter(std::move(fd), root, exclusive);
}

Result<Fd> TreeWriter::open_parent(std::string_view path, bool create) {
  auto [parent, name] = split_tree_path(path);
  (void)name;
  if (!m_cached_parent.empty() && m_cached_parent == parent) {
    const int d = ::fcntl(m_cached_fd.get(), F_DUPFD_CLOEXEC, 0);
    if (d < 0) return fail_errno(str("fcntl(F_DUPFD_CLOEXEC) for ", quote(parent)), errno);
    return Fd(d);
  }
  const int root_dup = ::fcntl(m_root.get(), F_DUPFD_CLOEXEC, 0);
  if (root_dup < 0) return fail_errno("fcntl(F_DUPFD_CLOEXEC) for the root", errno);
  Fd cur(root_dup);
  std::string walked;
  for (const auto& comp : path_components(parent)) {
    walked += "/" + comp;
    int fd = sys::retry_eintr([&] { return ::openat(cur.get(), comp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC); });
    if (fd < 0 && errno == ENOENT && create) {
      if (::mkdirat(cur.get(), comp.c_str(), 0755) != 0 && errno != EEXIST) return fail_errno(str("mkdirat(", quote(walked), ", 0755)"), errno);
      fd = sys::retry_eintr([&] { return ::openat(cur.get(), comp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC); });
    }
    if (fd < 0) {
      const int err = errno;
      if (err == ELOOP || err == ENOTDIR) {
        auto st = sys::lstat_at(cur.get(), comp);
        const bool link = st && S_ISLNK(st->st_mode);
        return fail(Errc::permission, str("refusing ", quote(path), ": ", quote(walked),
                                          link ? " is a symlink (nothing is written through a symlink inside the tree)" : " is not a directory"));
      }
      return fail_errno(str("openat(", quote(walked), ", O_DIRECTORY|O_NOFOLLOW)"), err);
    }
    cur.reset(fd);
  }
  const int d = ::fcntl(cur.get(), F_DUPFD_CLOEXEC, 0);
  if (d < 0) return fail_errno("fcntl(F_DUPFD_CLOEXEC)", errno);
  m_cached_parent = parent;
  m_cached_fd = Fd(d);
  return cur;
}

Result<bool> TreeWriter::exists(std::string_view path) {
  if (path == "/") return true;
  auto parent = open_parent(path, false);
  if (!parent) {
    if (parent.error().code() == Errc::not_found) return false;
    return fail(parent.error());
  }
  struct stat st {};
  const auto name = split_tree_path(path).second;
  if (::fstatat(parent->get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) return true;
  if (errno == ENOENT) return false;
  return fail_errno(str("fstatat(", quote(path), ")"), errno);
}

Status TreeWriter::clear_for(int parent, const std::string& name, bool keep_dir, std::string_view path) {
  struct stat st {};
  if (::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return {};
    return fail_errno(str("fstatat(", quote(path), ")"), errno);
  }
  if (m_exclusive) return fail(Errc::exists, str(quote(path), " already exists in ", m_root_path, " (a copy is made of new entries only)"));
  if (S_ISDIR(st.st_mode)) {
    if (keep_dir) return {};
    m_cached_parent.clear();
    m_cached_fd.reset();
    return with_context(sys::remove_tree_at(parent, name), str("replacing ", quote(path)));
  }
  return sys::unlink_at(parent, name);
}

Status TreeWriter::apply_meta_at(int parent, const std::string& name, std::string_view path, const EntryMeta& meta, bool is_symlink) {
  if (::fchownat(parent, name.c_str(), meta.uid, meta.gid, AT_SYMLINK_NOFOLLOW) != 0)
    return fail_errno(str("fchownat(", quote(path), ", ", meta.uid, ", ", meta.gid, ", AT_SYMLINK_NOFOLLOW)"), errno);
  if (!is_symlink && ::fchmodat(parent, name.c_str(), meta.mode & 07777, AT_SYMLINK_NOFOLLOW) != 0)
    return fail_errno(str("fchmodat(", quote(path), ", ", mode_octal(meta.mode & 07777), ")"), errno);
  TRY(set_xattrs(-1, parent, name, meta.xattrs, path));
  const struct timespec ts[2] = {{meta.mtime_sec, static_cast<long>(meta.mtime_nsec)}, {meta.mtime_sec, static_cast<long>(meta.mtime_nsec)}};
  if (::utimensat(parent, name.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0) return fail_errno(str("utimensat(", quote(path), ")"), errno);
  return {};
}

Status TreeWriter::make_dir(std::string_view path, const EntryMeta& meta) {
  if (path != "/") {
    auto parent = TRY(open_parent(path));
    const auto name = split_tree_path(path).second;
    TRY(clear_for(parent.get(), name, true, path));
    if (::mkdirat(parent.get(), name.c_str(), 0700) != 0 && errno != EEXIST) return fail_errno(str("mkdirat(", quote(path), ", 0700)"), errno);
  }
  m_dirs.emplace_back(std::string(path), meta);
  return {};
}

Result<Fd> TreeWriter::create_file(std::string_view path) {
  if (path == "/") return fail(Errc::permission, "refusing to replace the root directory with a file");
  auto parent = TRY(open_parent(path));
  const auto name = split_tree_path(path).second;
  TRY(clear_for(parent.get(), name, false, path));
  const int fd =
      sys::retry_eintr([&] { return ::openat(parent.get(), name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600); });
  if (fd < 0) return fail_errno(str("openat(", quote(path), ", O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW)"), errno);
  return Fd(fd);
}

Status TreeWriter::finish_file(int fd, std::string_view path, const EntryMeta& meta) {
  if (::fchown(fd, meta.uid, meta.gid) != 0) return fail_errno(str("fchown(", quote(path), ", ", meta.uid, ", ", meta.gid, ")"), errno);
  if (::fchmod(fd, meta.mode & 07777) != 0) return fail_errno(str("fchmod(", quote(path), ", ", mode_octal(meta.mode & 07777), ")"), errno);
  TRY(set_xattrs(fd, -1, {}, meta.xattrs, path));
  const struct timespec ts[2] = {{meta.mtime_sec, static_cast<long>(meta.mtime_nsec)}, {meta.mtime_sec, static_cast<long>(meta.mtime_nsec)}};
  if (::futimens(fd, ts) != 0) return fail_errno(str("futimens(", quote(path), ")"), errno);
  return {};
}

Status TreeWriter::make_symlink(std::string_view path, const std::string& target, const EntryMeta& meta) {
  if (path == "/") return fail(Errc::permission, "refusing to replace the root directory with a symlink");
  auto parent = TRY(open_parent(path));
  const auto name = split_tree_path(path).second;
  TRY(clear_for(parent.get(), name, false, path));
  if (::symlinkat(target.c_str(), parent.get(), name.c_str()) != 0)
    return fail_errno(str("symlinkat(", quote(target), ", ", quote(path), ")"), errno);
  return apply_meta_at(parent.get(), name, path, meta, true);
}

Status TreeWriter::make_hardlink(std::string_view path, std::string_view target) {
  if (path == "/" || target == "/") return fail(Errc::permission, str("refusing hard link ", quote(path), " -> ", quote(target)));
  auto tparent = TRY(open_parent(target, false));
  const auto tname = split_tree_path(target).second;
  auto tst = sys::lstat_at(tparent.get(), tname);
  if (!tst) return fail(Errc::not_found, str("hard link ", quote(path), ": its target ", quote(target), " does not exist in the tree"));
  if (S_ISDIR(tst->st_mode)) return fail(Errc::permission, str("refusing hard link ", quote(path), " to the directory ", quote(target)));
  auto parent = TRY(open_parent(path));
  const auto name = split_tree_path(path).second;
  if (path == target) return {};
  TRY(clear_for(parent.get(), name, false, path));
  // No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink itself.
  if (::linkat(tparent.get(), tname.c_str(), parent.get(), name.c_str(), 0) != 0)
    return fail_errno(str("linkat(", quote(target), ", ", quote(path), ")"), errno);
  return {};
}

Status TreeWriter::link_to_open_file(std::string_view path, int fd) {
  if (path == "/") return fail(Errc::permission, str("refusing hard link ", quote(path)));
  auto parent = TRY(open_parent(path));
  const auto name = split_tree_path(path).second;
  TRY(clear_for(parent.get(), name, false, path));
  // Through /proc/self/fd the link is made to exactly the inode that was opened and checked.
  const std::string src = str("/proc/self/fd/", fd);
  if (::linkat(AT_FDCWD, src.c_str(), parent.get(), name.c_str(), AT_SYMLINK_FOLLOW) != 0) {
    const int err = errno;
    if (err == EXDEV || err == EMLINK) return fail(Errc::unsupported, str("cannot hard-link ", quote(path), ": ", sys::errno_message(err)));
    return fail_errno(str("linkat(", src, ", ", quote(path), ")"), err);
  }
  return {};
}

Status TreeWriter::make_node(std::string_view path, mode_t type, dev_t rdev, const EntryMeta& meta) {
  if (path == "/") return fail(Errc::permission, "refusing to replace the root directory with a device");
  if (type != S_IFCHR && type != S_IFBLK && type != S_IFIFO) return fail(Errc::internal, "make_node: bad type");
  auto parent = TRY(open_parent(path));
  const auto name = split_tree_path(path).second;
  TRY(clear_for(parent.get(), name, false, path));
  if (::mknodat(parent.get(), name.c_str(), type | 0600, type == S_IFIFO ? 0 : rdev) != 0)
    return fail_errno(str("mknodat(", quote(path), ", ",
                          type == S_IFCHR   ? "S_IFCHR"
                          : type == S_IFBLK ? "S_IFBLK"
                                            : "S_IFIFO",
                          ", ", major(rdev), ":", minor(rdev), ")"),
                      errno);
  return apply_meta_at(parent.get(), name, path, meta, false);
}

Status TreeWriter::remove(std::string_view path) {
  if (path == "/") return fail(Errc::permission, "refusing to remove the root of the tree");
  const auto last = split_tree_path(path).second;
  if (last.empty() || last == "." || last == "..")
    return fail(Errc::permission, str("refusing to remove ", quote(path), ": not an entry of the tree"));
  auto parent = open_parent(path, false);
  if (!parent) {
    if (parent.error().code() == Errc::not_found) return {};
    return fail(parent.error());
  }
  m_cached_parent.clear();
  m_cached_fd.reset();
  return sys::remove_tree_at(parent->get(), split_tree_path(path).second);
}

Status TreeWriter::remove_children_except(std::string_view path, const std::vector<std::string>& keep) {
  Fd dir;
  if (path == "/") {
    dir = TRY(sys::open_at(m_root.get(), ".", O_RDONLY | O_DIRECTORY));
  } else {
    auto parent = open_parent(path, false);
    if (!parent) return parent.error().code() == Errc::not_found ? Status{} : fail(parent.error());
    auto d = sys::open_dir_at(parent->get(), split_tree_path(path).second);
    if (!d) return d.error().code() == Errc::not_found ? Status{} : fail(d.error());
    dir = std::move(*d);
  }
  m_cached_parent.clear();
  m_cached_fd.reset();
  const std::string prefix = path == "/" ? "" : std::string(path);
  for (const auto& e : TRY(sys::read_dir(dir.get()))) {
    const std::string child = str(prefix, "/", e.name);
    if (std::binary_search(keep.begin(), keep.end(), child)) continue;
    TRY(sys::remove_tree_at(dir.get(), e.name));
  }
  return {};
}

Status TreeWriter::finish() {
  // Deepest first, so setting a directory's mtime is not undone by work inside it; entries
  // for the same directory keep their order (the last one wins).
  std::stable_sort(m_dirs.begin(), m_dirs.end(), [](const auto& a, const auto& b) {
    return std::count(a.first.begin(), a.first.end(), '/') > std::count(b.first.begin(), b.first.end(), '/');
  });
  for (const auto& [path, meta] : m_dirs) {
    Fd dir;
    if (path == "/") {
      dir = TRY(sys::open_at(m_root.get(), ".", O_RDONLY | O_DIRECTORY));
    } else {
      auto parent = open_parent(path, false);
      if (!parent) {
        if (parent.error().code() == Errc::not_found) continue;  // removed by a later whiteout
        return fail(parent.error());
      }
      auto d = sys::open_dir_at(parent->get(), split_tree_path(path).second);
      if (!d) {
        // Removed by a later whiteout, or replaced by a non-directory since.
        const int err = d.error().sys_errno();
        if (err == ENOENT || err == ENOTDIR || err == ELOOP) continue;
        return fail(d.error());
      }
      dir = std::move(*d);
    }
    TRY(finish_file(dir.get(), path, meta));
  }
  m_dirs.clear();
  return {};
}

}  // namespace chrootctl
