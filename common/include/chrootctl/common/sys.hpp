#pragma once
/// The only place in chrootctl's libraries that calls raw system calls for files. Every function
/// retries EINTR, opens with O_CLOEXEC, returns Result with the call and its arguments named in
/// the error, and never follows a symlink unless the name says so.

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "chrootctl/common/error.hpp"
#include "chrootctl/common/fd.hpp"

namespace chrootctl::sys {

/// Retries a call returning -1/EINTR.
template <class F>
auto retry_eintr(F&& f) -> decltype(f()) {
  decltype(f()) r;
  do {
    r = f();
  } while (r == -1 && errno == EINTR);
  return r;
}

/// openat(2) with O_CLOEXEC added. `what` names the path in errors (defaults to `path`).
Result<Fd> open_at(int dirfd, const std::string& path, int flags, mode_t mode = 0);
/// open(2) of an absolute or cwd-relative path with O_CLOEXEC.
Result<Fd> open_path(const std::string& path, int flags, mode_t mode = 0);
/// Opens a directory (O_DIRECTORY|O_NOFOLLOW on the last component).
Result<Fd> open_dir_at(int dirfd, const std::string& name);
Result<Fd> open_dir(const std::string& path);

/// openat2(2) with RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS (and RESOLVE_NO_SYMLINKS if
/// `no_symlinks`): opens `path` as if `rootfd` were "/". Fails with Errc::unsupported when the
/// kernel has no openat2.
Result<Fd> open_in_root(int rootfd, const std::string& path, int flags, bool no_symlinks = false);

Result<struct stat> fstat(int fd);
/// fstatat with AT_SYMLINK_NOFOLLOW.
Result<struct stat> lstat_at(int dirfd, const std::string& name);
/// stat of a path, following symlinks (used for host paths given by the administrator).
Result<struct stat> stat_path(const std::string& path);
Result<struct stat> lstat_path(const std::string& path);

/// readlinkat of any length.
Result<std::string> readlink_at(int dirfd, const std::string& name);

/// Reads the whole file at `path` (following no symlink on the last component).
Result<std::string> read_file(const std::string& path, std::size_t limit = 64u << 20);
Result<std::string> read_fd(int fd, std::size_t limit = 64u << 20);
Status write_all(int fd, std::string_view data);

/// mkdirat(2); with `exist_ok`, an existing entry of that name (EEXIST) is not an error.
Status mkdir_at(int dirfd, const std::string& name, mode_t mode, bool exist_ok = false);
/// Makes a missing directory `name` in `parent` for open_dirs_below (`label`: its path as
/// shown in messages; `last`: it is the final component).
using MakeDir = std::function<Status(int parent, const std::string& name, const std::string& label, bool last)>;
/// Opens the directory `rel` below the directory `base` one component at a time with
/// O_NOFOLLOW, so that no symlink on the way is followed, whoever can change a directory on
/// it; a missing component is made with `make` and then opened. "" and "."
/// components are skipped, ".." is refused (Errc::invalid_argument), and a component that is a
/// symlink or not a directory is refused with Errc::permission: "'LABEL' is a symlink or not a
/// directory; REMEDY". `base_label` is `base`'s path for messages ("" for "/").
Result<Fd> open_dirs_below(int base, const std::string& base_label, std::string_view rel, const MakeDir& make, std::string_view remedy);
/// mkdir(2) of an administrator's path (the last component is created, never followed);
/// with `exist_ok`, EEXIST is not an error.
Status mkdir_path(const std::string& path, mode_t mode, bool exist_ok = false);
/// Sets the mode of the directory at `path` through a descriptor (open O_DIRECTORY|O_NOFOLLOW,
/// then fchmod): a symlink or a non-directory put in its place fails instead of being changed.
Status chmod_dir(const std::string& path, mode_t mode);
/// fchmodat(2) with `flags` (AT_SYMLINK_NOFOLLOW to change the entry itself).
Status chmod_at(int dirfd, const std::string& name, mode_t mode, int flags);
/// fchownat(2) with `flags` (AT_SYMLINK_NOFOLLOW to change the entry itself).
Status chown_at(int dirfd, const std::string& name, uid_t uid, gid_t gid, int flags);
/// utimensat(2) with `flags` (AT_SYMLINK_NOFOLLOW to change the entry itself).
Status utimens_at(int dirfd, const std::string& name, const struct timespec times[2], int flags);
/// symlinkat(2): creates `name` in `dirfd` pointing at `target`.
Status symlink_at(const std::string& target, int dirfd, const std::string& name);
/// mknodat(2).
Status mknod_at(int dirfd, const std::string& name, mode_t mode, dev_t dev);
/// `bytes` bytes from getrandom(2), in hex: for temporary names no one can guess or share. (A
/// pid is no such name: every launch's init is pid 1 in its own namespace.)
Result<std::string> random_hex(std::size_t bytes);
/// mkdtemp(3): `tmpl` ends in XXXXXX; returns the directory made (mode 0700).
Result<std::string> mkdtemp(std::string tmpl);
/// access(2) (follows symlinks: a check of an administrator's path, never a security decision).
Status access_path(const std::string& path, int mode);
/// chdir(2).
Status chdir(const std::string& path);
/// realpath(3): the canonical absolute path, following symlinks.
Result<std::string> realpath(const std::string& path);
/// lgetxattr(2) of one attribute of `path` (a symlink is not followed): its value, or
/// nullopt when the file has no such attribute (ENODATA).
Result<std::optional<std::string>> get_xattr_path(const std::string& path, const std::string& name);
/// lremovexattr(2) of one attribute of `path` (a symlink is not followed).
Status remove_xattr_path(const std::string& path, const std::string& name);
/// mkdir -p; existing directories are fine. Follows symlinks (administrator paths only).
Status mkdir_p(const std::string& path, mode_t mode);
Status unlink_at(int dirfd, const std::string& name, int flags = 0);
Status rename_at(int olddirfd, const std::string& oldname, int newdirfd, const std::string& newname, unsigned flags = 0);
Status fsync(int fd);
Status fsync_path(const std::string& dir);

/// Removes a directory tree without following symlinks, crossing no mount point.
Status remove_tree(const std::string& path);
Status remove_tree_at(int dirfd, const std::string& name);

/// All entries of an open directory fd (excluding "." and ".."), name and d_type. Rewinds the
/// fd first unless `rewind` is false (a freshly opened fd); do not share one fd between threads
/// calling this.
struct DirEntry {
  std::string name;
  unsigned char type;  ///< DT_* from getdents; DT_UNKNOWN means stat it
  ino_t ino;
};
Result<std::vector<DirEntry>> read_dir(int dirfd, bool rewind = true);

/// Extended attributes of the file behind `fd` (f*xattr), sorted by name.
struct Xattr {
  std::string name;
  std::string value;
  friend bool operator==(const Xattr&, const Xattr&) = default;
};
Result<std::vector<Xattr>> xattrs_fd(int fd);
/// Extended attributes of `name` inside the directory `dirfd`, not following a symlink.
/// Uses /proc/self/fd/DIRFD/NAME with l*xattr, so no path outside the pinned dirfd is walked.
Result<std::vector<Xattr>> xattrs_at(int dirfd, const std::string& name);

/// flock(2) wrapper; `exclusive`, optionally non-blocking (Errc::busy if held).
Status flock(int fd, bool exclusive, bool nonblocking = false);

/// The message strerror(3) gives for `err` ("No such file or directory"), not its symbolic name
/// ("ENOENT").
std::string errno_message(int err);

/// Current time helpers.
std::int64_t now_unix();
std::int64_t monotonic_ns();

// ---- children: each caller starts its own (what runs between fork and exec differs: ids
// dropped, a filter installed, posix_spawn in a threaded process); collecting what a child
// prints and waiting for it is done here, once.

/// Waits for `pid` (retrying EINTR): its exit code, or 128 + the signal that killed it.
Result<int> wait_child(pid_t pid);

/// What a child printed and how it ended.
struct ChildOutput {
  int status = -1;  ///< exit code, or 128 + signal
  int signal = 0;   ///< the signal that killed it, or 0
  std::string out, err;
  bool timed_out = false;  ///< killed (SIGKILL) when its time ran out
  bool truncated = false;  ///< it printed more than the limit on stdout or stderr (the rest was read and dropped)
  int read_errno = 0;      ///< a read of its output failed with this errno (what was read before is kept)
};

/// Reads the read ends of the child's stdout and stderr pipes (either may be empty) until
/// both are closed, keeping at most `limit` bytes of each; then waits for it. Once `timeout_ms`
/// has passed (0: no limit), in either phase, it kills the child with SIGKILL: a child that
/// closed its output and went on running is not waited for past the limit either. The write
/// ends must be closed in this process already.
Result<ChildOutput> collect_child(pid_t pid, Fd out, Fd err, std::int64_t timeout_ms, std::size_t limit);

}  // namespace chrootctl::sys
