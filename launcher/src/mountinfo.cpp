#include "chrootctl/launcher/mountinfo.hpp"

#include "chrootctl/common/strings.hpp"

namespace chrootctl::launcher {

// mountinfo escapes space, tab, newline and backslash as \ooo (octal).
std::string unescape_mountinfo(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      const auto a = s[i + 1], b = s[i + 2], c = s[i + 3];
      if (a >= '0' && a <= '3' && b >= '0' && b <= '7' && c >= '0' && c <= '7') {
        out.push_back(static_cast<char>((a - '0') * 64 + (b - '0') * 8 + (c - '0')));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

void for_each_mount(std::string_view text, const std::function<void(const MountInfoFields&)>& fn) {
  // id parent major:minor root mount-point options [optional...] - fstype source super-options
  std::string_view f[16];
  while (!text.empty()) {
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    std::size_t n = 0;
    while (!line.empty() && n < std::size(f)) {
      const auto sp = line.find(' ');
      f[n++] = line.substr(0, sp);
      line = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
    }
    if (n < 10) continue;
    std::size_t dash = 6;
    while (dash < n && f[dash] != "-") ++dash;
    if (dash + 2 >= n || !parse_u64(f[0]) || !parse_u64(f[1])) continue;
    fn(MountInfoFields{f[0], f[1], f[3], f[4], f[5], f[dash + 1], f[dash + 2], dash + 3 < n ? f[dash + 3] : std::string_view()});
  }
}

std::vector<MountInfo> parse_mountinfo(std::string_view text) {
  std::vector<MountInfo> out;
  for_each_mount(text, [&](const MountInfoFields& m) {
    MountInfo i;
    i.id = static_cast<int>(*parse_u64(m.id));
    i.parent = static_cast<int>(*parse_u64(m.parent));
    i.root = unescape_mountinfo(m.root);
    i.mount_point = unescape_mountinfo(m.mount_point);
    i.options = m.options;
    i.fstype = m.fstype;
    i.source = unescape_mountinfo(m.source);
    i.super_options = m.super_options;
    out.push_back(std::move(i));
  });
  return out;
}

bool path_is_under(std::string_view path, std::string_view prefix) {
  if (prefix == "/") return !path.empty() && path[0] == '/';
  if (path.size() < prefix.size() || path.substr(0, prefix.size()) != prefix) return false;
  return path.size() == prefix.size() || path[prefix.size()] == '/';
}

}  // namespace chrootctl::launcher
