// The image's own account files, parsed here: accounts are never resolved through NSS or the
// host's files, so an audit names the image's users, not the host's.
#include <algorithm>

#include "chrootctl/audit/checks.hpp"
#include "chrootctl/common/strings.hpp"

namespace chrootctl::audit {

namespace {

// Lines of an account file, with 1-based numbers; skips blank, comment (#) and NIS compat
// (+/-) lines, which nss_files also skips or hands to NIS.
template <class F>
void each_line(std::string_view text, F&& fn) {
  Lines lines(text);
  std::string_view line;
  unsigned number = 0;
  while (lines.next(line, number)) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (trim(line).empty() || line[0] == '#' || line[0] == '+' || line[0] == '-') continue;
    fn(line, number);
  }
}

std::vector<std::string_view> fields_of(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (true) {
    const auto c = line.find(':', start);
    out.push_back(line.substr(start, c == std::string_view::npos ? std::string_view::npos : c - start));
    if (c == std::string_view::npos) break;
    start = c + 1;
  }
  return out;
}

std::optional<std::uint32_t> id_of(std::string_view s) {
  auto v = parse_u64(s);
  if (!v || *v > 0xFFFFFFFFull) return std::nullopt;
  return static_cast<std::uint32_t>(*v);
}

}  // namespace

std::vector<PasswdEntry> parse_passwd(std::string_view text, const std::string& label, std::vector<std::string>& problems) {
  std::vector<PasswdEntry> out;
  each_line(text, [&](std::string_view line, unsigned n) {
    const auto f = fields_of(line);
    if (f.size() != 7) {
      problems.push_back(str(label, ":", n, ": ", f.size(), " fields instead of 7: line ignored"));
      return;
    }
    auto uid = id_of(f[2]);
    auto gid = id_of(f[3]);
    if (f[0].empty() || !uid || !gid) {
      problems.push_back(str(label, ":", n, ": no name or a bad uid or gid: line ignored"));
      return;
    }
    out.push_back({std::string(f[0]), std::string(f[1]), *uid, *gid, n});
  });
  return out;
}

std::vector<GroupEntry> parse_group(std::string_view text, const std::string& label, std::vector<std::string>& problems) {
  std::vector<GroupEntry> out;
  each_line(text, [&](std::string_view line, unsigned n) {
    const auto f = fields_of(line);
    if (f.size() != 4) {
      problems.push_back(str(label, ":", n, ": ", f.size(), " fields instead of 4: line ignored"));
      return;
    }
    auto gid = id_of(f[2]);
    if (f[0].empty() || !gid) {
      problems.push_back(str(label, ":", n, ": no name or a bad gid: line ignored"));
      return;
    }
    out.push_back({std::string(f[0]), *gid, n});
  });
  return out;
}

std::vector<ShadowEntry> parse_shadow(std::string_view text, const std::string& label, std::vector<std::string>& problems) {
  std::vector<ShadowEntry> out;
  each_line(text, [&](std::string_view line, unsigned n) {
    const auto f = fields_of(line);
    // shadow has 9 fields and gshadow 4; the name and the hash are the first two of both.
    if (f.size() < 2 || f[0].empty()) {
      problems.push_back(str(label, ":", n, ": no name or password field: line ignored"));
      return;
    }
    out.push_back({std::string(f[0]), std::string(f[1]), n});
  });
  return out;
}

bool usable_password_hash(std::string_view field) {
  if (field.empty() || field[0] == '!' || field[0] == '*') return false;
  auto crypt_chars = [](std::string_view s) {
    return std::all_of(s.begin(), s.end(),
                       [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '/'; });
  };
  if (field[0] == '$') return field.size() > 3 && field.find('$', 1) != std::string_view::npos;  // $id$[params$]salt$hash
  if (field.size() == 13) return crypt_chars(field);                                             // traditional DES
  if (field.size() == 20 && field[0] == '_') return crypt_chars(field.substr(1));                // BSDi extended DES
  return false;
}

}  // namespace chrootctl::audit
