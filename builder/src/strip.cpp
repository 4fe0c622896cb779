#include "chrootctl/builder/strip.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "chrootctl/builder/paths.hpp"
#include "chrootctl/common/fd.hpp"
#include "chrootctl/common/json.hpp"
#include "chrootctl/common/privilege.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"

namespace chrootctl::builder {

std::string_view action_name(StripAction::Kind k) {
  switch (k) {
    case StripAction::Kind::removed:
      return "removed";
    case StripAction::Kind::setuid_removed:
      return "setuid-removed";
    case StripAction::Kind::setuid_cleared:
      return "setuid-cleared";
    case StripAction::Kind::setuid_kept:
      return "setuid-kept";
    case StripAction::Kind::capability_dropped:
      return "capability-dropped";
    case StripAction::Kind::capability_kept:
      return "capability-kept";
    case StripAction::Kind::device_removed:
      return "device-removed";
    case StripAction::Kind::password_locked:
      return "password-locked";
  }
  return "?";
}

std::optional<std::string> locked_password(std::string_view field) {
  if (!field.empty() && field[0] == '*') return std::nullopt;
  if (field == "!" || field == "!*") return std::nullopt;
  if (!field.empty() && field[0] == '!') return std::string("!");
  return std::string("*");
}

std::string StripReport::log_text() const {
  std::string out;
  for (const auto& a : actions) {
    out += str("strip: ", action_name(a.kind), " ", escape_bytes(a.path));
    if (!a.detail.empty()) out += str(" (", a.detail, ")");
    out += "\n";
  }
  out += str("strip: ", actions.size(), " actions, ", entries_removed, " entries removed, ", mtimes_clamped, " mtimes clamped\n");
  return out;
}

std::string StripReport::json(const Strip& policy) const {
  JsonWriter w;
  w.begin_object();
  w.field("format", 1);
  w.key("policy").begin_object();
  w.field("setuid", setuid_policy_name(policy.setuid));
  w.key("allow_setuid").begin_array();
  for (const auto& p : policy.allow_setuid) w.value(p);
  w.end_array();
  w.field("capabilities", policy.capabilities);
  w.key("allow_capabilities").begin_array();
  for (const auto& p : policy.allow_capabilities) w.value(p);
  w.end_array();
  w.field("devices", policy.devices);
  w.field("shadow", policy.shadow);
  w.key("remove").begin_array();
  for (const auto& p : policy.remove) w.value(p);
  w.end_array();
  w.end_object();
  w.key("summary").begin_object();
  for (auto k : {StripAction::Kind::removed, StripAction::Kind::setuid_removed, StripAction::Kind::setuid_cleared, StripAction::Kind::setuid_kept,
                 StripAction::Kind::capability_dropped, StripAction::Kind::capability_kept, StripAction::Kind::device_removed,
                 StripAction::Kind::password_locked}) {
    w.field(action_name(k), static_cast<std::uint64_t>(std::count_if(actions.begin(), actions.end(), [&](const auto& a) { return a.kind == k; })));
  }
  w.field("entries_removed", entries_removed);
  w.end_object();
  w.key("actions").begin_array();
  for (const auto& a : actions) {
    w.begin_object();
    w.field("action", action_name(a.kind));
    w.field("path", a.path);
    w.field("detail", a.detail);
    w.end_object();
  }
  w.end_array();
  w.end_object();
  return w.str();
}

namespace {

// Removes `name` (a whole tree, never following symlinks, never crossing into another
// filesystem) and returns how many entries it held: one walk does both.
Result<std::uint64_t> remove_counting(int dirfd, const std::string& name, dev_t dev, const std::string& path) {
  auto st = TRY(sys::lstat_at(dirfd, name));
  if (!S_ISDIR(st.st_mode)) {
    TRY(sys::unlink_at(dirfd, name));
    return std::uint64_t{1};
  }
  if (st.st_dev != dev) return fail(Errc::permission, str("refusing to remove ", quote(path), ": it is a mount point"));
  auto sub = TRY(sys::open_dir_at(dirfd, name));
  std::uint64_t n = 1;
  for (const auto& e : TRY(sys::read_dir(sub.get(), false))) n += TRY(remove_counting(sub.get(), e.name, dev, path + "/" + e.name));
  TRY(sys::unlink_at(dirfd, name, AT_REMOVEDIR));
  return n;
}

class Stripper {
 public:
  Stripper(const Strip& p, std::optional<std::int64_t> clamp, StripReport& r, dev_t dev) : m_p(p), m_clamp(clamp), m_r(r), m_dev(dev) {}

