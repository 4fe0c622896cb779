// The tree walk behind manifest::create: dirfd-relative, O_NOFOLLOW everywhere, hashing on a
// pool of threads while the walking thread keeps reading metadata.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "chrootctl/common/manifest.hpp"
#include "chrootctl/common/sha256.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/thread.hpp"

namespace chrootctl::manifest {

namespace {

// Directories deeper than this are walked without keeping their ancestors open: the parent is
// re-opened through ".." afterwards and checked to be the same directory. Keeps the number of
// open descriptors bounded for arbitrarily deep trees.
constexpr int k_max_open_depth = 128;
// Files are handed to the hashing threads in batches, so that a tree of small files does not
// cost a thread wake-up per file. A batch closes at this many files or bytes.
constexpr std::size_t k_batch_files = 64;
constexpr std::uint64_t k_batch_bytes = 8u << 20;
// Bound on queued batches (each file in them holds an open descriptor).
constexpr std::size_t k_max_queued_batches = 8;

std::optional<Type> type_of(mode_t m) {
  if (S_ISREG(m)) return Type::file;
  if (S_ISDIR(m)) return Type::dir;
  if (S_ISLNK(m)) return Type::symlink;
  if (S_ISCHR(m)) return Type::chardev;
  if (S_ISBLK(m)) return Type::blockdev;
  if (S_ISFIFO(m)) return Type::fifo;
  if (S_ISSOCK(m)) return Type::socket;
  return std::nullopt;
}

void fill_from_stat(Entry& e, const struct stat& st) {
  e.mode = st.st_mode & 07777;
  e.uid = st.st_uid;
  e.gid = st.st_gid;
  e.mtime_sec = st.st_mtim.tv_sec;
  e.mtime_nsec = static_cast<std::uint32_t>(st.st_mtim.tv_nsec);
  e.ctime_sec = st.st_ctim.tv_sec;
  e.ctime_nsec = static_cast<std::uint32_t>(st.st_ctim.tv_nsec);
  e.ino = st.st_ino;
  e.dev = st.st_dev;
  e.nlink = st.st_nlink;
  if (S_ISREG(st.st_mode)) e.size = static_cast<std::uint64_t>(st.st_size);
  if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
    e.rdev_major = major(st.st_rdev);
    e.rdev_minor = minor(st.st_rdev);
  }
}

bool same_file(const struct stat& a, const struct stat& b) { return a.st_dev == b.st_dev && a.st_ino == b.st_ino; }

std::string child_path(const std::string& dir, const std::string& name) { return dir == "/" ? "/" + name : dir + "/" + name; }

Error changed_during_walk(const std::string& path) {
  return Error(Errc::mismatch, str(quote(escape_bytes(path)), " changed while the tree was being walked (is something modifying it?)"));
}

using DirRef = std::shared_ptr<const Fd>;

// Per-entry work that needs system calls beyond the walker's fstatat: opening and hashing a file,
// reading a link, listing xattrs. It runs on the pool so that a tree of many small files keeps
// both cores busy; the walker only reads directories and stats names.
struct Job {
  Entry* entry;  ///< path and type (from the directory entry) set; the job fills the rest
  DirRef dir;
  std::string name;
};

class Walker {
 public:
  explicit Walker(const CreateOptions& o) : m_opts(o) {}

