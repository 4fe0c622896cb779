// Reading an image's tree in manifest order, checked as it is read.
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
#include "chrootctl/common/tree_path.hpp"

namespace chrootctl::distribution::detail {

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

Status compare_xattrs(const manifest::Entry& e, const std::vector<sys::Xattr>& actual) {
  if (actual == e.xattrs) return {};
  std::vector<std::string> names;
  names.reserve(actual.size());
  for (const auto& x : actual) names.push_back(x.name);
  std::vector<std::string> expected;
  expected.reserve(e.xattrs.size());
  for (const auto& x : e.xattrs) expected.push_back(x.name);
  return changed(e, str("its extended attributes differ (now [", join(names, ", "), "], recorded [", join(expected, ", "), "])"));
}

}  // namespace

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
  const auto dir = split_tree_path(path).first;
  if (!m_cached_fd || m_cached != dir) {
    m_cached_fd = TRY(with_context(walk_dir(m_root.get(), dir), [&] { return str("opening ", quote(dir), " in ", m_root_path); }));
    m_cached = dir;
  }
  return m_cached_fd.get();
}

Result<Fd> TreeReader::open_file(const manifest::Entry& e) {
  const int pfd = TRY(parent(e.path));
  const std::string name = split_tree_path(e.path).second;
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
  const std::string name = split_tree_path(e.path).second;
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

}  // namespace chrootctl::distribution::detail
