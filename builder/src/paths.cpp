#include "chrootctl/builder/paths.hpp"

#include <fnmatch.h>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/tree_path.hpp"

namespace chrootctl::builder {

namespace {
bool match_from(const std::vector<std::string>& pat, std::size_t pi, const std::vector<std::string>& path, std::size_t si) {
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
    if (::fnmatch(pat[pi].c_str(), path[si].c_str(), 0) != 0) return false;
    ++pi;
    ++si;
  }
  return si == path.size();
}
}  // namespace

std::optional<std::string> glob_problem(std::string_view pattern) {
  if (auto why = tree_path_problem(pattern)) return why;
  if (pattern == "/") return "'/' would remove the whole tree";
  for (const auto& c : path_components(pattern)) {
    if (c != "**" && c.find("**") != std::string::npos) return "'**' must be a whole path component (like /usr/share/doc/**)";
  }
  return std::nullopt;
}

bool glob_match(std::string_view pattern, std::string_view path) { return match_from(path_components(pattern), 0, path_components(path), 0); }

}  // namespace chrootctl::builder
