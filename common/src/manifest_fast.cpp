// The fast check: one fstatat per recorded entry, spread over threads, no directory reads and no
// file contents. Only when something differs does it walk the tree to list the differences.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <unordered_map>

#include "chrootctl/common/manifest.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/thread.hpp"
#include "manifest_internal.hpp"

namespace chrootctl::manifest {

namespace {

bool type_matches(Type t, mode_t m) {
  switch (t) {
    case Type::file:
      return S_ISREG(m);
    case Type::dir:
      return S_ISDIR(m);
    case Type::symlink:
      return S_ISLNK(m);
    case Type::chardev:
      return S_ISCHR(m);
    case Type::blockdev:
      return S_ISBLK(m);
    case Type::fifo:
      return S_ISFIFO(m);
    case Type::socket:
      return S_ISSOCK(m);
  }
  return false;
}

bool unchanged(const StatRecord::Item& e, const struct stat& st) {
  return type_matches(e.type, st.st_mode) && e.mode == (st.st_mode & 07777) && e.uid == st.st_uid && e.gid == st.st_gid &&
         (e.type != Type::file || e.size == static_cast<std::uint64_t>(st.st_size)) && e.dev == st.st_dev && e.ino == st.st_ino &&
         e.ctime_sec == st.st_ctim.tv_sec && e.ctime_nsec == static_cast<std::uint32_t>(st.st_ctim.tv_nsec);
}

}  // namespace

Result<DiffResult> check_fast(const std::string& root, const StatRecord& record, unsigned threads) {
  auto rootfd = TRY(sys::open_path(root, O_RDONLY | O_DIRECTORY | O_NOCTTY));
  const auto& items = record.items;
  if (items.empty() || std::string_view(record.relative_path(items.front())) != ".") return fail(Errc::parse, "the stat record has no root entry");

  // Every entry is stat'ed relative to its parent directory, which is opened (O_PATH, O_NOFOLLOW)
  // relative to its own parent: one short lookup per entry, never through a symlink. Entries
  // are in byte order, so a parent always comes before its children and the entries below a
  // directory form one contiguous block; a directory's descriptor is closed after its last child.
  const std::size_t count = items.size();
  std::vector<std::uint32_t> parent(count, 0), last_child(count, 0), name_offset(count, 0);
  {
    std::unordered_map<std::string_view, std::uint32_t> dirs;
    dirs.reserve(count / 4 + 8);
    dirs.emplace(std::string_view(""), 0);  // the root, as the parent of top-level names
    // Most entries share the parent of the one before them: compared first, hashed only when not.
    std::string_view last_parent_rel;
    std::uint32_t last_parent = 0;
    bool have_last = false;
    for (std::uint32_t i = 1; i < count; ++i) {
      const std::string_view rel = record.relative_path(items[i]);
      const auto slash = rel.rfind('/');
      const std::string_view parent_rel = slash == std::string_view::npos ? std::string_view("") : rel.substr(0, slash);
      if (!have_last || parent_rel != last_parent_rel) {
        auto it = dirs.find(parent_rel);
        if (it == dirs.end() || items[it->second].type != Type::dir)
          return fail(Errc::parse, str("the stat record lists ", quote(rel), " without its parent directory"));
        last_parent_rel = parent_rel;
        last_parent = it->second;
        have_last = true;
      }
      parent[i] = last_parent;
      last_child[last_parent] = i;
      name_offset[i] = static_cast<std::uint32_t>(slash == std::string_view::npos ? 0 : slash + 1);
      if (items[i].type == Type::dir) dirs.emplace(rel, i);
    }
  }

  unsigned n = threads ? threads : std::thread::hardware_concurrency();
  n = std::clamp<unsigned>(n, 1, 8);
  if (count < 2048) n = 1;  // threads cost more than they save on small trees
  // The entries are handed out in chunks, each to whichever thread asks next, rather than in
  // one fixed share per thread: a core that runs slower (a virtual CPU just woken, or one
  // shared with another thread) then simply takes fewer chunks instead of holding up the end.
  constexpr std::size_t k_chunk = 256;
  std::atomic<std::size_t> next_chunk{0};
  // Allocated here: a thread's first malloc would set up a new arena, which costs more than
  // its share of the scan.
  std::vector<std::vector<int>> fd_tables(n, std::vector<int>(count, -1));
  std::vector<std::vector<std::uint32_t>> opened_tables(n);
  for (auto& o : opened_tables) o.reserve(count);

  std::atomic<bool> differs{false};
  auto scan = [&](std::vector<int>& fds, std::vector<std::uint32_t>& opened) {
    // The root is re-opened per thread: a shared open file would have its reference count
    // bounced between cores on every lookup.
    auto root_own = sys::open_at(rootfd.get(), ".", O_PATH | O_DIRECTORY);
    if (!root_own) {
      differs.store(true);
      return;
    }
    fds[0] = root_own->get();
    struct stat st {};
    // Opens directory `d` (and, at the start of a chunk, its ancestors) without following
    // symlinks; checks each directory it opens against the record.
    auto open_dir = [&](auto& self, std::uint32_t d) -> int {
      if (fds[d] >= 0) return fds[d];
      const int pfd = self(self, parent[d]);
      if (pfd < 0) return -1;
      const int fd = ::openat(pfd, record.relative_path(items[d]) + name_offset[d], O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) return -1;
      struct stat dst {};
      if (::fstat(fd, &dst) != 0 || !unchanged(items[d], dst)) {
        ::close(fd);
        return -1;
      }
      opened.push_back(d);
      return fds[d] = fd;
    };
    while (!differs.load(std::memory_order_relaxed)) {
      const std::size_t begin = next_chunk.fetch_add(1, std::memory_order_relaxed) * k_chunk;
      if (begin >= count) break;
      const std::size_t end = std::min(count, begin + k_chunk);
      if (begin == 0 && (::fstat(fds[0], &st) != 0 || !unchanged(items[0], st))) differs.store(true);
      for (std::size_t i = std::max<std::size_t>(begin, 1); i < end && !differs.load(std::memory_order_relaxed); ++i) {
        const auto& it = items[i];
        const int pfd = open_dir(open_dir, parent[i]);
        if (pfd < 0) {
          differs.store(true);
          break;
        }
        if (it.type == Type::dir && last_child[i] != 0) {
          // Checked as it is opened, for its children.
          if (open_dir(open_dir, static_cast<std::uint32_t>(i)) < 0) differs.store(true);
        } else if (::fstatat(pfd, record.relative_path(it) + name_offset[i], &st, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT) != 0 || !unchanged(it, st)) {
          differs.store(true);
        }
        const std::uint32_t p = parent[i];
        if (p != 0 && last_child[p] == i && fds[p] >= 0) {
          ::close(fds[p]);
          fds[p] = -1;
        }
      }
      // The next chunk may be far from this one: close what this one left open.
      for (const auto d : opened)
        if (fds[d] >= 0) {
          ::close(fds[d]);
          fds[d] = -1;
        }
      opened.clear();
    }
  };
  {
    std::vector<Thread> pool;
    for (unsigned t = 1; t < n; ++t) pool.emplace_back([&, t] { scan(fd_tables[t], opened_tables[t]); });
    scan(fd_tables[0], opened_tables[0]);
  }
  if (!differs.load()) return DiffResult{};

  // Something changed: walk the tree (metadata only, dirfd-relative) to say exactly what.
  CreateOptions o;
  o.hash = false;
  auto fresh = TRY(create(root, o));
  Manifest recorded;
  recorded.entries = record.entries();
  auto d = diff_with(recorded, fresh, CompareOptions{false, true});
  if (!d.differs_beyond_mtime()) {
    // The tree changed between the two looks; report it rather than pass.
    d.differences.push_back({Difference::Kind::changed, "/", {{"ctime", "-", "changed during the check"}}});
  }
  return d;
}

}  // namespace chrootctl::manifest
