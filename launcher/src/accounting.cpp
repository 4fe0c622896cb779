// The accounting log: one JSON line per launch (accounting.hpp, docs/accounting.md).
#include "chrootctl/launcher/accounting.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "chrootctl/common/json.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"

namespace chrootctl::launcher {

namespace {

// "2026-11-23T12:05:30.123Z"
std::string iso_time(std::int64_t ns) {
  const time_t secs = static_cast<time_t>(ns / 1000000000);
  struct tm tm {};
  if (!::gmtime_r(&secs, &tm)) return "1970-01-01T00:00:00.000Z";
  char buf[40];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char ms[8];
  (void)std::snprintf(ms, sizeof ms, ".%03lld", static_cast<long long>((ns / 1000000) % 1000));  // fits: 5 bytes
  return std::string(buf, n) + ms + "Z";
}

std::string user_name(uid_t uid) {
  auto u = host_user(uid);
  return u && *u ? (*u)->name : std::string();
}

std::string host_name() {
  char buf[HOST_NAME_MAX + 1] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return {};
  return buf;
}

// "0 1879048192 65536\n1000 1000 1\n" -> "0 1879048192 65536,1000 1000 1"
std::string one_line_map(const std::string& map) {
  std::vector<std::string> lines;
  for (const auto& l : split(map, '\n'))
    if (!trim(l).empty()) lines.emplace_back(trim(l));
  return join(lines, ",");
}

std::int64_t to_ms(double seconds) { return std::llround(seconds * 1000.0); }

// The directory part of an absolute path ("/" for a file in "/").
std::string dir_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == 0 || slash == std::string::npos ? std::string("/") : path.substr(0, slash);
}

// Root's log directory: made if missing (0755), and it must be root's and writable by no one
// else, so that nobody but root can replace the log or a rotated file.
Result<Fd> open_root_log_dir(const std::string& dir) {
  if (auto there = sys::access_path(dir, F_OK); !there && there.error().sys_errno() == ENOENT) TRY(sys::mkdir_p(dir, 0755));
  Fd d = TRY(sys::open_path(dir, O_RDONLY | O_DIRECTORY));
  const auto st = TRY(sys::fstat(d.get()));
  if (st.st_uid != 0 || (st.st_mode & 022))
    return fail(Errc::permission, str("the accounting directory ", dir, " is owned by uid ", st.st_uid, " with mode ", mode_octal(st.st_mode & 07777),
                                      "; it must belong to root and be writable by no one else"));
  // Where launchers of other users write their lines: root's, sticky, writable and searchable
  // by everyone, readable by no one else (no user can list or remove another's file).
  if (auto made = sys::mkdir_at(d.get(), "users", 01733)) {
    Fd users = TRY(sys::open_dir_at(d.get(), "users"));
    if (::fchmod(users.get(), 01733) != 0) return fail_errno(str("fchmod(", quote(dir + "/users"), ", 01733)"), errno);
  } else if (made.error().sys_errno() != EEXIST) {
    return fail_errno(str("mkdir(", quote(dir + "/users"), ", 01733)"), made.error().sys_errno());
  }
  return d;
}

// users/ for a launcher that is not root: root's and sticky (nobody can remove or rename
// another user's file there).
Result<Fd> open_users_dir(const std::string& dir) {
  auto d = sys::open_path(dir, O_PATH | O_DIRECTORY | O_NOFOLLOW);
  if (!d) {
    if (d.error().sys_errno() == ENOENT)
      return fail(Errc::not_found, str("the accounting directory ", dir,
                                       " does not exist (root's first launch or "
                                       "systemd-tmpfiles makes it)"));
    return fail(std::move(d.error()));
  }
  const auto st = TRY(sys::fstat(d->get()));
  if (st.st_uid != 0 || !(st.st_mode & S_ISVTX))
    return fail(Errc::permission, str("the accounting directory ", dir, " is owned by uid ", st.st_uid, " with mode ", mode_octal(st.st_mode & 07777),
                                      "; it must belong to root and be sticky (1733)"));
  return std::move(*d);
}

Result<Fd> open_log(int dirfd, const std::string& name, const std::string& path, uid_t euid) {
  // O_NONBLOCK: a FIFO planted under the name must not hang the launcher (ENXIO without a reader).
  auto f = sys::open_at(dirfd, name, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK, euid == 0 ? 0640 : 0600);
  if (!f) {
    const int err = f.error().sys_errno();
    if (err == ELOOP) return fail(Errc::permission, str(path, " is a symlink; refusing to write through it"));
    if (err == ENXIO) return fail(Errc::permission, str(path, " is a FIFO or a device, not a regular file"));
    return fail_errno(str("open(", quote(path), ", O_WRONLY|O_APPEND|O_CREAT)"), err);
  }
  const auto st = TRY(sys::fstat(f->get()));
  if (!S_ISREG(st.st_mode)) return fail(Errc::permission, str(path, " is not a regular file"));
  if (st.st_uid != euid || st.st_nlink != 1 || (st.st_mode & 022))
    return fail(Errc::permission, str(path, " is owned by uid ", st.st_uid, " with mode ", mode_octal(st.st_mode & 07777), " and ", st.st_nlink,
                                      " links; it must be a file of uid ", euid, " with one link, writable by no one else"));
  return std::move(*f);
}

// PATH -> PATH.1 -> ... -> PATH.KEEP (the oldest dropped); with keep 0 the file is removed.
Status rotate(int dirfd, const std::string& name, const std::string& path, unsigned keep) {
  if (keep == 0) return sys::unlink_at(dirfd, name);
  for (unsigned k = keep; k > 1; --k) {
    const std::string from = str(name, ".", k - 1);
    if (auto moved = sys::rename_at(dirfd, from, dirfd, str(name, ".", k)); !moved && moved.error().sys_errno() != ENOENT)
      return fail_errno(str("rename(", quote(str(path, ".", k - 1)), ", ", quote(str(path, ".", k)), ")"), moved.error().sys_errno());
  }
  return sys::rename_at(dirfd, name, dirfd, name + ".1");
}

}  // namespace