  Result<Manifest> run(const std::string& root) {
    auto rootfd = TRY(sys::open_path(root, O_RDONLY | O_DIRECTORY | O_NOCTTY).map_error([&](Error e) {
      if (e.sys_errno() == ENOTDIR) return Error(Errc::invalid_argument, str(quote(root), " is not a directory"));
      return e;
    }));
    auto st = TRY(sys::fstat(rootfd.get()));
    Entry& e = m_entries.emplace_back();
    e.path = "/";
    e.type = Type::dir;
    fill_from_stat(e, st);
    e.xattrs = TRY(with_context(sys::xattrs_fd(rootfd.get()), "reading attributes of the root"));

    start_workers();
    auto walked = walk_dir(std::make_shared<const Fd>(std::move(rootfd)), "/", 0);
    if (!walked) m_failed.store(true);
    // Sort pointers (moving each large entry once, below, rather than many times in a sort),
    // while the pool still hashes what is queued: paths are set by the walk and never touched
    // by the pool.
    std::vector<Entry*> order;
    if (walked) {
      flush_batch();
      order.reserve(m_entries.size());
      for (auto& x : m_entries) order.push_back(&x);
      std::sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) { return a->path < b->path; });
    }
    stop_workers();
    if (!walked) return fail(std::move(walked.error()));
    if (m_error) return fail(std::move(*m_error));
    report(true);

