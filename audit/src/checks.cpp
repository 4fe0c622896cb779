// Checks 1-11 over the entries of a walked tree. One pass over the entries; contents are read
// only for the few files a check needs, through a FileSource that re-opens each file inside the
// root and makes sure it is still the file the walk recorded.
#include "chrootctl/audit/checks.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"

namespace chrootctl::audit {

using manifest::Entry;
using manifest::Type;

// ---- reading contents ----

Result<std::string> FileSource::head(const Entry& e, std::size_t limit) {
  std::string out;
  TRY(scan(e, [&](std::string_view chunk) {
    out.append(chunk.substr(0, limit - out.size()));
    return out.size() < limit;
  }));
  return out;
}

Result<std::string> FileSource::whole(const Entry& e, std::size_t limit) {
  std::string out;
  bool too_big = false;
  TRY(scan(e, [&](std::string_view chunk) {
    if (out.size() + chunk.size() > limit) {
      too_big = true;
      return false;
    }
    out.append(chunk);
    return true;
  }));
  if (too_big) return fail(Errc::invalid_argument, str(quote(escape_bytes(e.path)), " is larger than ", human_size(limit), ": not read"));
  return out;
}

Result<TreeFiles> TreeFiles::open(const std::string& root) {
  auto fd = TRY(sys::open_path(root, O_RDONLY | O_DIRECTORY | O_NOCTTY));
  return TreeFiles(std::move(fd));
}

Status TreeFiles::scan(const Entry& e, const std::function<bool(std::string_view)>& sink) {
  const std::string label = quote(escape_bytes(e.path));
  auto changed = [&] { return Error(Errc::mismatch, str(label, " changed while it was being audited (is something modifying the tree?)")); };
  if (e.path.size() < 2 || e.path[0] != '/') return fail(Errc::internal, str("not a file path: ", label));
  // The walk saw no symlink on the way to this entry, so RESOLVE_NO_SYMLINKS refuses only a
  // tree that changed since; RESOLVE_IN_ROOT keeps even that inside the root.
  auto fd = sys::open_in_root(m_root.get(), e.path.substr(1), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, true);
  if (!fd) {
    const int err = fd.error().sys_errno();
    if (err == ELOOP || err == ENOENT || err == ENOTDIR || err == EXDEV) return fail(changed());
    return fail(std::move(fd.error()).add_context(str("reading ", label)));
  }
  auto st = TRY(sys::fstat(fd->get()));
  if (!S_ISREG(st.st_mode) || (e.ino != 0 && (st.st_ino != e.ino || st.st_dev != e.dev))) return fail(changed());
  char buf[65536];
  while (true) {
    const ssize_t n = sys::retry_eintr([&] { return ::read(fd->get(), buf, sizeof buf); });
    if (n < 0) return fail_errno(str("read(", label, ")"), errno);
    if (n == 0) return {};
    if (!sink(std::string_view(buf, static_cast<std::size_t>(n)))) return {};
  }
}

Status MemoryFiles::scan(const Entry& e, const std::function<bool(std::string_view)>& sink) {
  auto it = m_files.find(e.path);
  if (it == m_files.end()) return fail(Errc::not_found, str(quote(escape_bytes(e.path)), ": no such file"));
  // Small chunks, so that tests exercise matches across chunk boundaries.
  std::string_view rest = it->second;
  while (!rest.empty()) {
    const auto n = std::min<std::size_t>(rest.size(), 7);
    if (!sink(rest.substr(0, n))) return {};
    rest.remove_prefix(n);
  }
  return {};
}

// ---- helpers ----

namespace {

std::string_view basename_of(std::string_view p) { return p.substr(p.rfind('/') + 1); }

std::string_view parent_of(std::string_view p) {
  const auto s = p.rfind('/');
  return s == 0 ? std::string_view("/") : p.substr(0, s);
}

/// `p` is `dir` or below it.
bool at_or_under(std::string_view p, std::string_view dir) {
  if (dir == "/") return true;
  return p.substr(0, dir.size()) == dir && (p.size() == dir.size() || p[dir.size()] == '/');
}
bool under(std::string_view p, std::string_view dir) { return p.size() > dir.size() && at_or_under(p, dir); }

bool ends_with(std::string_view s, std::string_view suffix) { return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix; }

const sys::Xattr* find_xattr(const Entry& e, std::string_view name) {
  for (const auto& x : e.xattrs)
    if (x.name == name) return &x;
  return nullptr;
}

std::string type_word(Type t) {
  switch (t) {
    case Type::chardev:
      return "char device";
    case Type::blockdev:
      return "block device";
    case Type::fifo:
      return "FIFO";
    case Type::socket:
      return "socket";
    case Type::file:
      return "file";
    case Type::dir:
      return "directory";
    case Type::symlink:
      return "symlink";
  }
  return "entry";
}

// Where a setuid or setgid program has no business: directories users or packages outside the
// distribution write to.
constexpr std::array<std::string_view, 5> k_unexpected_setuid_dirs = {"/home", "/tmp", "/var", "/opt", "/usr/local"};

constexpr std::array<std::string_view, 20> k_exec_roots = {
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/usr/bin",
    "/usr/sbin",
    "/usr/lib",
    "/usr/lib32",
    "/usr/lib64",
    "/usr/libx32",
    "/usr/libexec",
    "/usr/games",
    "/usr/local/bin",
    "/usr/local/sbin",
    "/usr/local/lib",
    "/usr/local/lib64",
    "/usr/local/libexec",
    "/usr/local/games",
};

constexpr std::array<std::string_view, 10> k_history_files = {
    ".bash_history",   ".zsh_history",   ".sh_history",   ".ash_history",    ".history",
    ".python_history", ".mysql_history", ".psql_history", ".sqlite_history", ".node_repl_history",
};

// Cloud credentials, by the end of their path (any home directory).
constexpr std::array<std::string_view, 12> k_cloud_suffixes = {
    "/.aws/credentials",
    "/.config/gcloud/credentials.db",
    "/.config/gcloud/access_tokens.db",
    "/.config/gcloud/application_default_credentials.json",
    "/.azure/accessTokens.json",
    "/.azure/msal_token_cache.json",
    "/.azure/msal_token_cache.bin",
    "/.kube/config",
    "/.s3cfg",
    "/.boto",
    "/.config/openstack/clouds.yaml",
    "/.oci/config",
};

// Where every regular file is read for a private key (anywhere else: *.key and *.pem only).
constexpr std::array<std::string_view, 3> k_key_dirs = {"/etc", "/root", "/home"};

constexpr std::size_t k_account_file_limit = 64u << 20;
constexpr std::size_t k_config_file_limit = 16u << 20;

/// A private-key block ("-----BEGIN ... PRIVATE KEY-----", PEM, OpenSSH or PGP), looked for in
/// a stream: the window keeps enough of the previous chunk for a marker split across chunks.
class KeyScanner {
 public:
  bool feed(std::string_view chunk) {
    m_window.append(chunk);
    std::size_t from = 0;
    while (true) {
      const auto hit = m_window.find(k_marker, from);
      if (hit == std::string::npos) break;
      // "-----BEGIN " must precede the marker on the same line, at most 48 bytes before.
      const std::size_t lo = hit > 48 ? hit - 48 : 0;
      const auto begin = m_window.rfind("-----BEGIN ", hit);
      if (begin != std::string::npos && begin >= lo && m_window.find('\n', begin) > hit) {
        m_label = m_window.substr(begin + 11, hit + k_marker.size() - begin - 11);
        return false;
      }
      from = hit + 1;
    }
    if (m_window.size() > k_keep) m_window.erase(0, m_window.size() - k_keep);
    return true;
  }
  [[nodiscard]] const std::string& label() const { return m_label; }  ///< "RSA PRIVATE KEY"; empty if none

