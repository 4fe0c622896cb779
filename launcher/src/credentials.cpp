// The job user: resolved on the host before anything of the image is touched, and the privilege
// drop the job goes through just before exec.
#include <grp.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <vector>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/launcher/launch.hpp"
#include "internal.hpp"

extern char** environ;

namespace chrootctl::launcher {

HostFacts gather_host_facts() {
  HostFacts f;
  f.uid = ::getuid();
  f.euid = ::geteuid();
  f.gid = ::getgid();
  const int n = ::getgroups(0, nullptr);
  if (n > 0) {
    f.groups.resize(static_cast<std::size_t>(n));
    f.groups.resize(static_cast<std::size_t>(std::max(0, ::getgroups(n, f.groups.data()))));
  }
  char buf[PATH_MAX];
  if (::getcwd(buf, sizeof buf)) f.cwd = buf;
  f.on_terminal = ::isatty(0) == 1 || ::isatty(1) == 1 || ::isatty(2) == 1;
  for (char** e = environ; e && *e; ++e) f.environ.emplace_back(*e);
  return f;
}

namespace {
struct PasswdEntry {
  uid_t uid;
  gid_t gid;
  std::string name;
  std::string home;
};

// getpwnam_r/getpwuid_r through the host's NSS configuration: this runs in the launcher, in the
// host's mount namespace, before the image is opened, so no module of the image can be loaded.
Result<std::optional<PasswdEntry>> lookup(const std::string& spec, bool by_uid, uid_t uid) {
  struct passwd pw {};
  struct passwd* found = nullptr;
  std::vector<char> buf(16384);
  int rc = 0;
  while (true) {
    rc = by_uid ? ::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) : ::getpwnam_r(spec.c_str(), &pw, buf.data(), buf.size(), &found);
    if (rc != ERANGE || buf.size() > (1u << 22)) break;
    buf.resize(buf.size() * 2);
  }
  if (rc != 0 && rc != ENOENT && rc != ESRCH) return fail_errno(by_uid ? str("getpwuid_r(", uid, ")") : str("getpwnam_r(", quote(spec), ")"), rc);
  if (!found) return std::optional<PasswdEntry>();
  return std::optional<PasswdEntry>(PasswdEntry{pw.pw_uid, pw.pw_gid, pw.pw_name, pw.pw_dir ? pw.pw_dir : "/"});
}

Result<std::vector<gid_t>> groups_of(const std::string& name, gid_t gid) {
  int n = 32;
  std::vector<gid_t> groups(static_cast<std::size_t>(n));
  while (::getgrouplist(name.c_str(), gid, groups.data(), &n) < 0) {
    if (n > 65536) return fail(Errc::invalid_argument, str("user ", quote(name), " is in too many groups"));
    groups.resize(static_cast<std::size_t>(n) * 2);
    n = static_cast<int>(groups.size());
  }
  groups.resize(static_cast<std::size_t>(n));
  return groups;
}

// The job's supplementary groups. A job that runs as the caller keeps the groups the caller
// holds, as a plain exec would (never more than the caller already has); any other user gets
// the groups the host's database gives it. This also spares the launch of a caller that runs
// jobs as itself the group database walk, which loads every NSS module named for groups.
Result<std::vector<gid_t>> job_groups(const std::string& name, uid_t uid, gid_t gid, const HostFacts& facts) {
  if (uid == facts.uid && gid == facts.gid) return facts.groups;
  return groups_of(name, gid);
}
}  // namespace

