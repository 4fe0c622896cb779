// Opening what a launch mounts, on the host, before any namespace exists: the image root and
// every bind source, and the MOUNT_UNDER_SCRATCH directories made in the sandbox; then, once the
// job's user namespace exists, the detached (idmapped) mounts that init attaches. Shared by the
// executor (chrootctl run) and enter_root (the Slurm plugin), so both check the same things.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "internal.hpp"
#include "kernel.hpp"

namespace chrootctl::launcher::detail {

// Makes the directory `name` in `at`, owned by `uid`:`gid` with `mode`, as one step a concurrent
// launch can observe: it is made under a name of this launch's own, handed to the job user there,
// and renamed into place only if nothing is there yet. A launch beside it then finds either no
// directory or the finished one, never a root-owned one on its way to the job user (which it
// would refuse). Losing that race is not an error: the winner's directory is used.
Status make_owned_dir(int at, const std::string& name, const std::string& shown, mode_t mode, uid_t uid, gid_t gid) {
  const std::string temp = str(".", name, ".chrootctl-", TRY(sys::random_hex(8)));
  if (auto r = sys::mkdir_at(at, temp, 0700); !r) return fail_errno(str("mkdirat(", quote(shown), ", as ", quote(temp), ")"), r.error().sys_errno());
  auto made = sys::open_at(at, temp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  if (!made) return fail(std::move(made.error()));
  auto st = TRY(sys::fstat(made->get()));
  // What is opened must be the empty directory just made (by this process), not one the
  // sandbox's owner renamed into its place meanwhile, which fchown would hand over.
  if (st.st_uid != ::geteuid() || st.st_nlink != 2)
    return fail(Errc::busy, str(shown, " changed while it was made (uid ", st.st_uid, ", ", st.st_nlink, " links); try again"));
  if (::fchown(made->get(), uid, gid) != 0) return fail_errno(str("fchown(", quote(shown), ", ", uid, ")"), errno);
  if (::fchmod(made->get(), mode) != 0) return fail_errno(str("fchmod(", quote(shown), ")"), errno);
  auto moved = sys::rename_at(at, temp, at, name, RENAME_NOREPLACE);
  if (moved) return {};
  const int err = moved.error().sys_errno();
  // Another launch made it first (the caller opens and checks theirs); ours goes. If the owner
  // moved ours away meanwhile, what is left under the temporary name is theirs, owned by them.
  (void)sys::unlink_at(at, temp, AT_REMOVEDIR);
  if (err == EEXIST) return {};
  return fail_errno(str("renameat2(", quote(temp), ", ", quote(shown), ", RENAME_NOREPLACE)"), err);
}

namespace {

// The image root: a directory; for a job, owned by root (or the caller in an unprivileged
// launch) and writable by no one else, since its contents run as the job.
Result<Fd> open_root(const LaunchPlan& plan) {
  Fd fd = TRY(with_context(sys::open_path(plan.root, O_PATH | O_DIRECTORY), str("opening the root ", plan.root)));
  auto st = TRY(sys::fstat(fd.get()));
  if (plan.root_id && (plan.root_id->dev != st.st_dev || plan.root_id->ino != st.st_ino))
    return fail(Errc::mismatch, str("the root ", plan.root, " is no longer the directory the catalogue verified (it was replaced)"));
  // A job never runs on the host's own root, however it is spelled ("/", "/.", a symlink).
  auto host = TRY(sys::stat_path("/"));
  if (st.st_dev == host.st_dev && st.st_ino == host.st_ino)
    return fail(Errc::permission, str("the root ", plan.root, " is the host's own root; refusing to run on the host"));
  if (plan.mode == LaunchMode::job) {
    const bool owner_ok = st.st_uid == 0 || (plan.unprivileged && st.st_uid == plan.caller_uid);
    if (!owner_ok) return fail(Errc::permission, str("the root ", plan.root, " is owned by uid ", st.st_uid, ", not by root"));
    if (st.st_mode & 022)
      return fail(Errc::permission, str("the root ", plan.root, " is writable by group or others (mode ", mode_octal(st.st_mode & 07777), ")"));
  }
  return fd;
}

// Directories of the host that are never a job's sandbox, however they are owned: scratch
// directories made there (tmp, var/tmp) would change the host itself.
bool is_system_directory(const std::string& real) {
  static const char* const k_system[] = {"/",      "/bin",    "/boot", "/dev",  "/etc",     "/home",    "/lib",      "/lib32",
                                         "/lib64", "/libx32", "/opt",  "/proc", "/root",    "/run",     "/sbin",     "/srv",
                                         "/sys",   "/tmp",    "/usr",  "/var",  "/var/tmp", "/var/lib", "/usr/local"};
  for (const char* d : k_system)
    if (real == d) return true;
  return false;
}

// The sandbox: a real directory (a symlink as its last component is refused; the path is used
// through this descriptor from here on: every scratch source shares it), owned by the job user
// or by root, so that a launch never creates its scratch directories in a directory of someone
// else; never a system directory of the host, nor anything inside the image. A job as root runs
// for the user who owns its sandbox, and its files land there as that user.
//
// Whenever the sandbox's owner decides more than the job user's own rights (a sandbox of
// root's, where the launch makes directories the job user may write in; any sandbox of a root
// job, whose owner the job then writes as), it is taken only at the very path given: a symlink
// on the way, which a user may have planted in a directory of theirs, could otherwise point the
// launch at a root-owned directory of the host (/etc/ssh) or at another user's. The check is on
// the opened directory's own path, so a swap after it changes nothing.
Result<Fd> open_sandbox(const LaunchPlan& plan, const std::string& path, const std::string& image_real) {
  auto fd = sys::open_path(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  if (!fd) {
    const int err = fd.error().sys_errno();
    if (err == ELOOP || err == ENOTDIR)
      return fail(Errc::permission, str("the sandbox ", path, " is not a directory (a symlink?); give the real directory"));
    return fail(std::move(fd.error()).add_context("opening the sandbox"));
  }
  const std::string real = TRY(sys::readlink_at(AT_FDCWD, str("/proc/self/fd/", fd->get())));
  if (is_system_directory(real))
    return fail(Errc::permission, str("the sandbox ", path, " is ", real, ", a system directory of the host; give a directory of the job's own"));
  if (real == image_real || (real.size() > image_real.size() && real.compare(0, image_real.size() + 1, image_real + "/") == 0))
    return fail(Errc::permission, str("the sandbox ", path, " is inside the image ", plan.root, "; give a directory outside it"));
  auto st = TRY(sys::fstat(fd->get()));
  const bool root_job = plan.user_namespace && plan.creds.uid == 0;
  if (!root_job && st.st_uid != 0 && st.st_uid != plan.creds.uid)
    return fail(Errc::permission, str("the sandbox ", path, " belongs to uid ", st.st_uid, ", neither to the job user (uid ", plan.creds.uid,
                                      ") nor to root; refusing to use it"));
  if ((root_job || st.st_uid != plan.creds.uid) && real != path)
    return fail(Errc::permission, str("the sandbox ", path, " is reached through a symlink (it is ", real, "); ",
                                      root_job ? "a job as root" : "a sandbox of root's", " is taken only at its real path: give that"));
  return fd;
}

}  // namespace

Result<OpenedSources> open_sources(const LaunchPlan& plan) {
  OpenedSources out;
  out.image = TRY(open_root(plan));
  const std::string image_real = TRY(sys::readlink_at(AT_FDCWD, str("/proc/self/fd/", out.image.get())));
  Fd sandbox;  // opened once: the sandbox and each scratch source are this directory
  for (const auto& s : plan.sources) {
    if (s.sandbox || !s.scratch_subdir.empty()) {
      if (!sandbox) {
        sandbox = TRY(open_sandbox(plan, s.path, image_real));
        out.sandbox_owner = TRY(sys::fstat(sandbox.get()));
      }
      const int dup = ::fcntl(sandbox.get(), F_DUPFD_CLOEXEC, 3);
      if (dup < 0) return fail_errno("fcntl(F_DUPFD_CLOEXEC)", errno);
      out.sources.emplace_back(dup);
    } else {
      Fd fd = TRY(with_context(sys::open_path(s.path, O_PATH), str("opening ", s.path)));
      if (s.identity) {
        const auto st = TRY(sys::fstat(fd.get()));
        if (st.st_dev != s.identity->dev || st.st_ino != s.identity->ino)
          return fail(Errc::permission, str(s.path,
                                            " is not the directory it was when the job was set up (replaced, or a symlink put in its "
                                            "place); refusing to bind it"));
      }
      out.sources.push_back(std::move(fd));
    }
  }
  return out;
}

// A MOUNT_UNDER_SCRATCH directory (SANDBOX/tmp): made component by component relative to the
// sandbox fd with O_NOFOLLOW, so a symlink the job left in its sandbox cannot redirect it;
// created 0700 (0755 above the last) and owned by `uid`:`gid`; an existing one must already
// belong to `uid`.
Result<Fd> open_scratch_dir(int sandbox, const std::string& sandbox_path, const std::string& subdir, uid_t uid, gid_t gid) {
  const auto make = [&](int parent, const std::string& name, const std::string& label, bool last) {
    return detail::make_owned_dir(parent, name, label, last ? 0700 : 0755, uid, gid);
  };
  Fd dir = TRY(sys::open_dirs_below(sandbox, sandbox_path, subdir, make, "refusing to use it as scratch space"));
  auto st = TRY(sys::fstat(dir.get()));
  if (st.st_uid != uid)
    return fail(Errc::permission, str(sandbox_path, "/", subdir, " exists and belongs to uid ", st.st_uid, ", not to the job user (uid ", uid, ")"));
  return dir;
}

Status make_scratch_dirs(const LaunchPlan& plan, OpenedSources& opened, uid_t uid, gid_t gid) {
  for (std::size_t i = 0; i < plan.sources.size(); ++i) {
    const auto& s = plan.sources[i];
    if (s.scratch_subdir.empty()) continue;
    opened.sources[i] = TRY(open_scratch_dir(opened.sources[i].get(), s.path, s.scratch_subdir, uid, gid));
  }
  return {};
}

Result<std::vector<Fd>> detach_mounts(const LaunchPlan& plan, const OpenedSources& opened, const DetachedIds& ids) {
  std::vector<Fd> out;
  // The image, with its submounts: read-only, nosuid, nodev, private, and idmapped with the
  // job's own user namespace when the job has an id block (root-owned files are root's inside).
  Fd image = TRY(kernel::open_tree_clone(opened.image.get(), true, plan.root));
  kernel::MountAttrs image_attrs{kernel::k_attr_rdonly | kernel::k_attr_nosuid | kernel::k_attr_nodev, true, -1};
  if (ids.job_userns >= 0) {
    image_attrs.set |= kernel::k_attr_idmap;
    image_attrs.userns_fd = ids.job_userns;
  }
  TRY(with_context(kernel::mount_setattr(image.get(), true, image_attrs, plan.root), "mounting the image for the job"));
  out.push_back(std::move(image));
  // One detached mount per bind operation, in the order of plan.mounts: nosuid, nodev, private,
  // read-only on request; a writable one idmapped to the sandbox's owner when the job's ids are
  // not its owner's (a job as root).
  for (const auto& op : plan.mounts) {
    if (op.kind != MountOp::Kind::bind) continue;
    const auto& s = plan.sources.at(op.source);
    const std::string label = s.scratch_subdir.empty() ? s.path : s.path + "/" + s.scratch_subdir;
    Fd m = TRY(kernel::open_tree_clone(opened.sources.at(op.source).get(), op.recursive, label));
    kernel::MountAttrs attrs{kernel::k_attr_nosuid | kernel::k_attr_nodev, true, -1};
    if (op.read_only) attrs.set |= kernel::k_attr_rdonly;
    if (!op.read_only && ids.owner_userns >= 0) {
      attrs.set |= kernel::k_attr_idmap;
      attrs.userns_fd = ids.owner_userns;
    }
    TRY(with_context(kernel::mount_setattr(m.get(), op.recursive, attrs, label), str("mounting ", label, " for the job")));
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace chrootctl::launcher::detail