 private:
  static constexpr std::string_view k_marker = "PRIVATE KEY";
  static constexpr std::size_t k_keep = 64;
  std::string m_window;
  std::string m_label;
};

class Checker {
 public:
  Checker(const manifest::Manifest& tree, FileSource& files, const Policy& policy) : m_tree(tree), m_files(files), m_policy(policy) {}

  Result<Analysis> run() {
    TRY(load_accounts());
    const auto& entries = m_tree.entries;
    m_cover.assign(3, std::vector<int>(entries.size(), -1));
    for (std::size_t i = 0; i < entries.size(); ++i) TRY(check_entry(i));
    finish_ownership();
    return std::move(m_out);
  }

 private:
  Finding& add(std::string_view check, const std::string& path, std::string detail, std::string account = {}) {
    Finding& f = m_out.findings.emplace_back();
    f.check = std::string(check);
    f.path = path;
    f.account = std::move(account);
    f.detail = std::move(detail);
    return f;
  }

  const Entry* regular(std::string_view path) {
    const Entry* e = m_tree.find(path);
    return e && e->type == Type::file ? e : nullptr;
  }

  std::string user_label(std::uint32_t uid) const {
    auto it = m_user_names.find(uid);
    return it == m_user_names.end() ? str("uid ", uid) : str("uid ", uid, " (", it->second, ")");
  }
  std::string group_label(std::uint32_t gid) const {
    auto it = m_group_names.find(gid);
    return it == m_group_names.end() ? str("gid ", gid) : str("gid ", gid, " (", it->second, ")");
  }

