// The audit policy file: allow-lists, severities and ignore rules, with every mistake reported
// at its FILE:LINE:COL before anything is audited.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <set>

#include "chrootctl/audit/policy.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"

namespace chrootctl::audit {

namespace {

// An absolute path in normal form: what manifests and findings use, so an allow-list entry can
// only ever match one entry.
bool normal_absolute(std::string_view p) {
  if (p.empty() || p[0] != '/') return false;
  if (p == "/") return true;
  if (p.back() == '/') return false;
  for (const auto& part : split(p.substr(1), '/'))
    if (part.empty() || part == "." || part == "..") return false;
  return true;
}

class PolicyParser {
 public:
  explicit PolicyParser(const TomlDocument& doc) : m_doc(doc), m_diag(doc) {}

  Result<Policy> run() {
    Policy p;
    p.source = m_doc.name;
    TableReader top(m_diag, m_doc.table);
    bool builtin = true;
    if (const auto* allow = top.table("allow")) {
      TableReader r(m_diag, *allow, "allow");
      builtin = r.boolean("builtin_devices").value_or(true);
      each_table(r, "setuid", "allow.setuid", [&](TableReader& t, const toml::table&) { parse_setuid(t, p); });
      each_table(r, "capability", "allow.capability", [&](TableReader& t, const toml::table&) { parse_capability(t, p); });
      each_table(r, "device", "allow.device", [&](TableReader& t, const toml::table&) { parse_device(t, p); });
      each_table(r, "account", "allow.account", [&](TableReader& t, const toml::table&) { parse_account(t, p); });
      r.finish();
    }
    if (const auto* sev = top.table("severity")) parse_severities(*sev, p);
    each_table(top, "ignore", "ignore", [&](TableReader& t, const toml::table& tbl) { parse_ignore(t, tbl, p); });
    top.finish();
    if (builtin) {
      auto defaults = builtin_devices();
      for (auto& d : defaults) {
        const bool overridden = std::any_of(p.devices.begin(), p.devices.end(), [&](const DeviceAllow& x) { return x.path == d.path; });
        if (!overridden) p.devices.push_back(std::move(d));
      }
    }
    TRY(m_diag.result());
    return p;
  }

 private:
  // Reads every table of the array `key` of `parent`; `context` names the array in messages
  // ("allow.setuid" gives "allow.setuid[2].path").
  template <class F>
  void each_table(TableReader& parent, std::string_view key, const std::string& context, F&& fn) {
    const auto* arr = parent.table_array(key);
    if (!arr) return;
    std::size_t index = 0;
    for (const auto& node : *arr) {
      ++index;
      const auto* tbl = node.as_table();
      if (!tbl) continue;
      TableReader t(m_diag, *tbl, str(context, "[", index, "]"));
      fn(t, *tbl);
      t.finish();
    }
  }

  std::optional<std::string> path_key(TableReader& t, std::string_view key, const std::string& what) {
    auto v = t.string(key, true);
    if (!v) return std::nullopt;
    if (!normal_absolute(*v)) {
      m_diag.error(t.key_pos(key), str(what, " must be an absolute path without '.', '..', '//' or a trailing '/' (", quote(*v), ")"));
      return std::nullopt;
    }
    return v;
  }

  std::optional<std::string> sha_key(TableReader& t) {
    auto v = t.string("sha256", true);
    if (!v) return std::nullopt;
    if (!is_sha256_hex(*v)) {
      m_diag.error(t.key_pos("sha256"), str("sha256 must be 64 lowercase hex digits (", quote(*v), ")"));
      return std::nullopt;
    }
    return v;
  }

  // Each path may appear once per list: two entries for one path would make the list mean two
  // things at once.
  void unique(std::map<std::string, std::uint32_t>& seen, const std::string& path, TableReader& t, std::string_view list) {
    const auto pos = t.key_pos("path");
    auto [it, inserted] = seen.emplace(path, pos.line);
    if (!inserted) m_diag.error(pos, str("duplicate path ", quote(path), " in ", list, " (first on line ", it->second, ")"));
  }

  void parse_setuid(TableReader& t, Policy& p) {
    auto path = path_key(t, "path", "path");
    auto sha = sha_key(t);
    if (!path || !sha) return;
    unique(m_setuid_seen, *path, t, "allow.setuid");
    p.setuid.push_back({*path, *sha});
  }

