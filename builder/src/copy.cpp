#include "chrootctl/builder/copy.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <map>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"

namespace chrootctl::builder {

namespace {

EntryMeta meta_from(const struct stat& st, std::vector<sys::Xattr> xattrs) {
  EntryMeta m;
  m.mode = st.st_mode & 07777;
  m.uid = st.st_uid;
  m.gid = st.st_gid;
  m.mtime_sec = st.st_mtim.tv_sec;
  m.mtime_nsec = static_cast<std::uint32_t>(st.st_mtim.tv_nsec);
  // As for archives: trusted.* attributes steer the kernel (overlayfs redirects and whiteouts)
  // and system.* ones are ACLs and the like; a copied tree does not carry them into an image.
  std::erase_if(xattrs, [](const sys::Xattr& x) { return x.name.starts_with("trusted.") || x.name.starts_with("system."); });
  m.xattrs = std::move(xattrs);
  return m;
}

Status copy_data(int in, int out, std::uint64_t size, const std::string& label) {
  std::uint64_t done = 0;
  while (done < size) {
    const ssize_t n = ::copy_file_range(in, nullptr, out, nullptr, size - done, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP || errno == ENOSYS) break;
      return fail_errno(str("copy_file_range(", quote(label), ")"), errno);
    }
    if (n == 0) break;  // the file shrank while being copied
    done += static_cast<std::uint64_t>(n);
  }
  if (done < size) {
    // Fallback for filesystems without copy_file_range between them.
    std::vector<char> buf(1u << 20);
    while (true) {
      const ssize_t n = sys::retry_eintr([&] { return ::read(in, buf.data(), buf.size()); });
      if (n < 0) return fail_errno(str("read(", quote(label), ")"), errno);
      if (n == 0) break;
      TRY(sys::write_all(out, std::string_view(buf.data(), static_cast<std::size_t>(n))));
    }
  }
  return {};
}

class Copier {
 public:
  Copier(TreeWriter& tree, const std::function<void(const CopyStats&)>& progress) : m_tree(tree), m_progress(progress) {}

  Status dir(int dirfd, const std::string& path, dev_t dev, const std::string& source) {
    for (const auto& e : TRY(sys::read_dir(dirfd))) {
      const std::string child = str(path == "/" ? "" : path, "/", e.name);
      const std::string label = source + child;
      auto st = TRY(sys::lstat_at(dirfd, e.name));
      ++m_stats.entries;
      if (m_progress && (m_stats.entries % 512) == 0) m_progress(m_stats);
      if (S_ISDIR(st.st_mode)) {
        if (st.st_dev != dev) return fail(Errc::permission, str("refusing to copy ", quote(label), ": it is a mount point (another filesystem)"));
        auto sub = TRY(sys::open_dir_at(dirfd, e.name));
        auto now = TRY(sys::fstat(sub.get()));
        if (now.st_ino != st.st_ino || now.st_dev != st.st_dev)
          return fail(Errc::mismatch, str(quote(label), " changed while the tree was being copied"));
        auto xattrs = TRY(sys::xattrs_fd(sub.get()));
        TRY(m_tree.make_dir(child, meta_from(now, std::move(xattrs))));
        TRY(this->dir(sub.get(), child, dev, source));
        continue;
      }
      if (st.st_nlink > 1) {
        const auto key = std::make_pair(st.st_dev, st.st_ino);
        auto it = m_links.find(key);
        if (it != m_links.end()) {
          TRY(m_tree.make_hardlink(child, it->second));
          continue;
        }
        m_links.emplace(key, child);
      }
      if (S_ISREG(st.st_mode)) {
        auto in = TRY(sys::open_at(dirfd, e.name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY));
        auto now = TRY(sys::fstat(in.get()));
        if (!S_ISREG(now.st_mode) || now.st_ino != st.st_ino)
          return fail(Errc::mismatch, str(quote(label), " changed while the tree was being copied"));
        auto out = TRY(m_tree.create_file(child));
        TRY(copy_data(in.get(), out.get(), static_cast<std::uint64_t>(now.st_size), label));
        m_stats.bytes += static_cast<std::uint64_t>(now.st_size);
        auto xattrs = TRY(sys::xattrs_fd(in.get()));
        TRY(m_tree.finish_file(out.get(), child, meta_from(now, std::move(xattrs))));
      } else if (S_ISLNK(st.st_mode)) {
        auto target = TRY(sys::readlink_at(dirfd, e.name));
        auto xattrs = TRY(sys::xattrs_at(dirfd, e.name));
        TRY(m_tree.make_symlink(child, target, meta_from(st, std::move(xattrs))));
      } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode)) {
        auto xattrs = TRY(sys::xattrs_at(dirfd, e.name));
        TRY(m_tree.make_node(child, st.st_mode & S_IFMT, st.st_rdev, meta_from(st, std::move(xattrs))));
      }
      // Sockets are not copied: they are not usable without the process that bound them.
    }
    return {};
  }

  CopyStats stats() const { return m_stats; }

 private:
  TreeWriter& m_tree;
  const std::function<void(const CopyStats&)>& m_progress;
  CopyStats m_stats;
  std::map<std::pair<dev_t, ino_t>, std::string> m_links;
};

}  // namespace

Result<CopyStats> copy_tree(const std::string& source, TreeWriter& tree, const std::function<void(const CopyStats&)>& progress) {
  auto root = TRY(sys::open_path(source, O_RDONLY | O_DIRECTORY));
  auto st = TRY(sys::fstat(root.get()));
  auto root_xattrs = TRY(sys::xattrs_fd(root.get()));
  TRY(tree.make_dir("/", meta_from(st, std::move(root_xattrs))));
  Copier c(tree, progress);
  TRY(with_context(c.dir(root.get(), "/", st.st_dev, source), [&] { return str("copying ", source); }));
  TRY(tree.finish());
  if (progress) progress(c.stats());
  return c.stats();
}

}  // namespace chrootctl::builder