  // ---- check 6: accounts, and the names check 5 resolves owners with ----

  // Reads an account file of the image. A missing file, or one that is not a regular file (a
  // symlink is never followed), is noted and treated as empty.
  Result<std::optional<std::string>> account_file(std::string_view path) {
    const Entry* e = m_tree.find(path);
    if (!e) {
      m_out.notes.push_back(str(path, " does not exist"));
      return std::optional<std::string>();
    }
    if (e->type != Type::file) {
      m_out.notes.push_back(str(path, " is a ", type_word(e->type), e->type == Type::symlink ? str(" to ", quote(escape_bytes(e->target))) : "",
                                ", not a regular file: not read"));
      return std::optional<std::string>();
    }
    return std::optional<std::string>(TRY(m_files.whole(*e, k_account_file_limit)));
  }

  Status load_accounts() {
    std::vector<std::string> problems;
    std::vector<PasswdEntry> passwd;
    std::vector<GroupEntry> groups;
    std::vector<ShadowEntry> shadow, gshadow;
    if (auto t = TRY(account_file("/etc/passwd"))) passwd = parse_passwd(*t, "/etc/passwd", problems);
    if (auto t = TRY(account_file("/etc/group"))) groups = parse_group(*t, "/etc/group", problems);
    if (auto t = TRY(account_file("/etc/shadow"))) shadow = parse_shadow(*t, "/etc/shadow", problems);
    if (auto t = TRY(account_file("/etc/gshadow"))) gshadow = parse_shadow(*t, "/etc/gshadow", problems);
    for (auto& p : problems) m_out.notes.push_back(std::move(p));

    for (const auto& p : passwd) m_user_names.emplace(p.uid, p.name);
    for (const auto& g : groups) m_group_names.emplace(g.gid, g.name);

    auto allowed_uid = [&](const std::string& name, std::uint32_t uid) {
      return std::any_of(m_policy.accounts.begin(), m_policy.accounts.end(), [&](const AccountAllow& a) { return a.name == name && a.uid == uid; });
    };
    auto allowed_password = [&](const std::string& name) {
      return std::any_of(m_policy.accounts.begin(), m_policy.accounts.end(), [&](const AccountAllow& a) { return a.name == name && a.password; });
    };

    std::map<std::string, unsigned> names;
    std::map<std::uint32_t, const PasswdEntry*> uids;
    for (const auto& p : passwd) {
      if (auto [it, fresh] = names.emplace(p.name, p.line); !fresh)
        add("account.duplicate-name", "/etc/passwd", str("account ", quote(p.name), " on line ", p.line, " is also on line ", it->second), p.name);
      if (p.uid == 0 && p.name != "root") {
        if (!allowed_uid(p.name, 0))
          add("account.extra-uid0", "/etc/passwd", str("account ", quote(p.name), " has uid 0 (line ", p.line, ")"), p.name);
      } else if (auto [it, fresh] = uids.emplace(p.uid, &p); !fresh && p.uid != 0) {
        if (!allowed_uid(p.name, p.uid))
          add("account.duplicate-uid", "/etc/passwd",
              str("account ", quote(p.name), " (line ", p.line, ") has uid ", p.uid, ", like ", quote(it->second->name), " (line ", it->second->line,
                  ")"),
              p.name);
      }
      if (p.password.empty())
        add("account.empty-password", "/etc/passwd",
            str("account ", quote(p.name), " has an empty password field (line ", p.line, "): no password is needed"), p.name);
      else if (usable_password_hash(p.password) && !allowed_password(p.name))
        add("account.password-hash", "/etc/passwd", str("account ", quote(p.name), " has a password hash in /etc/passwd (line ", p.line, ")"),
            p.name);
    }
    std::map<std::string, unsigned> group_names;
    std::map<std::uint32_t, const GroupEntry*> gids;
    for (const auto& g : groups) {
      if (auto [it, fresh] = group_names.emplace(g.name, g.line); !fresh)
        add("account.duplicate-name", "/etc/group", str("group ", quote(g.name), " on line ", g.line, " is also on line ", it->second), g.name);
      else if (auto [jt, gfresh] = gids.emplace(g.gid, &g); !gfresh)
        add("account.duplicate-gid", "/etc/group",
            str("group ", quote(g.name), " (line ", g.line, ") has gid ", g.gid, ", like ", quote(jt->second->name), " (line ", jt->second->line,
                ")"),
            g.name);
    }
    for (const auto* file : {"/etc/shadow", "/etc/gshadow"}) {
      const bool is_shadow = std::string_view(file) == "/etc/shadow";
      for (const auto& s : is_shadow ? shadow : gshadow) {
        const std::string what = is_shadow ? "account" : "group";
        if (s.hash.empty())
          add("account.empty-password", file, str(what, " ", quote(s.name), " has an empty password (line ", s.line, "): no password is needed"),
              s.name);
        else if (usable_password_hash(s.hash) && !(is_shadow && allowed_password(s.name)))
          add("account.password-hash", file, str(what, " ", quote(s.name), " has a usable password hash (line ", s.line, ")"), s.name);
      }
      // Anyone who can read a shadow file can crack its hashes offline; anyone who can write it
      // can set a password. Reading by a group (shadow, on Debian) is the norm.
      if (const Entry* e = m_tree.find(file); e && e->type == Type::file) {
        std::vector<std::string> why;
        if (e->uid != 0) why.push_back(str("owned by ", user_label(e->uid)));
        if (e->mode & 0007) why.push_back("others have access");
        if (e->mode & 0020) why.push_back("writable by its group");
        if (!why.empty()) add("account.shadow-mode", file, str("mode ", mode_octal(e->mode), ", ", join(why, ", ")));
      }
    }
    m_have_passwd = m_tree.find("/etc/passwd") != nullptr;
    m_known_uids.insert(0);
    m_known_gids.insert(0);
    for (const auto& p : passwd) m_known_uids.insert(p.uid);
    for (const auto& g : groups) m_known_gids.insert(g.gid);
    return {};
  }