  void parse_capability(TableReader& t, Policy& p) {
    auto path = path_key(t, "path", "path");
    auto sha = sha_key(t);
    auto caps = t.string_array("capabilities");
    if (caps) {
      for (auto& c : *caps) {
        if (!cap_number(c)) {
          m_diag.error(t.key_pos("capabilities"), str("unknown capability ", quote(c), " (names look like 'cap_net_raw')"));
          caps.reset();
          break;
        }
        std::transform(c.begin(), c.end(), c.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
      }
    }
    if (!path || !sha) return;
    unique(m_cap_seen, *path, t, "allow.capability");
    p.capabilities.push_back({*path, *sha, caps});
  }

  void parse_device(TableReader& t, Policy& p) {
    auto path = path_key(t, "path", "path");
    auto type = t.string("type", true);
    DeviceAllow d;
    bool ok = path.has_value() && type.has_value();
    if (type) {
      if (*type == "char") d.type = manifest::Type::chardev;
      else if (*type == "block") d.type = manifest::Type::blockdev;
      else if (*type == "fifo") d.type = manifest::Type::fifo;
      else if (*type == "socket") d.type = manifest::Type::socket;
      else {
        m_diag.error(t.key_pos("type"), str("type must be 'char', 'block', 'fifo' or 'socket', not ", quote(*type)));
        ok = false;
      }
    }
    const bool is_dev = ok && (d.type == manifest::Type::chardev || d.type == manifest::Type::blockdev);
    auto number = [&](std::string_view key) -> std::optional<std::uint32_t> {
      auto v = t.integer(key, is_dev);
      if (!v) return std::nullopt;
      if (!is_dev) {
        m_diag.error(t.key_pos(key), str(key, " is only for 'char' and 'block' devices"));
        return std::nullopt;
      }
      if (*v < 0 || *v > 0xFFFFFFFFll) {
        m_diag.error(t.key_pos(key), str(key, " must be between 0 and 4294967295"));
        return std::nullopt;
      }
      return static_cast<std::uint32_t>(*v);
    };
    auto major = number("major");
    auto minor = number("minor");
    if (!ok || (is_dev && (!major || !minor))) return;
    unique(m_dev_seen, *path, t, "allow.device");
    d.path = *path;
    d.major = major.value_or(0);
    d.minor = minor.value_or(0);
    p.devices.push_back(std::move(d));
  }

  void parse_account(TableReader& t, Policy& p) {
    auto name = t.string("name", true);
    auto uid = t.integer("uid");
    auto password = t.boolean("password");
    if (uid && (*uid < 0 || *uid > 0xFFFFFFFEll)) {
      m_diag.error(t.key_pos("uid"), "uid must be between 0 and 4294967294");
      return;
    }
    if (!name) return;
    if (name->empty() || name->find_first_of(":\n") != std::string::npos) {
      m_diag.error(t.key_pos("name"), str("name must be an account name (", quote(*name), ")"));
      return;
    }
    if (!uid && !password.value_or(false)) {
      m_diag.error(t.key_pos("name"), str("allow.account ", quote(*name), " allows nothing: give 'uid' or 'password = true'"));
      return;
    }
    AccountAllow a;
    a.name = *name;
    if (uid) a.uid = static_cast<std::uint32_t>(*uid);
    a.password = password.value_or(false);
    p.accounts.push_back(std::move(a));
  }

  void parse_severities(const toml::table& tbl, Policy& p) {
    for (const auto& [k, v] : tbl) {
      const std::string key(k.str());
      const auto& src = k.source();
      const SourcePos kpos =
          src.begin.line ? SourcePos{static_cast<std::uint32_t>(src.begin.line), static_cast<std::uint32_t>(src.begin.column)} : pos_of(v);
      if (!find_check(key)) {
        std::string msg = str("unknown check ", quote(key));
        if (auto s = did_you_mean(key, check_ids())) msg += str(" (did you mean ", quote(*s), "?)");
        m_diag.error(kpos, std::move(msg));
        continue;
      }
      const auto* s = v.as_string();
      std::optional<Severity> sev;
      if (s) sev = parse_severity(s->get());
      if (!sev) {
        m_diag.error(v, str("severity of ", quote(key), " must be 'info', 'low', 'medium' or 'high'"));
        continue;
      }
      p.severities[key] = *sev;
    }
  }

  void parse_ignore(TableReader& t, const toml::table&, Policy& p) {
    Ignore ig;
    auto check = t.string("check", true);
    auto path = t.string("path");
    auto account = t.string("account");
    auto reason = t.string("reason", true);
    bool ok = check && reason;
    if (check && !find_check(*check)) {
      std::string msg = str("unknown check ", quote(*check));
      if (auto s = did_you_mean(*check, check_ids())) msg += str(" (did you mean ", quote(*s), "?)");
      m_diag.error(t.key_pos("check"), std::move(msg));
      ok = false;
    }
    if (path && (path->empty() || (*path)[0] != '/')) {
      m_diag.error(t.key_pos("path"), str("path must be an absolute path pattern (", quote(*path), ")"));
      ok = false;
    }
    if (reason && trim(*reason).empty()) {
      m_diag.error(t.key_pos("reason"), "reason must say why the finding is ignored");
      ok = false;
    }
    if (!ok) return;
    ig.check = *check;
    ig.path = path;
    ig.account = account;
    ig.reason = std::string(trim(*reason));
    p.ignores.push_back(std::move(ig));
  }

  const TomlDocument& m_doc;
  Diagnostics m_diag;
  std::map<std::string, std::uint32_t> m_setuid_seen, m_cap_seen, m_dev_seen;
};

bool match_from(std::string_view p, std::string_view s) {
  while (!p.empty()) {
    if (p.substr(0, 2) == "**") {
      std::string_view rest = p.substr(2);
      for (std::size_t k = 0; k <= s.size(); ++k)
        if (match_from(rest, s.substr(k))) return true;
      // "/a/**/b" also matches "/a/b": the "**/" may stand for no directory at all.
      if (!rest.empty() && rest[0] == '/') return match_from(rest.substr(1), s);
      return false;
    }
    if (p[0] == '*') {
      for (std::size_t k = 0; k <= s.size(); ++k) {
        if (match_from(p.substr(1), s.substr(k))) return true;
        if (k < s.size() && s[k] == '/') break;
      }
      return false;
    }
    if (s.empty()) return false;
    if (p[0] == '?') {
      if (s[0] == '/') return false;
    } else if (p[0] != s[0]) {
      return false;
    }
    p.remove_prefix(1);
    s.remove_prefix(1);
  }
  return s.empty();
}

}  // namespace

bool path_matches(std::string_view pattern, std::string_view path) { return match_from(pattern, path); }

Severity Policy::severity_of(std::string_view check) const {
  if (auto it = severities.find(check); it != severities.end()) return it->second;
  if (const auto* c = find_check(check)) return c->severity;
  return Severity::info;
}

const Ignore* Policy::ignore_for(const Finding& f) const {
  for (const auto& ig : ignores) {
    if (ig.check != f.check) continue;
    if (ig.path && !path_matches(*ig.path, f.path)) continue;
    if (ig.account && *ig.account != f.account) continue;
    return &ig;
  }
  return nullptr;
}

std::vector<DeviceAllow> builtin_devices() {
  using manifest::Type;
  return {
      {"/dev/console", Type::chardev, 5, 1}, {"/dev/full", Type::chardev, 1, 7},   {"/dev/null", Type::chardev, 1, 3},
      {"/dev/ptmx", Type::chardev, 5, 2},    {"/dev/random", Type::chardev, 1, 8}, {"/dev/tty", Type::chardev, 5, 0},
      {"/dev/urandom", Type::chardev, 1, 9}, {"/dev/zero", Type::chardev, 1, 5},
  };
}

Policy default_policy() {
  Policy p;
  p.devices = builtin_devices();
  return p;
}

Result<Policy> parse_policy(const TomlDocument& doc) { return PolicyParser(doc).run(); }

Result<Policy> load_policy(const std::string& path) {
  // Whoever can write the policy can hide findings from the audit: refuse a policy file that
  // someone other than its reader (or root) could have changed.
  auto fd = TRY(with_context(sys::open_path(path, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK), str("reading audit policy ", path)));
  auto st = TRY(sys::fstat(fd.get()));
  if (!S_ISREG(st.st_mode)) return fail(Errc::invalid_argument, str("audit policy ", path, " is not a regular file"));
  if (st.st_uid != 0 && st.st_uid != ::geteuid())
    return fail(Errc::permission, str("audit policy ", path, " is owned by uid ", st.st_uid,
                                      ", not by root or you: whoever owns it can hide findings (chown root ", path, ")"));
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    return fail(Errc::permission,
                str("audit policy ", path, " is writable by group or others: whoever can write it can hide findings (chmod go-w ", path, ")"));
  auto text = TRY(with_context(sys::read_fd(fd.get(), 16u << 20), str("reading audit policy ", path)));
  auto doc = TRY(parse_toml(std::move(text), path));
  return parse_policy(doc);
}

Result<Policy> load_site_policy(const std::optional<std::string>& explicit_path) {
  if (explicit_path) return load_policy(*explicit_path);
  if (const char* env = std::getenv("CHROOTCTL_AUDIT_POLICY"); env && *env) return load_policy(env);
  const std::string site(k_site_policy);
  if (auto st = sys::lstat_path(site); !st) {
    if (st.error().sys_errno() == ENOENT) return default_policy();
    return fail(std::move(st.error()).add_context("reading the site audit policy"));
  }
  return load_policy(site);
}

}  // namespace chrootctl::audit
