// Opening what a launch mounts, on the host, before any namespace exists: the image root and
// every bind source, and the MOUNT_UNDER_SCRATCH directories made in the sandbox. Shared by the
// executor (chrootctl run) and enter_root (the Slurm plugin), so both check the same things.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "internal.hpp"

namespace chrootctl::launcher::detail {

namespace {

// The image root: a directory; for a job, owned by root (or the caller in a user namespace) and
// writable by no one else, since its contents run as the job.
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
    const bool owner_ok = st.st_uid == 0 || (plan.user_namespace && st.st_uid == plan.caller_uid);
    if (!owner_ok) return fail(Errc::permission, str("the root ", plan.root, " is owned by uid ", st.st_uid, ", not by root"));
    if (st.st_mode & 022)
      return fail(Errc::permission,
                  str("the root ", plan.root, " is writable by group or others (mode ", mode_octal(st.st_mode & 07777), ")"));
  }
  return fd;
}

// A MOUNT_UNDER_SCRATCH directory (SANDBOX/tmp): made component by component relative to the
// sandbox fd with O_NOFOLLOW, so a symlink the job left in its sandbox cannot redirect it;
// created 0700 and owned by the job user; an existing one must already belong to that user.
Result<Fd> open_scratch_dir(int sandbox, const std::string& sandbox_path, const std::string& subdir, const Credentials& c) {
  Fd cur;  // none yet: the sandbox itself
  std::string shown = sandbox_path;
  const auto parts = split(subdir, '/');
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const bool last = i + 1 == parts.size();
    const int at = cur ? cur.get() : sandbox;
    shown += "/" + parts[i];
    // Opened first (it exists at every launch but the first), made only when missing.
    bool made = false;
    auto next = sys::open_at(at, parts[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (!next && next.error().sys_errno() == ENOENT) {
      made = ::mkdirat(at, parts[i].c_str(), last ? 0700 : 0755) == 0;
      if (!made && errno != EEXIST) return fail_errno(str("mkdirat(", quote(shown), ")"), errno);
      next = sys::open_at(at, parts[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    }
    if (!next) {
      if (next.error().sys_errno() == ELOOP || next.error().sys_errno() == ENOTDIR)
        return fail(Errc::permission, str(shown, " is not a directory (a symlink?); refusing to use it as scratch space"));
      return fail(std::move(next.error()));
    }
    auto st = TRY(sys::fstat(next->get()));
    if (made) {
      if (::fchown(next->get(), c.uid, c.gid) != 0) return fail_errno(str("fchown(", quote(shown), ", ", c.uid, ")"), errno);
      if (::fchmod(next->get(), last ? 0700 : 0755) != 0) return fail_errno(str("fchmod(", quote(shown), ")"), errno);
    } else if (last && st.st_uid != c.uid) {
      return fail(Errc::permission, str(shown, " exists and belongs to uid ", st.st_uid, ", not to the job user (uid ", c.uid, ")"));
    }
    cur = std::move(*next);
  }
  return cur;
}

}  // namespace

Result<OpenedSources> open_sources(const LaunchPlan& plan) {
  OpenedSources out;
  out.image = TRY(open_root(plan));
  for (const auto& s : plan.sources) {
    Fd fd = TRY(with_context(sys::open_path(s.path, s.scratch_subdir.empty() ? O_PATH : (O_RDONLY | O_DIRECTORY)),
                             str("opening ", s.path)));
    if (!s.scratch_subdir.empty()) fd = TRY(open_scratch_dir(fd.get(), s.path, s.scratch_subdir, plan.creds));
    out.sources.push_back(std::move(fd));
  }
  return out;
}

}  // namespace chrootctl::launcher::detail