Result<Credentials> resolve_job_user(const std::optional<std::string>& spec, const HostFacts& facts, bool unprivileged) {
  Credentials c;
  if (unprivileged) {
    // The caller is mapped to itself; there is no other user to become.
    auto self = TRY(lookup({}, true, facts.uid));
    if (!spec && facts.uid == 0) return fail(Errc::invalid_argument, "the job would run as root: pass --user root to run it as root on purpose");
    if (spec) {
      const auto n = parse_u64(*spec);
      const bool is_self = (n && *n == facts.uid) || (self && self->name == *spec);
      if (!is_self)
        return fail(Errc::permission, str("--user ", quote(*spec), ": an unprivileged launch runs the job as the caller (uid ", facts.uid, ")"));
    }
    c.uid = facts.uid;
    c.gid = facts.gid;
    c.name = self ? self->name : std::to_string(facts.uid);
    c.home = self ? self->home : "/";
    return c;
  }
  if (!spec) {
    if (facts.uid == 0)
      return fail(Errc::invalid_argument, "the job would run as root: pass --user USER (or --user root to run it as root on purpose)");
    auto self = TRY(lookup({}, true, facts.uid));
    if (!self) return fail(Errc::not_found, str("uid ", facts.uid, " is not in the host's user database"));
    c.uid = self->uid;
    c.gid = facts.gid;
    c.name = self->name;
    c.home = self->home;
    c.groups = facts.groups;  // the caller itself (see job_groups)
    return c;
  }
  if (spec->empty()) return fail(Errc::invalid_argument, "--user: empty user name");
  const auto n = parse_u64(*spec);
  if (n && *n >= static_cast<std::uint64_t>(static_cast<uid_t>(-1))) return fail(Errc::invalid_argument, str("--user ", *spec, ": not a valid uid"));
  auto entry = TRY(lookup(*spec, n.has_value(), n ? static_cast<uid_t>(*n) : 0));
  if (!entry) return fail(Errc::not_found, str("--user ", quote(*spec), ": no such user in the host's user database"));
  c.uid = entry->uid;
  c.gid = entry->gid;
  c.name = entry->name;
  c.home = entry->home;
  // A job as root has only ids of its own block: none of the host's groups.
  if (c.uid != 0) c.groups = TRY(job_groups(entry->name, entry->uid, entry->gid, facts));
  return c;
}

Result<std::optional<Credentials>> host_user(uid_t uid) {
  auto entry = TRY(lookup({}, true, uid));
  if (!entry) return std::optional<Credentials>();
  Credentials c;
  c.uid = entry->uid;
  c.gid = entry->gid;
  c.name = entry->name;
  c.home = entry->home;
  return std::optional<Credentials>(std::move(c));
}

namespace detail {

Status drop_privileges(const Credentials& c, bool change_ids) {
  // Capabilities beyond the bounding set can never come back through exec (file capabilities
  // or a setuid-root binary), even for uid 0; dropping them needs CAP_SETPCAP, so this is first.
  for (int cap = 0; cap <= 63; ++cap) {
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
      if (errno == EINVAL) break;  // past the last capability this kernel knows
      return fail_errno(str("prctl(PR_CAPBSET_DROP, ", cap, ")"), errno);
    }
  }
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
    return fail_errno("prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)", errno);
  // uid 0 keeps no implicit capabilities across exec, and cannot undo that.
  if (c.uid == 0 &&
      ::prctl(PR_SET_SECUREBITS,
              SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP | SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED, 0, 0, 0) != 0)
    return fail_errno("prctl(PR_SET_SECUREBITS, NOROOT|NO_SETUID_FIXUP, locked)", errno);
  if (change_ids) {
    if (::setgroups(c.groups.size(), c.groups.data()) != 0) return fail_errno(str("setgroups(", c.groups.size(), " groups)"), errno);
    if (::setresgid(c.gid, c.gid, c.gid) != 0) return fail_errno(str("setresgid(", c.gid, ")"), errno);
    if (::setresuid(c.uid, c.uid, c.uid) != 0) return fail_errno(str("setresuid(", c.uid, ")"), errno);
  }
  // Empty effective, permitted and inheritable sets (a no-op for a non-root uid, whose sets the
  // kernel already cleared; needed for uid 0 and inside a user namespace).
  struct __user_cap_header_struct header {
    _LINUX_CAPABILITY_VERSION_3, 0
  };
  struct __user_cap_data_struct data[2]{};
  if (::syscall(SYS_capset, &header, data) != 0) return fail_errno("capset(all empty)", errno);
  // No exec can grant privileges again: setuid bits and file capabilities are ignored.
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return fail_errno("prctl(PR_SET_NO_NEW_PRIVS, 1)", errno);
  return {};
}