    Manifest m;
    m.entries.reserve(order.size());
    for (auto* x : order) m.entries.push_back(std::move(*x));
    assign_link_groups(m);
    return m;
  }

 private:
  // Walks one directory. The walker only reads directories and opens subdirectories; every
  // other entry becomes a job (stat, open, hash) on the pool.
  Status walk_dir(DirRef dir, const std::string& dir_path, int depth) {
    auto names = TRY(with_context(sys::read_dir(dir->get(), false), [&] { return str("reading directory ", quote(escape_bytes(dir_path))); }));
    for (auto& d : names) {
      if (m_failed.load(std::memory_order_relaxed)) return {};
      Entry& e = m_entries.emplace_back();
      e.path = child_path(dir_path, d.name);
      ++m_count;
      if (m_opts.progress && (m_count & 1023) == 0) report(false);

      unsigned char dtype = d.type;
      if (dtype == DT_UNKNOWN) {  // some filesystems do not fill d_type
        auto st = sys::lstat_at(dir->get(), d.name);
        if (!st) return fail(changed_during_walk(e.path));
        dtype = static_cast<unsigned char>(IFTODT(st->st_mode));
      }
      std::optional<Type> type;
      switch (dtype) {
        case DT_DIR:
          type = Type::dir;
          break;
        case DT_REG:
          type = Type::file;
          break;
        case DT_LNK:
          type = Type::symlink;
          break;
        case DT_CHR:
          type = Type::chardev;
          break;
        case DT_BLK:
          type = Type::blockdev;
          break;
        case DT_FIFO:
          type = Type::fifo;
          break;
        case DT_SOCK:
          type = Type::socket;
          break;
        default:
          return fail(Errc::unsupported, str(quote(escape_bytes(e.path)), ": unknown file type"));
      }
      e.type = *type;
      if (e.type == Type::dir) {
        TRY(descend(dir, dir_path, d.name, e, depth));
      } else {
        m_batch_bytes += 4096;  // sizes are not known yet; bound the batch by count mostly
        m_batch.push_back(Job{&e, dir, std::move(d.name)});
        if (m_batch.size() >= k_batch_files || m_batch_bytes >= k_batch_bytes) flush_batch();
      }
    }
    return {};
  }

  // Opens a subdirectory (O_NOFOLLOW: a directory swapped for a symlink is an error, never
  // followed), records it from fstat of what was actually opened, and walks it.
  // `dir` may be replaced: deep trees re-open it through "..".
  Status descend(DirRef& dir, const std::string& dir_path, const std::string& name, Entry& e, int depth) {
    auto child_r = sys::open_dir_at(dir->get(), name);
    if (!child_r) {
      const int err = child_r.error().sys_errno();
      if (err == ELOOP || err == ENOTDIR || err == ENOENT) return fail(changed_during_walk(e.path));
      return fail(std::move(child_r.error()).add_context(str("opening directory ", quote(escape_bytes(e.path)))));
    }
    auto child = std::make_shared<const Fd>(std::move(*child_r));
    auto st = TRY(sys::fstat(child->get()));
    if (!S_ISDIR(st.st_mode)) return fail(changed_during_walk(e.path));
    fill_from_stat(e, st);
    e.xattrs = TRY(with_context(sys::xattrs_fd(child->get()), [&] { return str("reading attributes of ", quote(escape_bytes(e.path))); }));
    const std::string path = e.path;

    if (depth < k_max_open_depth) return walk_dir(std::move(child), path, depth + 1);

    // Deep tree: drop our own descriptor while the child is walked (queued jobs may still hold
    // it), then come back through ".." and make sure it is still the directory we left.
    auto self = TRY(sys::fstat(dir->get()));
    dir.reset();
    TRY(walk_dir(child, path, depth + 1));
    auto parent = sys::open_at(child->get(), "..", O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (!parent) return fail(changed_during_walk(dir_path));
    auto pst = TRY(sys::fstat(parent->get()));
    if (!same_file(self, pst)) return fail(changed_during_walk(dir_path));
    dir = std::make_shared<const Fd>(std::move(*parent));
    return {};
  }

  // ---- worker pool ----
  void start_workers() {
    unsigned n = m_opts.threads ? m_opts.threads : std::thread::hardware_concurrency();
    n = std::clamp(n, 1u, 16u);
    for (unsigned i = 0; i < n; ++i) m_workers.emplace_back([this] { work(); });
  }

  void stop_workers() {
    flush_batch();
    {
      std::lock_guard lk(m_mu);
      m_done = true;
    }
    m_cv_work.notify_all();
    for (auto& t : m_workers) t.join();
    m_workers.clear();
  }

  void flush_batch() {
    if (m_batch.empty()) return;
    std::unique_lock lk(m_mu);
    m_cv_space.wait(lk, [&] { return m_queue.size() < k_max_queued_batches || m_failed.load(); });
    if (!m_failed.load()) m_queue.push_back(std::move(m_batch));
    lk.unlock();
    m_cv_work.notify_one();
    m_batch.clear();
    m_batch_bytes = 0;
  }

  void work() {
    while (true) {
      std::unique_lock lk(m_mu);
      m_cv_work.wait(lk, [&] { return !m_queue.empty() || m_done; });
      if (m_queue.empty()) return;
      std::vector<Job> batch = std::move(m_queue.front());
      m_queue.pop_front();
      lk.unlock();
      m_cv_space.notify_one();
      for (auto& job : batch) {
        if (m_failed.load(std::memory_order_relaxed)) break;
        if (auto r = do_job(job); !r) set_error(std::move(r.error()));
      }
    }
  }

  Status do_job(Job& job) {
    Entry& e = *job.entry;
    const int dirfd = job.dir->get();
    // Built only when something fails: this runs once per entry.
    auto label = [&] { return quote(escape_bytes(e.path)); };
    if (e.type != Type::file) {
      auto st = sys::lstat_at(dirfd, job.name);
      if (!st) {
        if (st.error().sys_errno() == ENOENT) return fail(changed_during_walk(e.path));
        return fail(std::move(st.error()).add_context(str("reading ", label())));
      }
      if (type_of(st->st_mode) != e.type) return fail(changed_during_walk(e.path));
      fill_from_stat(e, *st);
      if (e.type == Type::symlink) e.target = TRY(with_context(sys::readlink_at(dirfd, job.name), [&] { return str("reading link ", label()); }));
      // Devices, FIFOs and sockets are never opened: opening one can have side effects.
      e.xattrs = TRY(with_context(sys::xattrs_at(dirfd, job.name), [&] { return str("reading attributes of ", label()); }));
      return {};
    }
    // A regular file by its directory entry. O_NOFOLLOW refuses a symlink swapped in since;
    // O_NONBLOCK|O_NOCTTY make a swapped-in FIFO or terminal harmless to open, and the fstat
    // below refuses anything that is not a regular file. (Only root can put a device node into
    // a tree, and nodev mounts refuse to open one.)
    int flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY;
    if (m_noatime.load(std::memory_order_relaxed)) flags |= O_NOATIME;
    auto fd = sys::open_at(dirfd, job.name, flags);
    if (!fd && (flags & O_NOATIME) && fd.error().sys_errno() == EPERM) {
      m_noatime.store(false);  // O_NOATIME needs ownership or CAP_FOWNER
      fd = sys::open_at(dirfd, job.name, flags & ~O_NOATIME);
    }
    if (!fd) {
      const int err = fd.error().sys_errno();
      if (err == ELOOP || err == ENOENT || err == ENXIO) return fail(changed_during_walk(e.path));
      return fail(std::move(fd.error()).add_context(str("reading ", label())));
    }
    auto st = TRY(sys::fstat(fd->get()));
    if (!S_ISREG(st.st_mode)) return fail(changed_during_walk(e.path));
    fill_from_stat(e, st);
    e.xattrs = TRY(with_context(sys::xattrs_fd(fd->get()), [&] { return str("reading attributes of ", label()); }));
    if (!m_opts.hash) return {};
    const bool sparse = static_cast<std::uint64_t>(st.st_blocks) * 512 < static_cast<std::uint64_t>(st.st_size);
    auto h = TRY(with_context(sha256_fd(fd->get(), e.path, sparse, e.size), [&] { return str("hashing ", label()); }));
    if (h.size != e.size) return fail(changed_during_walk(e.path));
    e.sha256 = std::move(h.hex);
    m_files_hashed.fetch_add(1, std::memory_order_relaxed);
    m_bytes_hashed.fetch_add(h.size, std::memory_order_relaxed);
    return {};
  }

  void set_error(Error e) {
    std::lock_guard lk(m_mu);
    if (!m_error) m_error = std::move(e);
    m_failed.store(true);
    m_cv_space.notify_all();
  }

  void report(bool final) {
    if (!m_opts.progress) return;
    const auto now = sys::monotonic_ns();
    if (!final && now - m_last_report < 100'000'000) return;
    m_last_report = now;
    Progress p;
    p.entries = m_count + 1;
    p.files_hashed = m_files_hashed.load();
    p.bytes_hashed = m_bytes_hashed.load();
    m_opts.progress(p);
  }

  static void assign_link_groups(Manifest& m) {
    std::map<std::pair<std::uint64_t, std::uint64_t>, std::vector<std::size_t>> groups;
    for (std::size_t i = 0; i < m.entries.size(); ++i) {
      const auto& e = m.entries[i];
      if (e.type != Type::dir && e.nlink > 1) groups[{e.dev, e.ino}].push_back(i);
    }
    for (auto& [key, members] : groups) {
      if (members.size() < 2) continue;                            // other links are outside the tree
      const std::string leader = m.entries[members.front()].path;  // entries are sorted
      for (auto i : members) m.entries[i].link = leader;
    }
  }

  const CreateOptions& m_opts;
  std::deque<Entry> m_entries;  // deque: workers hold pointers while the walker appends
  std::uint64_t m_count = 0;
  std::int64_t m_last_report = 0;
  std::atomic<bool> m_noatime{true};

  std::mutex m_mu;
  std::condition_variable m_cv_work, m_cv_space;
  std::deque<std::vector<Job>> m_queue;
  std::vector<Job> m_batch;  // walker-side, not yet queued
  std::uint64_t m_batch_bytes = 0;
  bool m_done = false;
  std::atomic<bool> m_failed{false};
  std::optional<Error> m_error;
  std::vector<Thread> m_workers;
  std::atomic<std::uint64_t> m_files_hashed{0}, m_bytes_hashed{0};
};

}  // namespace

Result<Manifest> create(const std::string& root, const CreateOptions& options) {
  Walker w(options);
  return with_context(w.run(root), str("walking ", root));
}

}  // namespace chrootctl::manifest
