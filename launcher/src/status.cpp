// The --status-json record: its JSON text and the file it is written to.
#include <signal.h>
#include <string.h>

#include <fcntl.h>
#include <unistd.h>

#include "chrootctl/common/json.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/launcher/launch.hpp"
#include "internal.hpp"

namespace chrootctl::launcher {

namespace detail {

// The status file is often written into the job's sandbox, a directory the job controlled a
// moment ago, by a launcher that may be root. Every directory on the way is opened with
// O_NOFOLLOW (a symlink the job planted cannot redirect the write), the file is made under a
// fresh name with O_EXCL in that directory and renamed over the final name (a planted symlink or
// hard link at that name is replaced, never written through).
Status write_status_file(const std::string& path, const std::string& text) {
  if (path.empty()) return fail(Errc::invalid_argument, "--status-json: empty path");
  const auto slash = path.find_last_of('/');
  const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  if (dir.empty()) dir = "/";
  if (name.empty() || name == "." || name == "..") return fail(Errc::invalid_argument, str("--status-json ", quote(path), ": not a file name"));
  Fd cur = TRY(sys::open_path(dir[0] == '/' ? "/" : ".", O_PATH | O_DIRECTORY));
  std::string so_far = dir[0] == '/' ? "" : ".";
  for (const auto& c : split(dir, '/')) {
    if (c.empty() || c == ".") continue;
    so_far += "/" + c;
    auto next = sys::open_at(cur.get(), c, O_PATH | O_DIRECTORY | O_NOFOLLOW);
    if (!next) {
      const int err = next.error().sys_errno();
      if (err == ENOTDIR || err == ELOOP)
        return fail(Errc::permission, str(so_far, " is a symlink or not a directory; refusing to write ", path, " through it"));
      return fail(std::move(next.error()));
    }
    cur = std::move(*next);
  }
  Fd d = TRY(sys::open_at(cur.get(), ".", O_RDONLY | O_DIRECTORY));
  // A name no one can guess: a predictable one could be taken first by the job's user, and the
  // status would never be written. (O_EXCL still refuses anything that exists.)
  const std::string tmp = str(".", name, ".", TRY(sys::random_hex(8)), ".tmp");
  Fd f = TRY(sys::open_at(d.get(), tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0644));
  auto written = sys::write_all(f.get(), text);
  if (written) written = sys::fsync(f.get());
  f.reset();
  if (written) written = sys::rename_at(d.get(), tmp, d.get(), name);
  if (!written) {
    (void)sys::unlink_at(d.get(), tmp);
    return written;
  }
  return sys::fsync(d.get());
}

}  // namespace detail

std::string_view outcome_kind_name(Outcome::Kind k) {
  switch (k) {
    case Outcome::Kind::exited:
      return "exited";
    case Outcome::Kind::signaled:
      return "signaled";
    case Outcome::Kind::setup_failed:
      return "setup_failed";
    case Outcome::Kind::not_executable:
      return "not_executable";
    case Outcome::Kind::not_found:
      return "not_found";
  }
  return "setup_failed";
}

std::string_view verity_state_name(VerityState s) {
  switch (s) {
    case VerityState::verified:
      return "verified";
    case VerityState::corrupted:
      return "corrupted";
    case VerityState::none:
      return "none";
    case VerityState::unknown:
      return "unknown";
  }
  return "unknown";
}

std::string status_json(const Outcome& o) {
  JsonWriter w;
  w.begin_object();
  w.field("version", 1);
  w.field("outcome", outcome_kind_name(o.kind));
  w.field("exit_status", o.exit_status());
  w.key("exit_code");
  if (o.kind == Outcome::Kind::exited) w.value(o.code);
  else w.null();
  w.key("signal");
  if (o.kind == Outcome::Kind::signaled) w.value(o.code);
  else w.null();
  w.key("signal_name");
  if (o.kind == Outcome::Kind::signaled && sigabbrev_np(o.code)) w.value(str("SIG", sigabbrev_np(o.code)));
  else w.null();
  w.key("error");
  if (!o.error.empty()) w.value(o.error);
  else w.null();
  w.field("wall_seconds", o.wall_seconds);
  w.field("cpu_user_seconds", o.cpu_user_seconds);
  w.field("cpu_system_seconds", o.cpu_system_seconds);
  w.field("max_rss_bytes", o.max_rss_bytes);
  w.key("peak_memory_bytes");
  if (o.peak_memory_bytes) w.value(*o.peak_memory_bytes);
  else w.null();
  w.key("memory_limit_bytes");
  if (o.memory_limit_bytes) w.value(*o.memory_limit_bytes);
  else w.null();
  w.field("memory_limit_hit", o.memory_limit_hit);
  w.field("oom_kills", o.oom_kills);
  w.field("cgroup", o.cgroup);
  w.field("limits_applied", o.limits_applied);
  w.key("shm_bytes");
  if (o.shm_bytes) w.value(*o.shm_bytes);
  else w.null();
  // The limits the cgroup held when the job ended, as its files said, and whether they differ
  // from what the launcher wrote (a job cannot change them; this says so if it ever did).
  w.key("effective_limits");
  if (o.effective_limits) {
    const auto& l = *o.effective_limits;
    w.begin_object();
    for (const auto& [name, value] :
         {std::pair{"memory_max_bytes", l.memory_max}, std::pair{"memory_low_bytes", l.memory_low}, std::pair{"swap_max_bytes", l.swap_max},
          std::pair{"cpu_weight", l.cpu_weight}, std::pair{"cpu_shares", l.cpu_shares}, std::pair{"pids_max", l.pids_max}}) {
      w.key(name);
      if (value) w.value(*value);
      else w.null();
    }
    w.end_object();
  } else {
    w.null();
  }
  w.field("limits_changed", o.limits_changed);
  w.key("user_namespace");
  if (!o.id_mode.empty()) {
    w.begin_object();
    w.field("mode", o.id_mode);
    w.field("uid_map", o.uid_map);
    w.field("gid_map", o.gid_map);
    w.key("id_block");
    if (o.id_block) w.value(*o.id_block);
    else w.null();
    w.end_object();
  } else {
    w.null();
  }
  w.key("sealed");
  if (o.sealed) {
    w.begin_object();
    w.field("image", o.sealed->image);
    w.field("mount", o.sealed->mount);
    w.field("verity", verity_state_name(o.sealed->verity));
    w.end_object();
  } else {
    w.null();
  }
  w.field("seccomp_policy", o.seccomp_policy);
  w.key("seccomp_digest");
  if (!o.seccomp_digest.empty()) w.value(o.seccomp_digest);
  else w.null();
  w.end_object();
  return w.str();
}

}  // namespace chrootctl::launcher