  // ---- every entry ----

  Status check_entry(std::size_t index) {
    const Entry& e = m_tree.entries[index];
    check_ownership(index);
    if (const auto* cap = find_xattr(e, "security.capability")) check_capability(e, *cap);
    switch (e.type) {
      case Type::file:
        TRY(check_file(e));
        break;
      case Type::dir:
        check_dir(e);
        break;
      case Type::symlink:
        check_symlink(e);
        break;
      case Type::chardev:
      case Type::blockdev:
      case Type::fifo:
      case Type::socket:
        check_special(e);
        break;
    }
    if (e.path == "/usr/sbin/policy-rc.d")
      add("leftover.policy-rc-d", e.path, str(type_word(e.type), " left by the build: it stops packages from starting services"));
    if (e.path == "/etc/ld.so.preload" && e.type == Type::symlink)
      add("hook.ld-so-preload", e.path, str("symlink to ", quote(escape_bytes(e.target)), ", which the dynamic loader follows"));
    return {};
  }

  Status check_file(const Entry& e) {
    const std::string_view name = basename_of(e.path);
    if (e.mode & 06000) TRY(check_setuid(e));
    if (e.mode & 0002) add("world-writable.file", e.path, str("mode ", mode_octal(e.mode)));
    TRY(check_secrets(e, name));
    TRY(check_leftovers(e, name));
    if (e.path == "/etc/ld.so.preload") {
      const auto text = TRY(m_files.whole(e, k_config_file_limit));
      std::vector<std::string> libs;
      std::string cur;
      for (char c : text + "\n") {
        if (c == ' ' || c == '\t' || c == '\n' || c == ':' || c == '\r') {
          if (!cur.empty()) libs.push_back(std::exchange(cur, {}));
        } else {
          cur.push_back(c);
        }
      }
      if (!libs.empty()) add("hook.ld-so-preload", e.path, str("preloads into every program: ", join(libs, ", ")));
    }
    if (e.path == "/etc/sudoers" || parent_of(e.path) == "/etc/sudoers.d") TRY(check_sudoers(e));
    return {};
  }

