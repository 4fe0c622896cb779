// Shared mounts of sealed images (sealed.hpp; docs/sealed.md). Every change to an image's
// mount happens under the flock of its STATE/sealed/KEY directory, in this order, each step
// recorded before it is taken so that `reclaim` can undo what a killed launcher left:
//   state (file, its identity, the planned dm name) -> loop device -> dm-verity device ->
//   device node -> mount -> state (mounted) -> holder
// and undone in reverse: unmount (detached: a job's own copy of the mount may still be going
// away), dm device removed once unused, the loop device detaches itself with its last user.
#include "chrootctl/launcher/sealed.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <utility>

#include "blockdev.hpp"
#include "chrootctl/common/files.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/launcher/cleanup.hpp"
#include "kernel.hpp"

namespace chrootctl::launcher::sealed {

namespace {

constexpr const char* k_state_magic = "chrootctl-sealed 1";
constexpr const char* k_kept = k_kept_holder;

// What identifies the image file's contents between two checks: a write changes the mtime
// and the ctime, which no system call can set back.
struct FileId {
  std::uint64_t dev = 0, ino = 0, size = 0;
  std::int64_t mtime_sec = 0, ctime_sec = 0;
  std::int64_t mtime_nsec = 0, ctime_nsec = 0;
  friend bool operator==(const FileId&, const FileId&) = default;
};
FileId file_id(const struct stat& st) {
  return {st.st_dev, st.st_ino, static_cast<std::uint64_t>(st.st_size), st.st_mtim.tv_sec, st.st_ctim.tv_sec, st.st_mtim.tv_nsec, st.st_ctim.tv_nsec};
}
std::string file_id_text(const FileId& f) {
  return str(f.dev, " ", f.ino, " ", f.size, " ", f.mtime_sec, ".", f.mtime_nsec, " ", f.ctime_sec, ".", f.ctime_nsec);
}
std::optional<FileId> parse_file_id(std::string_view text) {
  const auto p = split(text, ' ');
  if (p.size() != 5) return std::nullopt;
  FileId f;
  auto dev = parse_u64(p[0]), ino = parse_u64(p[1]), size = parse_u64(p[2]);
  const auto m = split(p[3], '.'), c = split(p[4], '.');
  if (!dev || !ino || !size || m.size() != 2 || c.size() != 2) return std::nullopt;
  auto ms = parse_u64(m[0]), mn = parse_u64(m[1]), cs = parse_u64(c[0]), cn = parse_u64(c[1]);
  if (!ms || !mn || !cs || !cn) return std::nullopt;
  f.dev = *dev;
  f.ino = *ino;
  f.size = *size;
  f.mtime_sec = static_cast<std::int64_t>(*ms);
  f.mtime_nsec = static_cast<std::int64_t>(*mn);
  f.ctime_sec = static_cast<std::int64_t>(*cs);
  f.ctime_nsec = static_cast<std::int64_t>(*cn);
  return f;
}
std::string describe(const FileId& f) {
  return str("device ", major(f.dev), ":", minor(f.dev), ", inode ", f.ino, ", ", f.size, " bytes, mtime ", f.mtime_sec, ".", f.mtime_nsec,
             ", ctime ", f.ctime_sec, ".", f.ctime_nsec);
}

// The record of an image's mount, STATE/sealed/KEY/state.
struct State {
  std::string file;               // the image file that is (being) mounted
  FileId id;                      // its identity when it was opened
  std::string dm;                 // the dm-verity device ("" without)
  std::string tree;               // the hash tree it was mounted with (tree_of)
  std::optional<RootId> mounted;  // the mount's root, once it is mounted
};

// What a mount of an image file is checked against besides its SHA-256, which names the mount:
// with dm-verity the file is never hashed whole, so a file claiming another's SHA-256 with a
// hash tree of its own would be mounted under that name. A share is taken only by callers
// whose image describes the same tree.
std::string tree_of(const manifest::Sealed& s) { return str(s.root_hash, ".", s.salt, ".", s.hash_offset, ".", s.size); }

Status check_same_tree(const std::string& dir, const std::string& mounted_file, const std::string& mounted_tree, const Image& image) {
  if (mounted_tree == tree_of(image.sealed)) return {};
  return fail(Errc::mismatch, str("the sealed image mounted in ", dir, " (", mounted_file, ") has SHA-256 ", image.sealed.sha256,
                                  " but another hash tree than ", image.file, " describes (root hash ", image.sealed.root_hash,
                                  "); it is not used: unmount it ('chrootctl cleanup' once no job holds it)"));
}
std::string render_state(const State& s) {
  std::string t =
      str(k_state_magic, "\n", "file ", escape_bytes(s.file), "\n", "file-id ", file_id_text(s.id), "\n", "dm ", s.dm.empty() ? "-" : s.dm, "\n");
  if (!s.tree.empty()) t += str("tree ", s.tree, "\n");
  if (s.mounted) t += str("mounted ", s.mounted->dev, " ", s.mounted->ino, "\n");
  return t;
}
std::optional<State> parse_state(std::string_view text) {
  const auto lines = split(text, '\n');
  if (lines.empty() || lines[0] != k_state_magic) return std::nullopt;
  State s;
  bool have_file = false, have_id = false, have_dm = false;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const std::string_view l = lines[i];
    if (starts_with(l, "file ")) {
      auto f = unescape_bytes(l.substr(5));
      if (!f || f->empty() || (*f)[0] != '/') return std::nullopt;
      s.file = std::move(*f);
      have_file = true;
    } else if (starts_with(l, "file-id ")) {
      auto id = parse_file_id(l.substr(8));
      if (!id) return std::nullopt;
      s.id = *id;
      have_id = true;
    } else if (starts_with(l, "dm ")) {
      s.dm = l.substr(3) == "-" ? "" : std::string(l.substr(3));
      have_dm = true;
    } else if (starts_with(l, "tree ")) {
      s.tree = std::string(l.substr(5));
    } else if (starts_with(l, "mounted ")) {
      const auto p = split(l.substr(8), ' ');
      auto dev = p.size() == 2 ? parse_u64(p[0]) : std::nullopt;
      auto ino = p.size() == 2 ? parse_u64(p[1]) : std::nullopt;
      if (!dev || !ino) return std::nullopt;
      s.mounted = RootId{*dev, *ino};
    } else if (!l.empty()) {
      return std::nullopt;
    }
  }
  if (!have_file || !have_id || !have_dm) return std::nullopt;
  return s;
}

// Creates `dir` (0755) if missing and refuses one that is a symlink, not a directory, not owned
// by this user or writable by others: whoever could write here could make a launch mount or
// unmount what they choose.
Status ensure_dir(const std::string& dir) {
  TRY(sys::mkdir_path(dir, 0755, true));
  const auto st = TRY(sys::lstat_path(dir));
  if (!S_ISDIR(st.st_mode)) return fail(Errc::permission, str(dir, " is not a directory"));
  if (st.st_uid != ::geteuid()) return fail(Errc::permission, str(dir, " is owned by uid ", st.st_uid, ", not by uid ", ::geteuid()));
  if (st.st_mode & 022) return fail(Errc::permission, str(dir, " is writable by group or others (mode ", mode_octal(st.st_mode & 07777), ")"));
  return {};
}

// A directory read by a launcher that is not root: it must be root's and unwritable by others.
Status check_root_owned(const std::string& path, const struct stat& st) {
  if (st.st_uid != 0 || (st.st_mode & 022))
    return fail(Errc::permission, str(path, " is not root's, or writable by others (uid ", st.st_uid, ", mode ", mode_octal(st.st_mode & 07777),
                                      "); refusing to use it"));
  return {};
}

bool valid_key(const std::string& key) {
  return key.size() == 64 && std::all_of(key.begin(), key.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

Result<std::optional<State>> read_state(const std::string& dir) {
  auto text = sys::read_file(dir + "/state", 64 * 1024);
  if (!text) {
    if (text.error().sys_errno() == ENOENT) return std::optional<State>();
    return fail(std::move(text.error()));
  }
  auto s = parse_state(*text);
  if (!s) return fail(Errc::parse, str(dir, "/state is not a sealed mount's record"));
  return s;
}

Status write_state(const std::string& dir, const State& s) { return write_file_atomic(dir + "/state", render_state(s), 0644); }

// The mount at DIR/root, if it is the one the state records (same device and inode).
bool is_mounted(const std::string& dir, const State& s) {
  if (!s.mounted) return false;
  const auto st = sys::lstat_path(dir + "/root");
  return st && st->st_dev == s.mounted->dev && st->st_ino == s.mounted->ino;
}

// Drops the holders whose launcher is gone; returns those left.
std::vector<std::string> prune_holders(const std::string& dir, std::vector<std::string>* released) {
  std::vector<std::string> left;
  auto fd = sys::open_path(dir + "/holders", O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  if (!fd) return left;
  auto entries = sys::read_dir(fd->get(), false);
  if (!entries) return left;
  for (const auto& e : *entries) {
    if (e.name == k_kept) {
      left.push_back(e.name);
      continue;
    }
    auto owner = parse_launch_name(e.name);
    if (owner && launch_is_live(*owner)) {
      left.push_back(e.name);
      continue;
    }
    if (sys::unlink_at(fd->get(), e.name) && released) released->push_back(str(dir, "/holders/", e.name));
  }
  return left;
}

// Undoes whatever the state records: the mount (detached, so that a process of the host
// that still has a directory open in it cannot keep the rest from going), the dm device
// (removed once its last user, the mount or a job's copy of it, is gone), the device node and
// the state itself. The loop device detaches itself when the last of them lets it go.
Status teardown(const std::string& dir, const State& s, const Backend& backend) {
  const auto root = sys::lstat_path(dir + "/root");
  const auto here = root ? sys::lstat_path(dir) : root;
  if (root && here && root->st_dev != here->st_dev) TRY(kernel::umount_detach(dir + "/root", dir + "/root"));
  if (!s.dm.empty()) TRY(with_context(backend.deactivate(s.dm), str("unmounting ", s.file)));
  for (const char* f : {"/device", "/state"})
    if (auto r = sys::unlink_at(AT_FDCWD, dir + f); !r && r.error().sys_errno() != ENOENT)
      return fail_errno(str("unlink(", quote(dir + f), ")"), r.error().sys_errno());
  return {};
}

// Without dm-verity the kernel checks nothing, so the whole file is hashed before it is first
// mounted after boot (or after it changed): the result is kept, under /run, for the file's
// identity, and a file with another identity is hashed again.
Status check_sha256_once(const Options& o, const Image& image, int fd, const FileId& id, const Backend& backend) {
  const std::string dir = o.state_dir + "/sealed/checked";
  TRY(ensure_dir(dir));
  const std::string record = str(dir, "/", image.sealed.sha256);
  if (auto text = sys::read_file(record, 4096); text && *text == file_id_text(id) + "\n") return {};
  const std::string got = TRY(backend.sha256_file(fd, image.file));
  if (got != image.sealed.sha256)
    return fail(Errc::mismatch, str("the image file ", image.file, " has SHA-256 ", got, ", not the recorded ", image.sealed.sha256,
                                    "; it was changed since it was verified (run 'chrootctl verify')"));
  return write_file_atomic(record, file_id_text(id) + "\n", 0644);
}

// Opens the image file and checks it as the catalogue did: a regular file owned by root,
// unwritable by others, of the recorded size.
Result<std::pair<Fd, FileId>> open_image(const Image& image) {
  Fd fd = TRY(with_context(sys::open_path(image.file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY), "opening the sealed image"));
  const auto st = TRY(sys::fstat(fd.get()));
  if (!S_ISREG(st.st_mode)) return fail(Errc::permission, str("the sealed image ", image.file, " is not a regular file"));
  if (st.st_uid != 0 || (st.st_mode & 022))
    return fail(Errc::permission, str("the sealed image ", image.file, " is not root's, or is writable by others (uid ", st.st_uid, ", mode ",
                                      mode_octal(st.st_mode & 07777), ")"));
  if (static_cast<std::uint64_t>(st.st_size) != image.sealed.size)
    return fail(Errc::mismatch, str("the sealed image ", image.file, " has ", st.st_size, " bytes, not the recorded ", image.sealed.size,
                                    " (run 'chrootctl verify')"));
  return std::make_pair(std::move(fd), file_id(st));
}

// Mounts the image at DIR/root: loop device, then dm-verity or the SHA-256 check, then the
// filesystem read-only, nosuid, nodev.
Result<State> mount_image(const std::string& dir, const Image& image, const Options& o, const Backend& backend) {
  // Named, not a structured binding: the lambda below captures `file`, which C++20 allows
  // for bindings but clang 14 (the sanitizer build) does not.
  auto opened = TRY(open_image(image));
  Fd file = std::move(opened.first);
  const auto id = opened.second;
  const bool verity = o.verity == VerityPolicy::automatic && blockdev::have_device_mapper();
  if (!verity) TRY(check_sha256_once(o, image, file.get(), id, backend));
  State s;
  s.file = image.file;
  s.id = id;
  s.tree = tree_of(image.sealed);
  if (verity) s.dm = str("chrootctl-", image.sealed.sha256.substr(0, 16), "-", TRY(sys::random_hex(4)));
  TRY(write_state(dir, s));  // before anything exists: reclaim knows what to undo
  auto made = [&]() -> Status {
    const blockdev::Loop loop = TRY(blockdev::attach_loop(file.get(), image.file));
    dev_t device = loop.device;
    if (verity) {
      TRY(backend.activate(loop.path, s.dm, image.sealed));
      device = TRY(blockdev::dm_device(s.dm));
    }
    const std::string node = dir + "/device";
    (void)sys::unlink_at(AT_FDCWD, node);  // a node left by a launch that died
    if (auto r = sys::mknod_at(AT_FDCWD, node, S_IFBLK | 0600, device); !r)
      return fail_errno(str("mknod(", quote(node), ", S_IFBLK, ", major(device), ":", minor(device), ")"), r.error().sys_errno());
    const std::string root = dir + "/root";
    if (auto r = sys::mkdir_path(root, 0755, true); !r) return fail_errno(str("mkdir(", quote(root), ")"), r.error().sys_errno());
    TRY(kernel::mount(node.c_str(), root, image.sealed.format.c_str(), MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr,
                      verity ? "/dev/mapper/" + s.dm : loop.path, root));
    const auto st = TRY(sys::lstat_path(root));
    s.mounted = RootId{st.st_dev, st.st_ino};
    return write_state(dir, s);
  };
  if (auto r = made(); !r) {
    (void)teardown(dir, s, backend);
    return fail(std::move(r.error()).add_context(str("mounting the sealed image ", image.file)));
  }
  return s;
}

// The flock of DIR, and DIR still in place once it is held: the holder before may have removed
// it (with its last user) while this one waited. nullopt when DIR is gone.
Result<std::optional<Fd>> lock_dir(const std::string& dir) {
  auto fd = sys::open_path(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (!fd) {
    if (fd.error().sys_errno() == ENOENT) return std::optional<Fd>();
    return fail(std::move(fd.error()));
  }
  TRY(with_context(sys::flock(fd->get(), true), str("locking ", dir)));
  const auto held = TRY(sys::fstat(fd->get()));
  const auto now = sys::lstat_path(dir);
  if (!now || now->st_dev != held.st_dev || now->st_ino != held.st_ino) return std::optional<Fd>();
  return std::optional<Fd>(std::move(*fd));
}

// Once an image is unmounted and nobody holds it, its directory goes (mount point, holders'
// directory, the directory itself), so that /run keeps nothing of images no longer used. A
// launch waiting for the lock finds it gone and makes it again.
void remove_key_dir(const std::string& dir) {
  (void)sys::unlink_at(AT_FDCWD, dir + "/root", AT_REMOVEDIR);
  if (auto r = sys::unlink_at(AT_FDCWD, dir + "/holders", AT_REMOVEDIR); !r && r.error().sys_errno() != ENOENT)
    return;  // a holder came meanwhile: keep it all
  (void)sys::unlink_at(AT_FDCWD, dir, AT_REMOVEDIR);
}

// Removes `holder` and unmounts the image once no holder is left, unless the site keeps mounts
// and `unmount_kept` is false.
Status release_locked(const std::string& dir, const std::string& holder, const Options& o, const Backend& backend, bool unmount_kept) {
  if (!holder.empty()) {
    if (auto r = sys::unlink_at(AT_FDCWD, str(dir, "/holders/", holder)); !r && r.error().sys_errno() != ENOENT)
      return fail_errno(str("unlink(", quote(str(dir, "/holders/", holder)), ")"), r.error().sys_errno());
  }
  if (!prune_holders(dir, nullptr).empty() || (o.keep_mounted && !unmount_kept)) return {};
  auto s = TRY(read_state(dir));
  if (s) TRY(teardown(dir, *s, backend));
  remove_key_dir(dir);
  return {};
}

}  // namespace

Result<std::string> holder_for_self() {
  const auto self = TRY(kernel::self_stat());
  return new_launch_name(self.start_time);
}

Result<std::string> holder_for(pid_t pid) {
  const auto start = kernel::process_start_time(pid);
  if (!start) return fail(Errc::not_found, str("no process ", pid));
  return str(pid, ".", *start, ".0");
}

std::string mounts_state_dir() {
  if (const char* d = std::getenv("CHROOTCTL_STATE_DIR"); d && *d) return d;
  return "/run/chrootctl";
}

std::string key_dir(const Options& options, const Image& image) { return str(options.state_dir, "/sealed/", image.sealed.sha256); }

Result<Share> Share::acquire(const Image& image, const Options& options, const Backend& backend, const std::string& holder) {
  if (!valid_key(image.sealed.sha256)) return fail(Errc::invalid_argument, str("bad image SHA-256 ", quote(image.sealed.sha256)));
  if (holder != k_kept && !parse_launch_name(holder)) return fail(Errc::invalid_argument, str("bad holder name ", quote(holder)));
  if (options.state_dir.empty()) return fail(Errc::internal, "no state directory for sealed images");
  TRY(ensure_dir(options.state_dir));
  TRY(ensure_dir(options.state_dir + "/sealed"));
  const std::string dir = key_dir(options, image);
  std::optional<Fd> lock;
  for (int attempt = 0; !lock; ++attempt) {
    if (attempt == 8) return fail(Errc::busy, str(dir, " keeps being removed by other launches"));
    TRY(ensure_dir(dir));
    lock = TRY(lock_dir(dir));
  }
  TRY(ensure_dir(dir + "/holders"));
  (void)prune_holders(dir, nullptr);
  auto state = TRY(read_state(dir));
  if (state && is_mounted(dir, *state)) {
    TRY(check_same_tree(dir, state->file, state->tree, image));
    // Without dm-verity, the file that is mounted must still be the one that was checked.
    if (state->dm.empty()) {
      auto st = sys::stat_path(state->file);
      if (!st || file_id(*st) != state->id)
        return fail(Errc::mismatch, str("the sealed image ", state->file, " changed since it was checked and mounted (was ", describe(state->id),
                                        st ? str(", now ", describe(file_id(*st))) : str(""), "); run 'chrootctl verify'"));
    }
  } else {
    if (state) TRY(with_context(teardown(dir, *state, backend), str("removing what an earlier mount of ", state->file, " left")));
    auto mounted = mount_image(dir, image, options, backend);
    if (!mounted) {
      if (prune_holders(dir, nullptr).empty()) remove_key_dir(dir);
      return fail(std::move(mounted.error()));
    }
    state = std::move(*mounted);
  }
  const std::string holder_path = str(dir, "/holders/", holder);
  Fd h = TRY(sys::open_path(holder_path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644));
  Share s;
  s.m_options = options;
  s.m_backend = backend;
  s.m_key_dir = dir;
  s.m_holder = holder;
  s.m_root = dir + "/root";
  s.m_root_id = *state->mounted;
  s.m_dm = state->dm;
  return s;
}

Result<Share> Share::existing(const Image& image, const Options& options) {
  if (!valid_key(image.sealed.sha256)) return fail(Errc::invalid_argument, str("bad image SHA-256 ", quote(image.sealed.sha256)));
  const std::string dir = key_dir(options, image);
  auto refuse = [&](const std::string& why) {
    return fail(Errc::permission,
                str("the sealed image ", image.file, " is not mounted on this node (", why,
                    "), and mounting it needs root: ask the site to keep it mounted ('chrootctl mount NAME' as root), or to publish a "
                    "directory image for launches without root ('chrootctl publish')"));
  };
  for (const std::string& d : {options.state_dir, options.state_dir + "/sealed", dir}) {
    auto st = sys::lstat_path(d);
    if (!st) return refuse(str(d, " does not exist"));
    if (!S_ISDIR(st->st_mode)) return refuse(str(d, " is not a directory"));
    TRY(check_root_owned(d, *st));
  }
  auto state = read_state(dir);
  if (!state) return fail(std::move(state.error()));
  if (!*state || !is_mounted(dir, **state)) return refuse("no mount in " + dir);
  const auto st = TRY(sys::lstat_path(dir + "/state"));
  TRY(check_root_owned(dir + "/state", st));
  TRY(check_same_tree(dir, (*state)->file, (*state)->tree, image));
  if ((*state)->dm.empty()) {
    auto fst = sys::stat_path((*state)->file);
    if (!fst || file_id(*fst) != (*state)->id)
      return fail(Errc::mismatch, str("the sealed image ", (*state)->file,
                                      " changed since it was checked and mounted; ask the site to run "
                                      "'chrootctl verify'"));
  }
  Share s;
  s.m_options = options;
  s.m_key_dir = dir;
  s.m_root = dir + "/root";
  s.m_root_id = *(*state)->mounted;
  s.m_dm = (*state)->dm;
  return s;
}

Share::Share(Share&& o) noexcept
    : m_options(std::move(o.m_options)),
      m_backend(std::move(o.m_backend)),
      m_key_dir(std::move(o.m_key_dir)),
      m_holder(std::move(o.m_holder)),
      m_root(std::move(o.m_root)),
      m_root_id(o.m_root_id),
      m_dm(std::move(o.m_dm)) {
  o.m_holder.clear();
}

Share::~Share() { (void)release(); }

Status Share::release() {
  if (m_holder.empty()) return {};
  const std::string holder = std::exchange(m_holder, std::string());
  const auto lock = TRY(lock_dir(m_key_dir));
  if (!lock) return {};
  return release_locked(m_key_dir, holder, m_options, m_backend, false);
}

Result<VerityState> Share::verity_state() const {
  if (m_dm.empty()) return VerityState::none;
  const char state = TRY(blockdev::dm_verity_state(m_dm));
  return state == 'C' ? VerityState::corrupted : VerityState::verified;
}

Status release_hold(const Image& image, const Options& options, const Backend& backend, const std::string& holder) {
  const std::string dir = key_dir(options, image);
  const auto lock = TRY(lock_dir(dir));
  if (!lock) return {};
  return release_locked(dir, holder, options, backend, true);
}

ReclaimReport reclaim(const Options& options, const Backend& backend) {
  ReclaimReport rep;
  const std::string base = options.state_dir + "/sealed";
  auto fd = sys::open_path(base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  if (!fd) {
    if (fd.error().sys_errno() != ENOENT) rep.errors.push_back(fd.error().what());
    return rep;
  }
  if (auto st = sys::fstat(fd->get()); !st || st->st_uid != ::geteuid() || (st->st_mode & 022)) {
    rep.errors.push_back(str(base, " is not a private directory of uid ", ::geteuid(), "; left alone"));
    return rep;
  }
  auto entries = sys::read_dir(fd->get(), false);
  if (!entries) {
    rep.errors.push_back(entries.error().what());
    return rep;
  }
  for (const auto& e : *entries) {
    if (!valid_key(e.name)) continue;
    const std::string dir = str(base, "/", e.name);
    auto lock = lock_dir(dir);
    if (!lock) {
      rep.errors.push_back(lock.error().what());
      continue;
    }
    if (!*lock) continue;  // removed meanwhile
    auto state = read_state(dir);
    if (!state) {
      rep.errors.push_back(state.error().what());
      continue;
    }
    // An image file that is gone or replaced (gc, a rollback's dropped version) is wanted by
    // nobody any more: its "kept" hold goes too, and so does its mount, whatever the site keeps.
    bool gone = false;
    if (*state) {
      auto st = sys::lstat_path((*state)->file);
      gone = !st || st->st_dev != (*state)->id.dev || st->st_ino != (*state)->id.ino;
      if (gone && sys::unlink_at(AT_FDCWD, str(dir, "/holders/", k_kept))) rep.released.push_back(str(dir, "/holders/", k_kept));
    }
    const auto left = prune_holders(dir, &rep.released);
    if (!left.empty() || (options.keep_mounted && !gone)) {
      rep.live.push_back(dir);
      continue;
    }
    if (*state) {
      if (auto r = teardown(dir, **state, backend); !r) {
        rep.errors.push_back(r.error().what());
        continue;
      }
      rep.unmounted.push_back(dir);
    }
    remove_key_dir(dir);
  }
  return rep;
}

}  // namespace chrootctl::launcher::sealed