  Status clamp(int dirfd, const std::string& name, const struct stat& st, const std::string& path) {
    if (!m_clamp || st.st_mtim.tv_sec < *m_clamp || (st.st_mtim.tv_sec == *m_clamp && st.st_mtim.tv_nsec == 0)) return {};
    const struct timespec ts[2] = {{*m_clamp, 0}, {*m_clamp, 0}};
    if (auto r = sys::utimens_at(dirfd, name, ts, AT_SYMLINK_NOFOLLOW); !r)
      return fail_errno(str("utimensat(", quote(path), ")"), r.error().sys_errno());
    ++m_r.mtimes_clamped;
    return {};
  }

  Status dir(int dirfd, const std::string& path) {
    auto entries = TRY(sys::read_dir(dirfd));
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    for (const auto& e : entries) {
      const std::string child = str(path == "/" ? "" : path, "/", e.name);
      if (auto pattern = matching_glob(child)) {
        m_r.entries_removed += TRY(remove_counting(dirfd, e.name, m_dev, child));
        m_r.actions.push_back({StripAction::Kind::removed, child, str("matches ", *pattern)});
        continue;
      }
      auto st = TRY(sys::lstat_at(dirfd, e.name));
      if (S_ISDIR(st.st_mode)) {
        auto sub = TRY(sys::open_dir_at(dirfd, e.name));
        TRY(this->dir(sub.get(), child));
        // Re-read: the work inside changed its mtime.
        st = TRY(sys::fstat(sub.get()));
        TRY(clamp(dirfd, e.name, st, child));
        continue;
      }
      if (S_ISREG(st.st_mode) || S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
        // The same decision import makes (common/privilege.hpp).
        std::optional<std::string> cap;
        if (S_ISREG(st.st_mode)) cap = TRY(read_capability(dirfd, e.name, child));
        const auto a = privilege_actions(child, st.st_mode, cap.has_value(), m_p);
        const std::string before = mode_octal(st.st_mode & 07777);
        if (a.setuid_kept != PrivilegeActions::Kept::no)
          m_r.actions.push_back({StripAction::Kind::setuid_kept, child,
                                 str("mode ", before, a.setuid_kept == PrivilegeActions::Kept::allow_list ? ", on allow_setuid" : ", policy keep")});
        if (a.remove) {
          TRY(sys::unlink_at(dirfd, e.name));
          ++m_r.entries_removed;
          if (S_ISREG(st.st_mode)) m_r.actions.push_back({StripAction::Kind::setuid_removed, child, str("mode ", before)});
          else
            m_r.actions.push_back(
                {StripAction::Kind::device_removed, child, str(S_ISCHR(st.st_mode) ? "c " : "b ", major(st.st_rdev), ",", minor(st.st_rdev))});
          continue;
        }
        if (a.clear_setuid) {
          const mode_t mode = st.st_mode & 01777;
          if (auto r = sys::chmod_at(dirfd, e.name, mode, AT_SYMLINK_NOFOLLOW); !r)
            return fail_errno(str("fchmodat(", quote(child), ", ", mode_octal(mode), ")"), r.error().sys_errno());
          m_r.actions.push_back({StripAction::Kind::setuid_cleared, child, str(before, " -> ", mode_octal(mode))});
        }
        if (a.capability_kept == PrivilegeActions::Kept::allow_list)
          m_r.actions.push_back({StripAction::Kind::capability_kept, child, str("security.capability=", *cap, ", on allow_capabilities")});
        if (a.drop_capability) {
          const std::string p = str("/proc/self/fd/", dirfd, "/", e.name);
          if (auto r = sys::remove_xattr_path(p, "security.capability"); !r)
            return fail_errno(str("removexattr(", quote(child), ", security.capability)"), r.error().sys_errno());
          m_r.actions.push_back({StripAction::Kind::capability_dropped, child, str("security.capability=", *cap)});
        }
      }
      TRY(clamp(dirfd, e.name, st, child));
    }
    return {};
  }

 private:
  std::optional<std::string> matching_glob(const std::string& path) const {
    for (const auto& g : m_p.remove)
      if (glob_match(g, path)) return g;
    return std::nullopt;
  }

  // The file's security.capability in hex, or nullopt when it has none.
  Result<std::optional<std::string>> read_capability(int dirfd, const std::string& name, const std::string& path) {
    const std::string p = str("/proc/self/fd/", dirfd, "/", name);
    auto v = sys::get_xattr_path(p, "security.capability");
    if (!v) {
      if (v.error().sys_errno() == ENOTSUP) return std::optional<std::string>();
      return fail_errno(str("getxattr(", quote(path), ", security.capability)"), v.error().sys_errno());
    }
    if (!*v) return std::optional<std::string>();
    return std::optional<std::string>(to_hex(reinterpret_cast<const unsigned char*>((*v)->data()), (*v)->size()));
  }