  // ---- check 1 ----

  Status check_setuid(const Entry& e) {
    const bool su = e.mode & 04000, sg = e.mode & 02000;
    std::string what;
    if (su) what = str("setuid ", user_label(e.uid));
    if (sg) what += str(what.empty() ? "" : ", ", "setgid ", group_label(e.gid));

    auto allow = std::find_if(m_policy.setuid.begin(), m_policy.setuid.end(), [&](const SetuidAllow& a) { return a.path == e.path; });
    if (allow == m_policy.setuid.end())
      add(su ? "setuid.unlisted" : "setgid.unlisted", e.path, str(what, ", mode ", mode_octal(e.mode), ", sha256 ", e.sha256));
    else if (allow->sha256 != e.sha256)
      add("setuid.allowlist-mismatch", e.path, str(what, ": sha256 ", e.sha256, " but the allow-list has ", allow->sha256));

    for (auto dir : k_unexpected_setuid_dirs)
      if (under(e.path, dir)) add("setuid.unexpected-location", e.path, str(what, " under ", dir));
    if (su && e.uid != 0) add("setuid.not-root-owned", e.path, str("setuid to ", user_label(e.uid)));
    if (e.size >= 2) {
      const auto first = TRY(m_files.head(e, 128));
      if (first.substr(0, 2) == "#!") {
        std::string line = first.substr(0, first.find('\n'));
        add("setuid.script", e.path, str(what, ", interpreter ", quote(line)));
      }
    }
    if (e.nlink > 1)
      add("setuid.hardlinked", e.path,
          str(what, ", ", e.nlink, " hard links",
              e.link.empty() ? " (the others outside the tree)" : str(" (group ", quote(escape_bytes(e.link)), ")")));
    return {};
  }

  // ---- check 2 ----

  void check_capability(const Entry& e, const sys::Xattr& x) {
    auto caps = decode_caps(x.value);
    if (!caps) {
      add("capability.malformed", e.path, str(caps.error().message(), " (base64 ", base64_encode(x.value), ")"));
      return;
    }
    auto allow = std::find_if(m_policy.capabilities.begin(), m_policy.capabilities.end(), [&](const CapabilityAllow& a) { return a.path == e.path; });
    Finding* f = nullptr;
    if (allow == m_policy.capabilities.end()) {
      f = &add("capability.file", e.path, caps_text(*caps));
    } else {
      std::vector<std::string> why;
      if (allow->sha256 != e.sha256) why.push_back(str("sha256 ", e.sha256, " but the allow-list has ", allow->sha256));
      if (allow->capabilities) {
        auto want = *allow->capabilities;
        std::sort(want.begin(), want.end());
        auto have = cap_names(caps->permitted);
        std::sort(have.begin(), have.end());
        if (want != have) why.push_back(str("capabilities ", caps_text(*caps), " but the allow-list has ", want.empty() ? "none" : join(want, ",")));
      }
      if (!why.empty()) f = &add("capability.allowlist-mismatch", e.path, join(why, "; "));
    }
    if (f) f->capabilities = *caps;
  }