std::int64_t wall_clock_ns() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

std::string accounting_file(const AccountingLog& log, uid_t euid) {
  if (euid == 0) return log.path;
  return str(dir_of(log.path), "/users/", euid, ".jsonl");
}

std::string accounting_line(const AccountingRecord& r) {
  const Outcome& o = r.outcome;
  JsonWriter w(false);
  auto text = [&](std::string_view key, const std::string& v) {
    w.key(key);
    if (v.empty()) w.null();
    else w.value(v);
  };
  auto number = [&](std::string_view key, const std::optional<std::uint64_t>& v) {
    w.key(key);
    if (v) w.value(*v);
    else w.null();
  };
  w.begin_object();
  w.field("version", 1);
  w.field("via", r.via);
  w.field("start", iso_time(r.start_ns));
  w.field("end", iso_time(r.end_ns));
  w.field("wall_ms", (r.end_ns - r.start_ns) / 1000000);
  text("host", host_name());
  w.field("invoking_uid", static_cast<std::uint64_t>(r.invoking_uid));
  text("invoking_user", user_name(r.invoking_uid));
  number("job_uid", r.job_uid ? std::optional<std::uint64_t>(*r.job_uid) : std::nullopt);
  text("job_user", r.job_user.empty() && r.job_uid ? user_name(*r.job_uid) : r.job_user);
  text("image", r.image);
  text("entry", r.entry);
  text("build_id", r.build_id);
  text("tree_digest", r.tree_digest);
  text("signer", r.signer);
  text("root", r.root.empty() ? std::string() : escape_bytes(r.root));
  text("batch_system", r.batch_system);
  text("batch_job_id", r.batch_job_id);
  number("tasks", r.tasks ? std::optional<std::uint64_t>(r.tasks) : std::nullopt);
  w.field("outcome", outcome_kind_name(o.kind));
  w.field("exit_status", o.exit_status());
  w.key("exit_code");
  if (o.kind == Outcome::Kind::exited) w.value(o.code);
  else w.null();
  w.key("signal");
  if (o.kind == Outcome::Kind::signaled) w.value(o.code);
  else w.null();
  text("error", o.error);
  w.field("cgroup", o.cgroup);
  w.field("limits_applied", o.limits_applied);
  const LimitValues limits = o.effective_limits.value_or(LimitValues{});
  number("memory_max_bytes", limits.memory_max);
  number("memory_low_bytes", limits.memory_low);
  number("swap_max_bytes", limits.swap_max);
  number("cpu_weight", limits.cpu_weight);
  number("cpu_shares", limits.cpu_shares);
  number("pids_max", limits.pids_max);
  number("shm_bytes", o.shm_bytes);
  number("peak_memory_bytes", o.peak_memory_bytes);
  w.field("max_rss_bytes", o.max_rss_bytes);
  w.field("oom_kills", o.oom_kills);
  w.field("cpu_user_ms", to_ms(o.cpu_user_seconds));
  w.field("cpu_system_ms", to_ms(o.cpu_system_seconds));
  w.field("seccomp_policy", o.seccomp_policy);
  text("seccomp_digest", o.seccomp_digest);
  text("id_mode", o.id_mode);
  text("uid_map", one_line_map(o.uid_map));
  text("gid_map", one_line_map(o.gid_map));
  number("id_block", o.id_block ? std::optional<std::uint64_t>(*o.id_block) : std::nullopt);
  w.end_object();
  return w.str();
}

