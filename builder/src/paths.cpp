#include "chrootctl/builder/paths.hpp"

#include <fnmatch.h>

#include "chrootctl/common/strings.hpp"

namespace chrootctl::builder {

namespace {
std::vector<std::string_view> components_of(std::string_view p) {
  std::vector<std::string_view> out;
  std::size_t pos = 1;
  while (pos < p.size()) {
    auto next = p.find('/', pos);
    if (next == std::string_view::npos) next = p.size();
    out.push_back(p.substr(pos, next - pos));
    pos = next + 1;
  }
  return out;
}

std::optional<std::string> shape_problem(std::string_view p) {
  if (p.empty()) return "empty path";
  if (p[0] != '/') return "must be an absolute path inside the tree (starting with '/')";
  if (p.find('\0') != std::string_view::npos) return "contains a NUL byte";
  if (p == "/") return std::nullopt;
  if (p.back() == '/') return "must not end with '/'";
  for (auto c : components_of(p)) {
    if (c.empty()) return "must not contain '//'";
    if (c == "." || c == "..") return "must not contain '.' or '..' components";
  }
  return std::nullopt;
}

bool match_from(const std::vector<std::string_view>& pat, std::size_t pi, const std::vector<std::string_view>& path, std::size_t si) {
  while (pi < pat.size()) {
    if (pat[pi] == "**") {
      // A trailing "**" matches everything below, not the directory itself (as in gitignore):
      // "/usr/share/doc/**" empties /usr/share/doc and keeps the directory.
      const std::size_t first = pi + 1 == pat.size() ? si + 1 : si;
      for (std::size_t k = first; k <= path.size(); ++k)
        if (match_from(pat, pi + 1, path, k)) return true;
      return false;
    }
    if (si >= path.size()) return false;
    const std::string p(pat[pi]), s(path[si]);
    if (::fnmatch(p.c_str(), s.c_str(), 0) != 0) return false;
    ++pi;
    ++si;
  }
  return si == path.size();
}
}  // namespace

std::optional<std::string> tree_path_problem(std::string_view p) { return shape_problem(p); }

std::vector<std::string> path_components(std::string_view p) {
  std::vector<std::string> out;
  for (auto c : components_of(p)) out.emplace_back(c);
  return out;
}

std::optional<std::string> glob_problem(std::string_view pattern) {
  if (auto why = shape_problem(pattern)) return why;
  if (pattern == "/") return "'/' would remove the whole tree";
  for (auto c : components_of(pattern)) {
    if (c != "**" && c.find("**") != std::string_view::npos) return "'**' must be a whole path component (like /usr/share/doc/**)";
  }
  return std::nullopt;
}

bool glob_match(std::string_view pattern, std::string_view path) { return match_from(components_of(pattern), 0, components_of(path), 0); }

}  // namespace chrootctl::builder