  // ---- check 3 (directories) ----

  void check_dir(const Entry& e) {
    if ((e.mode & 0002) && !(e.mode & 01000))
      add("world-writable.dir-no-sticky", e.path, str("mode ", mode_octal(e.mode), ": anyone can delete or replace what others put here"));
    if (is_exec_dir(e.path)) {
      if (e.mode & 0002) add("world-writable.path-dir", e.path, str("mode ", mode_octal(e.mode)));
      else if (e.mode & 0020) add("group-writable.path-dir", e.path, str("mode ", mode_octal(e.mode), ", writable by group ", group_label(e.gid)));
    }
  }

  // ---- check 4 ----

  void check_special(const Entry& e) {
    const bool device = e.type == Type::chardev || e.type == Type::blockdev;
    const DeviceAllow* allow = nullptr;
    for (const auto& d : m_policy.devices)
      if (d.path == e.path) allow = &d;
    if (allow && allow->type == e.type && (!device || (allow->major == e.rdev_major && allow->minor == e.rdev_minor))) return;
    std::string detail = type_word(e.type);
    if (device) detail += str(" ", e.rdev_major, ",", e.rdev_minor);
    if (allow) {
      detail += str(" but the allow-list has ", type_word(allow->type));
      if (allow->type == Type::chardev || allow->type == Type::blockdev) detail += str(" ", allow->major, ",", allow->minor);
    }
    add(device ? "device.node" : e.type == Type::fifo ? "device.fifo" : "device.socket", e.path, std::move(detail));
  }

  // ---- check 5 ----

  // Reports the top of each subtree owned by the same offending uid (or gid) once, with the number
  // of entries below it, so a home directory full of a user's files is one finding.
  void owner_finding(std::size_t index, int kind, std::string_view check, std::uint32_t id, bool by_gid, std::string detail) {
    const Entry& e = m_tree.entries[index];
    if (e.path != "/") {
      if (const Entry* parent = m_tree.find(parent_of(e.path))) {
        const auto pi = static_cast<std::size_t>(parent - m_tree.entries.data());
        const int cover = m_cover[kind][pi];
        if (cover >= 0 && (by_gid ? parent->gid : parent->uid) == id) {
          m_cover[kind][index] = cover;
          ++m_below[cover];
          return;
        }
      }
    }
    m_cover[kind][index] = static_cast<int>(m_out.findings.size());
    add(check, e.path, std::move(detail));
  }

  void check_ownership(std::size_t index) {
    const Entry& e = m_tree.entries[index];
    if (e.uid != 0) owner_finding(index, 0, "owner.non-root", e.uid, false, str("owned by ", user_label(e.uid)));
    if (!m_known_uids.count(e.uid))
      owner_finding(index, 1, "owner.unknown-uid", e.uid, false,
                    str("uid ", e.uid, m_have_passwd ? " has no account in /etc/passwd" : " (the image has no /etc/passwd)"));
    if (!m_known_gids.count(e.gid)) owner_finding(index, 2, "owner.unknown-gid", e.gid, true, str("gid ", e.gid, " has no group in /etc/group"));
  }

  void finish_ownership() {
    for (const auto& [finding, count] : m_below)
      m_out.findings[static_cast<std::size_t>(finding)].detail += str(", and ", count, count == 1 ? " entry" : " entries", " below it");
  }

  // ---- check 7 ----