Status append_accounting_line(const AccountingLog& log, const std::string& line) {
  const uid_t euid = ::geteuid();
  const std::string path = accounting_file(log, euid);
  const std::string dir = dir_of(path);
  const std::string name = path.substr(dir.size() + (dir == "/" ? 0 : 1));
  Fd d = TRY(euid == 0 ? open_root_log_dir(dir) : open_users_dir(dir));
  // At most a few rounds: each one either writes, or finds that another launcher rotated the
  // file meanwhile and opens the new one. A launcher that rotated writes its line into the new
  // file whatever others appended to it since (max_size is a bound a line may cross), so it
  // is not sent round again.
  bool rotated = false;
  for (int round = 0; round < 8; ++round) {
    Fd f = TRY(open_log(d.get(), name, path, euid));
    const auto st = TRY(sys::fstat(f.get()));
    const auto size = static_cast<std::uint64_t>(st.st_size);
    if (!rotated && size > 0 && size + line.size() > log.max_bytes) {
      // One rotation at a time in root's directory (its flock, held until this returns), and
      // only of what is still the file at PATH: a launcher that waited for the lock finds
      // another file there and starts over with it. (A lock on the log file alone let two
      // launchers shift the numbered files at once, one renaming over what the other had
      // just moved, and lines were lost.) A user's own file, in users/ (which a user cannot
      // open for reading, so not lock), is locked itself, as before.
      TRY(sys::flock(euid == 0 ? d.get() : f.get(), true));
      auto now = sys::lstat_at(d.get(), name);
      if (now && now->st_dev == st.st_dev && now->st_ino == st.st_ino) {
        TRY(rotate(d.get(), name, path, log.keep));
        rotated = true;
      }
      continue;
    }
    const ssize_t n = sys::retry_eintr([&] { return ::write(f.get(), line.data(), line.size()); });
    if (n < 0) return fail_errno(str("write(", quote(path), ")"), errno);
    if (static_cast<std::size_t>(n) != line.size())
      return fail(Errc::io, str("write(", quote(path), "): only ", n, " of ", line.size(), " bytes written"));
    return {};
  }
  return fail(Errc::busy, str(path, ": rotated by other launchers eight times in a row; the line was not written"));
}

}  // namespace chrootctl::launcher
