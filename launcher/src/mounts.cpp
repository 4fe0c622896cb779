// The new root: everything here runs in the child, in its own private mount namespace, before
// the job exists. The host's mount table is never changed: the first step makes "/" a slave,
// and every later mount lands in a tmpfs staging area of this namespace or inside the new root.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <optional>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/launcher/mountinfo.hpp"
#include "chrootctl/launcher/open_in_tree.hpp"
#include "internal.hpp"
#include "kernel.hpp"

namespace chrootctl::launcher {

// ---- resolving paths inside a tree ----

namespace {
std::vector<std::string> components(const std::string& path) {
  std::vector<std::string> out;
  for (auto& c : split(path, '/'))
    if (!c.empty()) out.push_back(std::move(c));
  return out;
}

Result<Fd> walk(int rootfd, const std::string& path) {
  Fd cur = TRY(sys::open_at(rootfd, ".", O_PATH | O_DIRECTORY));
  std::string so_far;
  const auto comps = components(path);
  for (std::size_t i = 0; i < comps.size(); ++i) {
    const auto& c = comps[i];
    if (c == "." || c == "..") return fail(Errc::invalid_argument, str(quote(path), ": '", c, "' is not allowed in a path inside the root"));
    so_far += "/" + c;
    auto next = sys::open_at(cur.get(), c, O_PATH | O_NOFOLLOW);
    if (!next) {
      if (next.error().sys_errno() == ENOENT) return fail(Errc::not_found, str(so_far, " does not exist"));
      return fail(std::move(next.error()));
    }
    auto st = TRY(sys::fstat(next->get()));
    if (S_ISLNK(st.st_mode)) {
      auto target = sys::readlink_at(next->get(), "");
      return fail(Errc::permission,
                  str(so_far, " is a symlink (to ", quote(target ? *target : std::string("?")), "); refusing to resolve a path through it"));
    }
    if (i + 1 < comps.size() && !S_ISDIR(st.st_mode)) return fail(Errc::invalid_argument, str(so_far, " is not a directory"));
    cur = std::move(*next);
  }
  return cur;
}
}  // namespace

Result<Fd> open_in_tree(int rootfd, const std::string& path, Symlinks symlinks, bool force_walk) {
  if (!force_walk) {
    const bool refuse = symlinks == Symlinks::refuse;
    auto fd = sys::open_in_root(rootfd, path, O_PATH | (refuse ? O_NOFOLLOW : 0), refuse);
    if (fd) {
      // O_PATH|O_NOFOLLOW opens a trailing symlink itself rather than failing: refuse it here.
      if (!refuse || !S_ISLNK(TRY(sys::fstat(fd->get())).st_mode)) return fd;
      return walk(rootfd, path);
    }
    const int err = fd.error().sys_errno();
    if (fd.error().code() != Errc::unsupported) {
      if (err == ENOENT) return fail(Errc::not_found, str(path, " does not exist"));
      // ELOOP under RESOLVE_NO_SYMLINKS: walk to name the symlink in the message.
      if (err != ELOOP || !refuse) return fd;
    }
  }
  return walk(rootfd, path);
}

Result<ExistingPrefix> deepest_existing(int rootfd, const std::string& path) {
  ExistingPrefix p{TRY(sys::open_at(rootfd, ".", O_PATH | O_DIRECTORY)), "/"};
  std::string so_far;
  for (const auto& c : components(path)) {
    if (c == "." || c == "..") return fail(Errc::invalid_argument, str(quote(path), ": '", c, "' is not allowed in a path inside the root"));
    const std::string candidate = so_far + "/" + c;
    auto next = sys::open_at(p.fd.get(), c, O_PATH | O_NOFOLLOW);
    if (!next) {
      if (next.error().sys_errno() == ENOENT) break;
      return fail(std::move(next.error()));
    }
    auto st = TRY(sys::fstat(next->get()));
    if (S_ISLNK(st.st_mode)) {
      auto target = sys::readlink_at(next->get(), "");
      return fail(Errc::permission,
                  str(candidate, " is a symlink (to ", quote(target ? *target : std::string("?")), "); refusing to resolve a path through it"));
    }
    if (!S_ISDIR(st.st_mode)) break;
    p.fd = std::move(*next);
    so_far = candidate;
    p.path = so_far;
  }
  return p;
}

namespace detail {

namespace {

// Where this namespace assembles the new root: a private tmpfs over the host's /tmp, visible to
// no one else (the host keeps its /tmp; "/" is a slave, so nothing propagates back).
constexpr const char* k_staging = "/tmp";
constexpr const char* k_new_root = "/tmp/root";

std::string inner_join(const std::string& dir, const std::string& name) { return dir == "/" ? "/" + name : dir + "/" + name; }

unsigned long preserved_flags(int fd) {
  // In a user namespace the kernel locks a bind mount's atime and noexec flags; a remount must
  // repeat them (bubblewrap does the same).
  struct statvfs sv {};
  if (::fstatvfs(fd, &sv) != 0) return 0;
  unsigned long f = 0;
  if (sv.f_flag & ST_RDONLY) f |= MS_RDONLY;
  if (sv.f_flag & ST_NOSUID) f |= MS_NOSUID;
  if (sv.f_flag & ST_NODEV) f |= MS_NODEV;
  if (sv.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
  if (sv.f_flag & ST_NOATIME) f |= MS_NOATIME;
  if (sv.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
  if (sv.f_flag & ST_RELATIME) f |= MS_RELATIME;
  return f;
}

// The launcher's descriptors pin mounts of the host's namespace, which mount(2) refuses to bind
// from (EINVAL): reopen each object by its path in this namespace's copy of the tree, and make
// sure it is the very object the launcher opened and checked (same device and inode).
Result<Fd> reopen_here(int launcher_fd, const std::string& path, const std::string& subdir) {
  auto want = TRY(sys::fstat(launcher_fd));
  Fd fd = TRY(sys::open_path(path, O_PATH | O_DIRECTORY));
  for (const auto& c : split(subdir, '/'))
    if (!c.empty()) fd = TRY(sys::open_at(fd.get(), c, O_PATH | O_DIRECTORY | O_NOFOLLOW));
  auto got = TRY(sys::fstat(fd.get()));
  if (got.st_dev != want.st_dev || got.st_ino != want.st_ino)
    return fail(Errc::busy, str(subdir.empty() ? path : path + "/" + subdir, " was replaced while the job was being set up"));
  return fd;
}

Result<Fd> reopen_source(int launcher_fd, const HostSource& s) {
  auto want = TRY(sys::fstat(launcher_fd));
  if (!s.scratch_subdir.empty() || S_ISDIR(want.st_mode)) return reopen_here(launcher_fd, s.path, s.scratch_subdir);
  Fd fd = TRY(sys::open_path(s.path, O_PATH));
  auto got = TRY(sys::fstat(fd.get()));
  if (got.st_dev != want.st_dev || got.st_ino != want.st_ino) return fail(Errc::busy, str(s.path, " was replaced while the job was being set up"));
  return fd;
}

struct Builder {
  const LaunchPlan& plan;
  RootSources& from;
  Fd root;                    // O_PATH of the new root's top mount
  int staging_dirs = 0;       // tmpfs areas made for missing mount points
  std::size_t next_bind = 0;  // detached: the next of src.binds
  // Where host directories other than the sandbox and its scratch directories are bound (a
  // --bind, the Slurm task's working directory): no mount point is ever made below them.
  std::vector<std::string> host_dirs;

  std::string label(const std::string& inner) const { return inner + " in the image"; }

  Status reopen_root() {
    root = TRY(sys::open_path(k_new_root, O_PATH | O_DIRECTORY));
    return {};
  }

  Symlinks symlink_mode() const { return plan.mode == LaunchMode::build ? Symlinks::inside_root : Symlinks::refuse; }

  Result<Fd> open(const std::string& inner) {
    return with_context(open_in_tree(root.get(), inner, symlink_mode()), [&] { return str("mount target ", label(inner)); });
  }

  // Sets mount attributes on the mount at `fd` (and its submounts when `recursive`), with
  // mount_setattr where the kernel has it, else a remount of each mount.
  Status set_attrs(int fd, const std::string& inner, bool recursive, std::uint64_t attrs) {
    auto r = kernel::mount_setattr(fd, recursive, kernel::MountAttrs{attrs, false, -1}, label(inner));
    if (r || r.error().code() != Errc::unsupported) return r;
    unsigned long flags = 0;
    if (attrs & kernel::k_attr_rdonly) flags |= MS_RDONLY;
    if (attrs & kernel::k_attr_nosuid) flags |= MS_NOSUID;
    if (attrs & kernel::k_attr_nodev) flags |= MS_NODEV;
    if (attrs & kernel::k_attr_noexec) flags |= MS_NOEXEC;
    TRY(kernel::mount(nullptr, kernel::fd_path(fd), nullptr, MS_REMOUNT | MS_BIND | flags | preserved_flags(fd), nullptr, "", label(inner)));
    if (!recursive) return {};
    // Every submount below, as /proc/self/mountinfo lists it, reopened inside the new root.
    const std::string here = TRY(sys::readlink_at(AT_FDCWD, kernel::fd_path(fd)));
    const std::string prefix = TRY(sys::readlink_at(AT_FDCWD, kernel::fd_path(root.get())));
    for (const auto& m : parse_mountinfo(TRY(sys::read_file("/proc/self/mountinfo")))) {
      if (m.mount_point == here || !path_is_under(m.mount_point, here)) continue;
      const std::string sub_inner = m.mount_point.substr(prefix == "/" ? 0 : prefix.size());
      auto sub = TRY(open_in_tree(root.get(), sub_inner, Symlinks::refuse));
      TRY(kernel::mount(nullptr, kernel::fd_path(sub.get()), nullptr, MS_REMOUNT | MS_BIND | flags | preserved_flags(sub.get()), nullptr, "",
                        label(sub_inner)));
    }
    return {};
  }

  // Opens the mount target `inner`, creating it (a directory, or an empty file when
  // `want_dir` is false) when it is missing: with mkdir where the tree is writable (a scratch
  // directory, a tree being built), else in a read-only tmpfs that mirrors the deepest existing
  // directory of the image, so the image itself is never written.
  Result<Fd> target(const std::string& inner, bool want_dir) {
    auto fd = open(inner);
    if (!fd && fd.error().code() == Errc::not_found) {
      TRY(make_mount_point(inner, want_dir));
      fd = open(inner);
    }
    if (!fd) return fd;
    auto st = TRY(sys::fstat(fd->get()));
    if (want_dir && !S_ISDIR(st.st_mode)) return fail(Errc::invalid_argument, str("mount target ", label(inner), " is not a directory"));
    if (!want_dir && S_ISDIR(st.st_mode))
      return fail(Errc::invalid_argument, str("mount target ", label(inner), " is a directory, but the source is not"));
    return fd;
  }

  Status make_mount_point(const std::string& inner, bool want_dir) {
    auto prefix = TRY(with_context(deepest_existing(root.get(), inner), [&] { return str("mount target ", label(inner)); }));
    std::vector<std::string> missing;
    {
      const auto all = components(inner);
      const auto have = components(prefix.path);
      missing.assign(all.begin() + static_cast<long>(have.size()), all.end());
    }
    // Nothing missing: another launch sharing this scratch directory made the path meanwhile
    // (target() opens it again and checks its type).
    if (missing.empty()) return {};
    struct statvfs sv {};
    if (::fstatvfs(prefix.fd.get(), &sv) != 0) return fail_errno(str("fstatvfs(", quote(label(prefix.path)), ")"), errno);
    if (!(sv.f_flag & ST_RDONLY)) {
      // Made there, it would be made in the host's directory, as root in a Slurm task: with
      // the task's working directory /etc, a scratch directory /etc/systemd/system/X.d became
      // a directory of the job user's in the host's /etc.
      for (const auto& h : host_dirs)
        if (path_is_under(prefix.path, h))
          return fail(Errc::permission, str("mount target ", inner, " is missing below ", h,
                                            ", where a host directory is bound, and chrootctl never makes a mount point in a host directory: "
                                            "make it there first or choose another target"));
      // A writable place (a scratch directory, a tree being built): make the path there, owned
      // by the job user.
      return create_chain(prefix.fd.get(), prefix.path, missing, want_dir, plan.creds.uid, plan.creds.gid);
    }
    return mirror(std::move(prefix), missing, want_dir);
  }

  Status create_chain(int dirfd, const std::string& base, const std::vector<std::string>& names, bool want_dir, uid_t uid, gid_t gid) {
    Fd cur = TRY(sys::open_at(dirfd, ".", O_PATH | O_DIRECTORY));
    std::string path = base == "/" ? "" : base;
    for (std::size_t i = 0; i < names.size(); ++i) {
      path += "/" + names[i];
      const bool last = i + 1 == names.size();
      if (last && !want_dir) {
        auto f = sys::open_at(cur.get(), names[i], O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY, 0644);
        if (!f && f.error().sys_errno() == EEXIST) return {};  // made by a concurrent launch; target() checks it
        if (!f) return fail(std::move(f.error()));
        if (::fchown(f->get(), uid, gid) != 0) return fail_errno(str("fchown(", quote(label(path)), ")"), errno);
        return {};
      }
      // Made whole under a name of this launch's own, then renamed into place: a launch sharing
      // this scratch directory never finds it half made (root's, before its chown), where it
      // could not make the rest of its own path.
      TRY(make_owned_dir(cur.get(), names[i], label(path), 0755, uid, gid));
      cur = TRY(sys::open_at(cur.get(), names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
    }
    return {};
  }

  // Covers the read-only directory `prefix` with a tmpfs holding a bind mount of each of its
  // entries (and a copy of each symlink), adds the missing path, and makes it all read-only,
  // nosuid, nodev like the image (snap-confine's "writable mimic", read-only here).
  Status mirror(ExistingPrefix prefix, const std::vector<std::string>& missing, bool want_dir) {
    const std::string area = str(k_staging, "/m", staging_dirs++);
    TRY(sys::mkdir_at(AT_FDCWD, area, 0700));
    TRY(kernel::mount("tmpfs", area, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=256k", "tmpfs", area));
    auto st = TRY(sys::fstat(prefix.fd.get()));
    Fd dir = TRY(sys::open_at(prefix.fd.get(), ".", O_RDONLY | O_DIRECTORY));
    Fd top = TRY(sys::open_path(area, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
    // Same owner and mode as the directory it stands for (the owner only where it is mapped:
    // in a user namespace the image's root owner is not).
    if (::fchown(top.get(), st.st_uid, st.st_gid) != 0) {
    }
    if (::fchmod(top.get(), st.st_mode & 07777) != 0) return fail_errno(str("fchmod(", quote(area), ")"), errno);
    auto entries = TRY(sys::read_dir(dir.get()));
    if (entries.size() > 4096)
      return fail(Errc::invalid_argument, str("mount target ", label(inner_join(prefix.path, missing.front())),
                                              " is missing and its parent has too many entries to mirror; create it in the image"));
    for (const auto& e : entries) {
      auto lst = TRY(sys::lstat_at(dir.get(), e.name));
      if (S_ISLNK(lst.st_mode)) {
        auto link = TRY(sys::readlink_at(dir.get(), e.name));
        if (auto r = sys::symlink_at(link, top.get(), e.name); !r)
          return fail_errno(str("symlinkat(", quote(link), ", ", quote(area + "/" + e.name), ")"), r.error().sys_errno());
        (void)sys::chown_at(top.get(), e.name, lst.st_uid, lst.st_gid, AT_SYMLINK_NOFOLLOW);  // best effort, as above
        continue;
      }
      Fd src = TRY(sys::open_at(dir.get(), e.name, O_PATH | O_NOFOLLOW));
      auto sst = TRY(sys::fstat(src.get()));
      if ((sst.st_mode & S_IFMT) != (lst.st_mode & S_IFMT) || sst.st_ino != lst.st_ino)
        return fail(Errc::busy, str(label(prefix.path), " changed while it was mirrored"));
      if (S_ISDIR(sst.st_mode)) {
        TRY(sys::mkdir_at(top.get(), e.name, 0755));
      } else {
        Fd f = TRY(sys::open_at(top.get(), e.name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY, 0644));
      }
      TRY(kernel::mount(kernel::fd_path(src.get()).c_str(), area + "/" + e.name, nullptr, MS_BIND | MS_REC, nullptr,
                        label(inner_join(prefix.path, e.name)), area + "/" + e.name));
    }
    TRY(create_chain(top.get(), area, missing, want_dir, static_cast<uid_t>(-1), static_cast<gid_t>(-1)));
    top.reset();
    dir.reset();
    TRY(kernel::mount(area.c_str(), kernel::fd_path(prefix.fd.get()), nullptr, MS_MOVE, nullptr, area, label(prefix.path)));
    (void)sys::unlink_at(AT_FDCWD, area, AT_REMOVEDIR);
    if (prefix.path == "/") TRY(reopen_root());
    // Read-only itself; the bind mounts inside keep their own flags (a bind copies them): the
    // image's are read-only, nosuid, nodev already, and mounts made earlier in this launch
    // (a scratch /tmp below a mirrored "/") stay as they were.
    Fd moved = TRY(open_in_tree(root.get(), prefix.path, Symlinks::refuse));
    return set_attrs(moved.get(), prefix.path, false, kernel::k_attr_rdonly | kernel::k_attr_nosuid | kernel::k_attr_nodev);
  }

  // ---- the operations of a plan ----

  Status proc(const MountOp& op) {
    Fd t = TRY(target(op.target, true));
    TRY(kernel::mount("proc", kernel::fd_path(t.get()), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr, "proc", label(op.target)));
    if (plan.mode != LaunchMode::job || plan.creds.uid != 0) return {};
    // A job run as root keeps uid 0 without capabilities; root-owned 0644 files under these
    // would still be writable to it, so they are read-only (as Docker and bubblewrap do).
    for (const char* sub : {"sys", "sysrq-trigger", "irq", "bus", "fs"}) {
      const std::string inner = op.target + "/" + sub;
      auto fd = open_in_tree(root.get(), inner, Symlinks::refuse);
      if (!fd) continue;
      TRY(kernel::mount(kernel::fd_path(fd->get()).c_str(), kernel::fd_path(fd->get()), nullptr, MS_BIND | MS_REC, nullptr, label(inner),
                        label(inner)));
      Fd top = TRY(open_in_tree(root.get(), inner, Symlinks::refuse));
      TRY(set_attrs(top.get(), inner, true, kernel::k_attr_rdonly | kernel::k_attr_nosuid | kernel::k_attr_nodev));
    }
    return {};
  }

  Status dev(const MountOp& op) {
    Fd t = TRY(target(op.target, true));
    TRY(kernel::mount("tmpfs", kernel::fd_path(t.get()), "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k,nr_inodes=64", "tmpfs",
                      label(op.target)));
    Fd mounted = TRY(open_in_tree(root.get(), op.target, Symlinks::refuse));
    Fd d = TRY(sys::open_at(mounted.get(), ".", O_RDONLY | O_DIRECTORY));
    static const struct {
      const char* name;
      unsigned major, minor;
    } k_nodes[] = {{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};
    for (const auto& n : k_nodes) {
      const std::string inner = op.target + "/" + n.name;
      if (!plan.user_namespace) {
        // Real device nodes: root may mknod (a build, the Slurm plugin's root), and this tmpfs is
        // the only mount without nodev.
        if (auto r = sys::mknod_at(d.get(), n.name, S_IFCHR | 0666, makedev(n.major, n.minor)); !r)
          return fail_errno(str("mknodat(", quote(label(inner)), ", ", n.major, ":", n.minor, ")"), r.error().sys_errno());
        // mknod's mode is masked by the caller's umask, which in a Slurm task is the
        // submitter's (022 made /dev/null read-only to the job): set it whole.
        TRY(sys::chmod_at(d.get(), n.name, 0666, 0));
      } else {
        // In a user namespace no node can be made; bind the host's (as bubblewrap does).
        Fd f = TRY(sys::open_at(d.get(), n.name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY, 0666));
        const std::string host = str("/dev/", n.name);
        TRY(kernel::mount(host.c_str(), kernel::fd_path(f.get()), nullptr, MS_BIND, nullptr, host, label(inner)));
      }
    }
    for (const auto& [name, to] : {std::pair{"fd", "/proc/self/fd"}, std::pair{"stdin", "/proc/self/fd/0"}, std::pair{"stdout", "/proc/self/fd/1"},
                                   std::pair{"stderr", "/proc/self/fd/2"}, std::pair{"ptmx", "pts/ptmx"}}) {
      if (auto r = sys::symlink_at(to, d.get(), name); !r)
        return fail_errno(str("symlinkat(", quote(to), ", ", quote(label(op.target + "/" + name)), ")"), r.error().sys_errno());
    }
    TRY(sys::mkdir_at(d.get(), "pts", 0755));
    TRY(sys::mkdir_at(d.get(), "shm", 01777));
    Fd pts = TRY(sys::open_at(d.get(), "pts", O_PATH | O_DIRECTORY | O_NOFOLLOW));
    TRY(kernel::mount("devpts", kernel::fd_path(pts.get()), "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620", "devpts",
                      label(op.target + "/pts")));
    Fd shm = TRY(sys::open_at(d.get(), "shm", O_PATH | O_DIRECTORY | O_NOFOLLOW));
    // Inodes bounded too (one per page of the size): empty files cost kernel memory, not size.
    const std::string shm_options = str("mode=1777,size=", plan.shm_bytes, ",nr_inodes=", std::max<std::uint64_t>(plan.shm_bytes / 4096, 1024));
    TRY(kernel::mount("tmpfs", kernel::fd_path(shm.get()), "tmpfs", MS_NOSUID | MS_NODEV, shm_options.c_str(), "tmpfs", label(op.target + "/shm")));
    // Nothing may be added to /dev by the job.
    Fd top = TRY(open_in_tree(root.get(), op.target, Symlinks::refuse));
    return set_attrs(top.get(), op.target, false, kernel::k_attr_rdonly | kernel::k_attr_nosuid | kernel::k_attr_noexec);
  }

  Status bind(const MountOp& op) {
    const auto& source = plan.sources.at(op.source);
    const std::string src_label = source.scratch_subdir.empty() ? source.path : source.path + "/" + source.scratch_subdir;
    const bool is_host_dir = !source.sandbox && source.scratch_subdir.empty();
    if (from.detached) {
      // A detached mount the launcher made, with its attributes (and idmapping) already set.
      const int m = from.binds.at(next_bind++).get();
      auto st = TRY(sys::fstat(m));
      Fd t = TRY(target(op.target, S_ISDIR(st.st_mode)));
      TRY(kernel::move_mount(m, t.get(), src_label, label(op.target)));
      if (is_host_dir) host_dirs.push_back(op.target);
      return {};
    }
    const int fd = from.sources.at(op.source).get();
    auto st = TRY(sys::fstat(fd));
    Fd t = TRY(target(op.target, S_ISDIR(st.st_mode)));
    TRY(kernel::mount(kernel::fd_path(fd).c_str(), kernel::fd_path(t.get()), nullptr, MS_BIND | (op.recursive ? MS_REC : 0), nullptr, src_label,
                      label(op.target)));
    if (is_host_dir) host_dirs.push_back(op.target);
    Fd top = TRY(open(op.target));
    std::uint64_t attrs = kernel::k_attr_nosuid | kernel::k_attr_nodev;
    if (op.read_only) attrs |= kernel::k_attr_rdonly;
    return set_attrs(top.get(), op.target, op.recursive, attrs);
  }

  Status perform(const MountOp& op) {
    switch (op.kind) {
      case MountOp::Kind::proc:
        return proc(op);
      case MountOp::Kind::dev:
        return dev(op);
      case MountOp::Kind::bind:
        return bind(op);
    }
    return fail(Errc::internal, "unknown mount operation");
  }
};

}  // namespace

Status isolate_mounts() {
  // Nothing mounted from here on can propagate to the host's mount namespace.
  return kernel::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr, "", "/");
}

Result<RootSources> reopen_sources(const LaunchPlan& plan, const ChildHandles& h) {
  // The root and every source, found again in this namespace and checked against the
  // launcher's descriptors, before the staging tmpfs hides anything under /tmp.
  RootSources out;
  out.image = TRY(reopen_here(h.image, plan.root, {}));
  for (std::size_t i = 0; i < plan.sources.size(); ++i)
    out.sources.push_back(TRY(with_context(reopen_source(h.sources.at(i), plan.sources[i]), [&] { return str("opening ", plan.sources[i].path); })));
  return out;
}

Status build_new_root(const LaunchPlan& plan, RootSources& sources) {
  Builder b{plan, sources, {}, 0, 0, {}};
  // 1. A private tmpfs to assemble the root in (it only hides /tmp from this namespace).
  TRY(kernel::mount("tmpfs", k_staging, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700,size=1m", "tmpfs", k_staging));
  TRY(sys::mkdir_at(AT_FDCWD, k_new_root, 0755));
  if (sources.detached) {
    // 2. The image as the launcher detached it: read-only, nosuid, nodev, private, idmapped.
    Fd mount_point = TRY(sys::open_path(k_new_root, O_PATH | O_DIRECTORY | O_NOFOLLOW));
    TRY(kernel::move_mount(sources.image.get(), mount_point.get(), plan.root, k_new_root));
    TRY(b.reopen_root());
  } else {
    // 2. The image, with its submounts, through the fd the launcher opened; private, so nothing
    //    from the host propagates into the job's view either. Read-only, nosuid, nodev
    //    everywhere in the image, submounts included. A tree being built stays writable but is
    //    nosuid and nodev as well: a device node an archive or a package brought in is never a
    //    way to the host's devices.
    TRY(kernel::mount(kernel::fd_path(sources.image.get()).c_str(), k_new_root, nullptr, MS_BIND | MS_REC, nullptr, plan.root, k_new_root));
    TRY(kernel::mount(nullptr, k_new_root, nullptr, MS_REC | MS_PRIVATE, nullptr, "", plan.root));
    TRY(b.reopen_root());
    const std::uint64_t attrs =
        plan.root_read_only ? kernel::k_attr_rdonly | kernel::k_attr_nosuid | kernel::k_attr_nodev : kernel::k_attr_nosuid | kernel::k_attr_nodev;
    TRY(b.set_attrs(b.root.get(), "/", true, attrs));
  }
  sources.image.reset();
  // 3. /proc, /dev, the sandbox, scratch directories and binds, parents first.
  for (const auto& op : plan.mounts) TRY(b.perform(op));
  // 4. Into the new root; the old one (the host's tree) is detached from this namespace.
  TRY(sys::chdir(k_new_root));
  TRY(kernel::pivot_root_here());
  TRY(kernel::umount_detach(".", "the old root"));
  if (auto r = sys::chdir("/"); !r) return fail_errno("chdir(\"/\") in the new root", r.error().sys_errno());
  return {};
}

}  // namespace detail

}  // namespace chrootctl::launcher