  Status check_secrets(const Entry& e, std::string_view name) {
    if (e.size == 0) return {};
    bool host_key = false;
    if (under(e.path, "/etc/ssh") && starts_with(name, "ssh_host_") && ends_with(name, "key")) {
      add("secret.ssh-host-key", e.path, str("SSH host private key, ", e.size, " bytes: every job root from this image shares it"));
      host_key = true;
    }
    if (name == "authorized_keys" || name == "authorized_keys2") add("secret.authorized-keys", e.path, str(e.size, " bytes"));
    if (name == ".netrc") add("secret.netrc", e.path, str(e.size, " bytes"));
    if (name == ".git-credentials") add("secret.git-credentials", e.path, str(e.size, " bytes"));
    if (std::find(k_history_files.begin(), k_history_files.end(), name) != k_history_files.end())
      add("secret.shell-history", e.path, str(e.size, " bytes of command history"));
    for (auto suffix : k_cloud_suffixes)
      if (ends_with(e.path, suffix)) add("secret.cloud-credentials", e.path, str(e.size, " bytes"));
    TRY(check_container_credentials(e, name));

    const bool key_name = ends_with(name, ".key") || ends_with(name, ".pem");
    const bool key_dir = std::any_of(k_key_dirs.begin(), k_key_dirs.end(), [&](std::string_view d) { return under(e.path, d); });
    if (!host_key && (key_name || key_dir)) {
      KeyScanner scanner;
      TRY(m_files.scan(e, [&](std::string_view chunk) { return scanner.feed(chunk); }));
      if (!scanner.label().empty()) add("secret.private-key", e.path, str("contains a ", quote(scanner.label()), " block"));
    }
    return {};
  }

  Status check_container_credentials(const Entry& e, std::string_view name) {
    const std::string_view dir = basename_of(parent_of(e.path));
    if (name == ".dockercfg") {
      add("secret.docker-credentials", e.path, str(e.size, " bytes (legacy docker registry logins)"));
      return {};
    }
    if (!((name == "config.json" && dir == ".docker") || (name == "auth.json" && dir == "containers"))) return {};
    const auto text = TRY(m_files.whole(e, k_config_file_limit));
    std::vector<std::string> keys;
    for (const auto* key : {"\"auth\"", "\"identitytoken\"", "\"registrytoken\""})
      if (text.find(key) != std::string::npos) keys.emplace_back(key);
    if (!keys.empty()) add("secret.docker-credentials", e.path, str("registry credentials (", join(keys, ", "), ")"));
    return {};
  }

  // ---- check 8 ----

  Status check_leftovers(const Entry& e, std::string_view name) {
    if (e.path == "/etc/machine-id" || e.path == "/var/lib/dbus/machine-id") {
      const auto text = TRY(m_files.head(e, 256));
      const auto id = trim(text);
      if (!id.empty() && id != "uninitialized")
        add("leftover.machine-id", e.path, str("machine id ", quote(printable(id)), ": every job root from this image shares it"));
    }
    if (e.path == "/etc/resolv.conf" && e.size > 0)
      add("leftover.resolv-conf", e.path, str(e.size, " bytes from the build host's resolver configuration"));
    if (e.path == "/etc/hostname" && e.size > 0) {
      const auto text = TRY(m_files.head(e, 256));
      add("leftover.hostname", e.path, str("hostname ", quote(printable(trim(text)))));
    }
    if (starts_with(name, "qemu-") && ends_with(name, "-static")) add("leftover.qemu-static", e.path, str(e.size, " bytes"));
    return {};
  }

  // ---- check 9 ----

  Status check_sudoers(const Entry& e) {
    const auto text = TRY(m_files.whole(e, k_config_file_limit));
    std::vector<std::string> hits;
    unsigned number = 0, first = 0;
    std::string logical;
    std::size_t pos = 0;
    while (pos < text.size()) {
      const auto nl = text.find('\n', pos);
      std::string_view line = std::string_view(text).substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
      pos = nl == std::string::npos ? text.size() : nl + 1;
      ++number;
      if (logical.empty()) first = number;
      // A backslash at the end continues the line.
      if (!line.empty() && line.back() == '\\') {
        logical.append(line.substr(0, line.size() - 1));
        logical.push_back(' ');
        continue;
      }
      logical.append(line);
      const std::string stmt = strip_sudoers_comment(logical);
      if (stmt.find("NOPASSWD") != std::string::npos) hits.push_back(str("line ", first, ": ", std::string(trim(stmt))));
      logical.clear();
    }
    if (!hits.empty()) add("hook.sudoers-nopasswd", e.path, join(hits, "; "));
    return {};
  }