Status restrict_build_capabilities() {
  // Root in a tree being built keeps what package managers and maintainer scripts need — the
  // default capability set of container runtimes, without CAP_MKNOD and CAP_NET_RAW — and
  // loses everything that reaches past a mount namespace: CAP_SYS_ADMIN (mounts, namespaces),
  // CAP_DAC_READ_SEARCH (open_by_handle_at opens any inode of the filesystem), CAP_SYS_MODULE,
  // CAP_SYS_RAWIO, CAP_SYS_PTRACE, CAP_NET_ADMIN on the host's network, CAP_BPF, CAP_SYS_BOOT,
  // CAP_SYS_TIME and the rest. Dropped from the bounding set first, so no exec brings them back.
  constexpr int k_keep[] = {CAP_CHOWN,  CAP_DAC_OVERRIDE,     CAP_FOWNER,     CAP_FSETID,      CAP_KILL,   CAP_SETGID,
                            CAP_SETUID, CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT, CAP_AUDIT_WRITE, CAP_SETFCAP};
  auto kept = [&](int cap) {
    for (int k : k_keep)
      if (k == cap) return true;
    return false;
  };
  for (int cap = 0; cap <= 63; ++cap) {
    if (kept(cap)) continue;
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
      if (errno == EINVAL) break;
      return fail_errno(str("prctl(PR_CAPBSET_DROP, ", cap, ")"), errno);
    }
  }
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
    return fail_errno("prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)", errno);
  struct __user_cap_header_struct header {
    _LINUX_CAPABILITY_VERSION_3, 0
  };
  struct __user_cap_data_struct data[2]{};
  for (int k : k_keep) {
    data[k / 32].effective |= 1u << (k % 32);
    data[k / 32].permitted |= 1u << (k % 32);
  }
  if (::syscall(SYS_capset, &header, data) != 0) return fail_errno("capset(build set)", errno);
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return fail_errno("prctl(PR_SET_NO_NEW_PRIVS, 1)", errno);
  return {};
}

Status become(InitIds how, uid_t uid, gid_t gid) {
  if (how == InitIds::keep) return {};
  // None of the launcher's supplementary groups (host root's) stays with init or its job.
  if (::setgroups(0, nullptr) != 0) return fail_errno("setgroups(0 groups) in the job's user namespace", errno);
  if (how == InitIds::root) {
    // uid 0 of the namespace keeps the namespace's capabilities.
    if (::setresgid(0, 0, 0) != 0) return fail_errno("setresgid(0) in the job's user namespace", errno);
    if (::setresuid(0, 0, 0) != 0) return fail_errno("setresuid(0) in the job's user namespace", errno);
    return {};
  }
  // Another uid keeps its capabilities in the namespace only through PR_SET_KEEPCAPS, and then
  // only in the permitted set: the effective set is raised again from it.
  if (::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return fail_errno("prctl(PR_SET_KEEPCAPS, 1)", errno);
  if (::setresgid(gid, gid, gid) != 0) return fail_errno(str("setresgid(", gid, ") in the job's user namespace"), errno);
  if (::setresuid(uid, uid, uid) != 0) return fail_errno(str("setresuid(", uid, ") in the job's user namespace"), errno);
  if (::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) return fail_errno("prctl(PR_SET_KEEPCAPS, 0)", errno);
  struct __user_cap_header_struct header {
    _LINUX_CAPABILITY_VERSION_3, 0
  };
  struct __user_cap_data_struct data[2]{};
  if (::syscall(SYS_capget, &header, data) != 0) return fail_errno("capget", errno);
  for (auto& d : data) d.effective = d.permitted;
  if (::syscall(SYS_capset, &header, data) != 0) return fail_errno("capset(effective = permitted)", errno);
  return {};
}

Status keep_only_kill_capability() {
  // Init never execs; once the job runs it only waits, forwards signals and, at the end, kills
  // what is left, which for processes of another uid takes CAP_KILL. Nothing else stays with
  // it (a mount it could still change, for one).
  struct __user_cap_header_struct header {
    _LINUX_CAPABILITY_VERSION_3, 0
  };
  struct __user_cap_data_struct data[2]{};
  data[CAP_KILL / 32].effective = data[CAP_KILL / 32].permitted = 1u << (CAP_KILL % 32);
  if (::syscall(SYS_capset, &header, data) != 0) return fail_errno("capset(CAP_KILL only)", errno);
  return {};
}

Status join_new_session_keyring() {
  // A fresh, anonymous session keyring: without it the job shares the session keyring of
  // whoever started chrootctl (a batch daemon's, with its jobs' Kerberos and AFS tokens).
  constexpr long k_keyctl_join_session_keyring = 1;
  if (::syscall(SYS_keyctl, k_keyctl_join_session_keyring, nullptr) < 0 && errno != ENOSYS)
    return fail_errno("keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL)", errno);
  return {};
}

}  // namespace detail

}  // namespace chrootctl::launcher
