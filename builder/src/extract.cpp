#include "chrootctl/builder/extract.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <set>
#include <vector>

#include "chrootctl/common/sha256.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/common/tree_path.hpp"
#include "extract_internal.hpp"

namespace chrootctl::builder {

namespace detail {

ArchiveReader::ArchiveReader(Fd fd) : m_fd(std::move(fd)), m_buf(1u << 20) {}

la_ssize_t ArchiveReader::read_cb(struct archive* a, void* self, const void** buff) {
  auto* r = static_cast<ArchiveReader*>(self);
  const ssize_t n = sys::retry_eintr([&] { return ::read(r->m_fd.get(), r->m_buf.data(), r->m_buf.size()); });
  if (n < 0) {
    r->m_errno = errno;
    archive_set_error(a, errno, "read failed");
    return -1;
  }
  r->m_sha.update(r->m_buf.data(), static_cast<std::size_t>(n));
  r->m_total += static_cast<std::uint64_t>(n);
  *buff = r->m_buf.data();
  return n;
}

Status ArchiveReader::open(const std::string& label) {
  m_label = label;
  m_archive.reset(archive_read_new());
  if (!m_archive) throw std::bad_alloc();
  // Only the compressions a rootfs tarball or image layer uses, each decoded in-process by the
  // library: filter_all would also run external programs (lrzip, lzop, grzip) chosen by the
  // archive's first bytes.
  archive_read_support_filter_none(m_archive.get());
  archive_read_support_filter_gzip(m_archive.get());
  archive_read_support_filter_bzip2(m_archive.get());
  archive_read_support_filter_xz(m_archive.get());
  archive_read_support_filter_lzma(m_archive.get());
  archive_read_support_filter_zstd(m_archive.get());
  archive_read_support_format_tar(m_archive.get());
  if (archive_read_open(m_archive.get(), this, nullptr, &ArchiveReader::read_cb, nullptr) != ARCHIVE_OK)
    return fail(Errc::parse, str(quote(label), ": ", archive_error_string(m_archive.get())));
  return {};
}

Result<bool> ArchiveReader::next(archive_entry** entry) {
  const int rc = archive_read_next_header(m_archive.get(), entry);
  if (rc == ARCHIVE_EOF) return false;
  if (rc == ARCHIVE_OK || rc == ARCHIVE_WARN) return true;
  return fail(Errc::parse, str(quote(m_label), ": ", archive_error_string(m_archive.get()),
                               m_errno ? str(" (", sys::errno_message(m_errno), ")") : std::string()));
}

Result<std::string> ArchiveReader::finish_hash() {
  // Whatever libarchive did not ask for (padding after the end-of-archive blocks) is hashed
  // too: the digest covers the whole file, read once.
  while (true) {
    const ssize_t n = sys::retry_eintr([&] { return ::read(m_fd.get(), m_buf.data(), m_buf.size()); });
    if (n < 0) return fail_errno(str("read(", quote(m_label), ")"), errno);
    if (n == 0) break;
    m_sha.update(m_buf.data(), static_cast<std::size_t>(n));
  }
  return m_sha.hex_final();
}

Status write_entry_data(struct archive* a, int fd, archive_entry* entry, const std::string& path, std::uint64_t& bytes, UnpackCheck* check) {
  const void* buf = nullptr;
  std::size_t size = 0;
  la_int64_t offset = 0;
  std::uint64_t end = 0;
  while (true) {
    const int rc = archive_read_data_block(a, &buf, &size, &offset);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) return fail(Errc::parse, str("reading the data of ", quote(path), ": ", archive_error_string(a)));
    const char* p = static_cast<const char*>(buf);
    if (check) {
      if (static_cast<std::uint64_t>(offset) != end)
        return fail(Errc::mismatch, str(quote(path), " has a hole at byte ", end, " (sparse files are refused)"));
      TRY(check->data(std::string_view(p, size), static_cast<std::uint64_t>(offset)));
    }
    std::size_t left = size;
    auto off = static_cast<off_t>(offset);
    while (left > 0) {
      const ssize_t n = sys::retry_eintr([&] { return ::pwrite(fd, p, left, off); });
      if (n < 0) return fail_errno(str("pwrite(", quote(path), ")"), errno);
      p += n;
      left -= static_cast<std::size_t>(n);
      off += n;
    }
    bytes += size;
    end = std::max<std::uint64_t>(end, static_cast<std::uint64_t>(offset) + size);
  }
  // Sparse files end in a hole that no data block covers. Under a check, the check's end()
  // refuses a file shorter than it should be instead.
  if (!check && archive_entry_size_is_set(entry) && static_cast<std::uint64_t>(archive_entry_size(entry)) > end) {
    if (::ftruncate(fd, archive_entry_size(entry)) != 0) return fail_errno(str("ftruncate(", quote(path), ")"), errno);
  }
  return {};
}

EntryMeta meta_of(archive_entry* entry) {
  EntryMeta m;
  m.mode = static_cast<std::uint32_t>(archive_entry_mode(entry) & 07777);
  m.uid = static_cast<std::uint32_t>(archive_entry_uid(entry));
  m.gid = static_cast<std::uint32_t>(archive_entry_gid(entry));
  m.mtime_sec = archive_entry_mtime(entry);
  m.mtime_nsec = static_cast<std::uint32_t>(archive_entry_mtime_nsec(entry));
  if (archive_entry_xattr_reset(entry) > 0) {
    const char* name = nullptr;
    const void* value = nullptr;
    std::size_t size = 0;
    while (archive_entry_xattr_next(entry, &name, &value, &size) == ARCHIVE_OK) {
      if (!name) continue;
      m.xattrs.push_back({name, std::string(static_cast<const char*>(value), size)});
    }
    // libarchive's pax reader can report one attribute twice (SCHILY.xattr and LIBARCHIVE.xattr
    // headers); keep the last of each name.
    std::stable_sort(m.xattrs.begin(), m.xattrs.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    std::vector<sys::Xattr> unique;
    for (auto& x : m.xattrs) {
      if (!unique.empty() && unique.back().name == x.name) unique.back() = std::move(x);
      else unique.push_back(std::move(x));
    }
    m.xattrs = std::move(unique);
  }
  return m;
}

namespace {
manifest::Type type_of(archive_entry* entry) {
  switch (archive_entry_filetype(entry)) {
    case AE_IFREG:
      return manifest::Type::file;
    case AE_IFDIR:
      return manifest::Type::dir;
    case AE_IFLNK:
      return manifest::Type::symlink;
    case AE_IFCHR:
      return manifest::Type::chardev;
    case AE_IFBLK:
      return manifest::Type::blockdev;
    case AE_IFIFO:
      return manifest::Type::fifo;
    default:
      return manifest::Type::socket;  // sockets and unknown types, which are never extracted
  }
}
}  // namespace

Result<ExtractStats> extract(const std::string& archive_path, TreeWriter& tree, const std::string& expected_sha256, const ExtractProgress& progress,
                             bool whiteouts, UnpackCheck* check) {
  auto fd = TRY(sys::open_path(archive_path, O_RDONLY | O_NOCTTY));
  auto st = TRY(sys::fstat(fd.get()));
  if (!S_ISREG(st.st_mode)) return fail(Errc::invalid_argument, str(quote(archive_path), " is not a regular file"));
  ArchiveReader reader(std::move(fd));
  TRY(reader.open(archive_path));
  ExtractStats stats;
  std::set<std::string> created;  // this layer's entries, which whiteouts do not remove
  archive_entry* entry = nullptr;
  while (TRY(reader.next(&entry))) {
    const char* raw = archive_entry_pathname(entry);
    if (!raw) return fail(Errc::parse, str(quote(archive_path), ": an entry has no usable name"));
    auto path = TRY(with_context(normalize_entry_path(raw), [&] { return str("extracting ", archive_path); }));
    ++stats.entries;
    auto meta = meta_of(entry);
    // trusted.* attributes steer the kernel (overlayfs reads trusted.overlay.* as redirects and
    // whiteouts) and system.* ones are ACLs and the like: an archive does not get to set them.
    const auto kept = std::remove_if(meta.xattrs.begin(), meta.xattrs.end(),
                                     [](const sys::Xattr& x) { return x.name.starts_with("trusted.") || x.name.starts_with("system."); });
    stats.xattrs_skipped += static_cast<std::uint64_t>(meta.xattrs.end() - kept);
    meta.xattrs.erase(kept, meta.xattrs.end());
    stats.newest_mtime = std::max<std::int64_t>(stats.newest_mtime, meta.mtime_sec);
    if (check) {
      // Before anything of the entry is written: a refusal stops here.
      ArchiveEntry ae;
      ae.path = path;
      ae.type = type_of(entry);
      ae.mode = meta.mode;
      ae.uid = meta.uid;
      ae.gid = meta.gid;
      ae.size = archive_entry_size_is_set(entry) && archive_entry_size(entry) > 0 ? static_cast<std::uint64_t>(archive_entry_size(entry)) : 0;
      ae.sparse = archive_entry_sparse_count(entry) > 0;
      if (const char* t = archive_entry_symlink(entry)) ae.target = t;
      ae.rdev_major = static_cast<std::uint32_t>(archive_entry_rdevmajor(entry));
      ae.rdev_minor = static_cast<std::uint32_t>(archive_entry_rdevminor(entry));
      if (const char* link = archive_entry_hardlink(entry))
        ae.hardlink = TRY(with_context(normalize_entry_path(link), [&] { return str("extracting ", archive_path); }));
      ae.xattrs = meta.xattrs;
      auto admitted = TRY(with_context(check->begin(ae), [&] { return str("extracting ", archive_path); }));
      if (admitted.skip) continue;  // its data is skipped by the next header read
      meta.mode = admitted.mode;
      meta.xattrs = std::move(admitted.xattrs);
    }
    auto step = [&]() -> Status {
      if (whiteouts && path != "/") {
        const auto slash = path.find_last_of('/');
        const std::string dir = slash == 0 ? "/" : path.substr(0, slash);
        const std::string base = path.substr(slash + 1);
        if (base == ".wh..wh..opq") {
          ++stats.whiteouts;
          std::vector<std::string> keep(created.begin(), created.end());
          return tree.remove_children_except(dir, keep);
        }
        if (base.starts_with(".wh.")) {
          ++stats.whiteouts;
          const std::string name = base.substr(4);
          // ".wh." + "." or ".." would name the layer's directory or its parent (outside the tree).
          if (name == "." || name == "..") return fail(Errc::permission, str("whiteout ", quote(path), " names ", quote(name), ", not an entry"));
          const std::string victim = str(dir == "/" ? "" : dir, "/", name);
          if (base.size() == 4 || created.count(victim)) return {};
          return tree.remove(victim);
        }
      }
      created.insert(path);
      if (const char* link = archive_entry_hardlink(entry)) {
        auto target = TRY(normalize_entry_path(link));
        return tree.make_hardlink(path, target);
      }
      switch (archive_entry_filetype(entry)) {
        case AE_IFDIR:
          return tree.make_dir(path, meta);
        case AE_IFREG: {
          auto out = TRY(tree.create_file(path));
          TRY(write_entry_data(reader.archive(), out.get(), entry, path, stats.bytes, check));
          TRY(tree.finish_file(out.get(), path, meta));
          if (check) {
            const auto written = TRY(sys::fstat(out.get()));
            TRY(check->end(static_cast<std::uint64_t>(written.st_ino)));
          }
          return {};
        }
        case AE_IFLNK: {
          const char* target = archive_entry_symlink(entry);
          if (!target) return fail(Errc::parse, str("symlink ", quote(path), " has no target"));
          return tree.make_symlink(path, target, meta);
        }
        case AE_IFCHR:
        case AE_IFBLK:
          return tree.make_node(path, archive_entry_filetype(entry) == AE_IFCHR ? S_IFCHR : S_IFBLK,
                                makedev(archive_entry_rdevmajor(entry), archive_entry_rdevminor(entry)), meta);
        case AE_IFIFO:
          return tree.make_node(path, S_IFIFO, 0, meta);
        default:
          return fail(Errc::unsupported, str("entry ", quote(path), " has a type that cannot be extracted (socket or unknown)"));
      }
    };
    TRY(with_context(step(), [&] { return str("extracting ", archive_path); }));
    if (progress && (stats.entries % 256) == 0) progress(stats);
  }
  stats.sha256 = TRY(reader.finish_hash());
  if (!expected_sha256.empty() && stats.sha256 != expected_sha256)
    return fail(Errc::mismatch, str(quote(archive_path), " has sha256 ", stats.sha256, " but the recipe pins ", expected_sha256));
  if (progress) progress(stats);
  return stats;
}

}  // namespace detail

Result<ExtractStats> extract_archive(const std::string& archive, TreeWriter& tree, const std::string& expected_sha256,
                                     const ExtractProgress& progress, UnpackCheck* check) {
  return detail::extract(archive, tree, expected_sha256, progress, false, check);
}

Result<ExtractStats> apply_layer(const std::string& layer, TreeWriter& tree, const ExtractProgress& progress) {
  return detail::extract(layer, tree, {}, progress, true);
}

}  // namespace chrootctl::builder