  // '#' starts a comment, except in "#include"/"#includedir" and in "#UID" user references.
  static std::string strip_sudoers_comment(std::string_view line) {
    for (std::size_t i = 0; i < line.size(); ++i) {
      if (line[i] != '#') continue;
      const auto rest = line.substr(i + 1);
      if (!rest.empty() && rest[0] >= '0' && rest[0] <= '9') continue;
      if (trim(line.substr(0, i)).empty() && (starts_with(rest, "include") || starts_with(rest, "includedir"))) return std::string(line);
      return std::string(line.substr(0, i));
    }
    return std::string(line);
  }

  // ---- check 10 ----

  void check_symlink(const Entry& e) {
    if (!e.target.empty() && e.target[0] == '/') {
      add("symlink.absolute", e.path, str("-> ", e.target));
      return;
    }
    // Resolve lexically from the link's directory: more ".." than levels leaves the root. Inside
    // a chroot the kernel stops at "/", but tools on the host that follow the link do not.
    long depth = 0;
    for (const auto& part : split(parent_of(e.path), '/'))
      if (!part.empty()) ++depth;
    for (const auto& part : split(e.target, '/')) {
      if (part.empty() || part == ".") continue;
      if (part == "..") {
        if (--depth < 0) {
          add("symlink.escapes-root", e.path, str("-> ", e.target));
          return;
        }
      } else {
        ++depth;
      }
    }
  }

  const manifest::Manifest& m_tree;
  FileSource& m_files;
  const Policy& m_policy;
  Analysis m_out;
  std::unordered_map<std::uint32_t, std::string> m_user_names, m_group_names;
  std::unordered_set<std::uint32_t> m_known_uids, m_known_gids;
  bool m_have_passwd = false;
  std::vector<std::vector<int>> m_cover;  // per ownership check: the finding covering each entry
  std::map<int, std::uint64_t> m_below;   // finding -> entries below it it covers
};

}  // namespace

bool is_exec_dir(std::string_view path) {
  for (auto root : k_exec_roots)
    if (at_or_under(path, root) || at_or_under(root, path)) return true;
  return false;
}

Result<Analysis> analyse(const manifest::Manifest& tree, FileSource& files, const Policy& policy) { return Checker(tree, files, policy).run(); }

std::vector<Finding> drift_findings(const manifest::DiffResult& d) {
  using K = manifest::Difference::Kind;
  std::vector<Finding> out;
  for (const auto& x : d.differences) {
    Finding f;
    f.path = x.path;
    switch (x.kind) {
      case K::added:
        f.check = "drift.added";
        f.detail = "in the tree, not in the manifest";
        break;
      case K::removed:
        f.check = "drift.removed";
        f.detail = "in the manifest, missing from the tree";
        break;
      case K::changed:
        f.check = "drift.changed";
        break;
      case K::mtime_only:
        f.check = "drift.mtime-only";
        break;
    }
    std::vector<std::string> parts;
    for (const auto& c : x.fields) parts.push_back(str(c.field, " ", c.old_value, " -> ", c.new_value));
    if (!parts.empty()) f.detail = join(parts, "; ");
    out.push_back(std::move(f));
  }
  return out;
}

void finish(std::vector<Finding>& findings, std::vector<Finding>& ignored, const Policy& policy) {
  std::vector<Finding> kept;
  kept.reserve(findings.size());
  for (auto& f : findings) {
    f.severity = policy.severity_of(f.check);
    if (const Ignore* ig = policy.ignore_for(f)) {
      f.ignored_because = ig->reason;
      ignored.push_back(std::move(f));
    } else {
      kept.push_back(std::move(f));
    }
  }
  findings = std::move(kept);
  std::unordered_map<std::string_view, std::size_t> order;
  const auto all = checks();
  for (std::size_t i = 0; i < all.size(); ++i) order[all[i].id] = i;
  auto less = [&](const Finding& a, const Finding& b) {
    if (a.severity != b.severity) return a.severity > b.severity;
    const auto oa = order[a.check], ob = order[b.check];
    if (oa != ob) return oa < ob;
    if (a.path != b.path) return a.path < b.path;
    return a.account < b.account;
  };
  std::sort(findings.begin(), findings.end(), less);
  std::sort(ignored.begin(), ignored.end(), less);
}

}  // namespace chrootctl::audit