  const Strip& m_p;
  std::optional<std::int64_t> m_clamp;
  StripReport& m_r;
  dev_t m_dev;
};

// Rewrites one of /etc/shadow, /etc/gshadow in place (same owner, mode and mtime), through
// descriptors opened inside the root without following symlinks.
Status lock_passwords(int rootfd, const std::string& name, StripReport& r) {
  auto etc = sys::open_in_root(rootfd, "etc", O_RDONLY | O_DIRECTORY, true);
  if (!etc) return etc.error().code() == Errc::not_found ? Status{} : fail(etc.error());
  auto in = sys::open_at(etc->get(), name, O_RDONLY | O_NOFOLLOW | O_NOCTTY);
  if (!in) {
    if (in.error().code() == Errc::not_found) return {};
    return fail(std::move(in.error()).add_context(str("reading /etc/", name, " (a symlink there is refused)")));
  }
  auto st = TRY(sys::fstat(in->get()));
  if (!S_ISREG(st.st_mode)) return fail(Errc::permission, str("/etc/", name, " is not a regular file"));
  const std::string text = TRY(sys::read_fd(in->get(), 16u << 20));
  std::string out;
  bool changed = false;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto nl = text.find('\n', pos);
    const bool has_nl = nl != std::string::npos;
    if (!has_nl) nl = text.size();
    std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    const auto c1 = line.find(':');
    const auto c2 = c1 == std::string::npos ? std::string::npos : line.find(':', c1 + 1);
    if (c1 != std::string::npos && !line.empty() && line[0] != '#') {
      const std::string field = line.substr(c1 + 1, (c2 == std::string::npos ? line.size() : c2) - c1 - 1);
      if (auto repl = locked_password(field)) {
        r.actions.push_back({StripAction::Kind::password_locked, "/etc/" + name,
                             str(line.substr(0, c1), ": ", field.empty() ? "empty password" : "password hash", " -> ", *repl)});
        line = line.substr(0, c1 + 1) + *repl + (c2 == std::string::npos ? "" : line.substr(c2));
        changed = true;
      }
    }
    out += line;
    if (has_nl) out += '\n';
  }
  if (!changed) return {};
  const std::string tmp = str(".", name, ".chrootctl-new");
  (void)sys::unlink_at(etc->get(), tmp);  // a leftover of an interrupted run
  auto fd = TRY(sys::open_at(etc->get(), tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600));
  TRY(sys::write_all(fd.get(), out));
  if (::fchown(fd.get(), st.st_uid, st.st_gid) != 0) return fail_errno(str("fchown(/etc/", tmp, ")"), errno);
  if (::fchmod(fd.get(), st.st_mode & 07777) != 0) return fail_errno(str("fchmod(/etc/", tmp, ")"), errno);
  const struct timespec ts[2] = {st.st_atim, st.st_mtim};
  if (::futimens(fd.get(), ts) != 0) return fail_errno(str("futimens(/etc/", tmp, ")"), errno);
  return sys::rename_at(etc->get(), tmp, etc->get(), name);
}

}  // namespace

Result<StripReport> strip_tree(const std::string& root, const Strip& policy, std::optional<std::int64_t> clamp_mtime) {
  StripReport report;
  auto rootfd = TRY(sys::open_path(root, O_RDONLY | O_DIRECTORY));
  if (policy.shadow) {
    TRY(with_context(lock_passwords(rootfd.get(), "shadow", report), "replacing password hashes"));
    TRY(with_context(lock_passwords(rootfd.get(), "gshadow", report), "replacing password hashes"));
  }
  const auto root_st = TRY(sys::fstat(rootfd.get()));
  Stripper s(policy, clamp_mtime, report, root_st.st_dev);
  TRY(with_context(s.dir(rootfd.get(), "/"), [&] { return str("stripping ", root); }));
  if (clamp_mtime) {
    auto st = TRY(sys::fstat(rootfd.get()));
    if (st.st_mtim.tv_sec > *clamp_mtime || (st.st_mtim.tv_sec == *clamp_mtime && st.st_mtim.tv_nsec != 0)) {
      const struct timespec ts[2] = {{*clamp_mtime, 0}, {*clamp_mtime, 0}};
      if (::futimens(rootfd.get(), ts) != 0) return fail_errno(str("futimens(", quote(root), ")"), errno);
      ++report.mtimes_clamped;
    }
  }
  return report;
}

}  // namespace chrootctl::builder
