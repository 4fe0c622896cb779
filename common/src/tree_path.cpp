#include "chrootctl/common/tree_path.hpp"

#include "chrootctl/common/strings.hpp"

namespace chrootctl {

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
}  // namespace

std::optional<std::string> tree_path_problem(std::string_view p) {
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

Status check_manifest_path(std::string_view p) {
  if (auto why = tree_path_problem(p)) return fail(Errc::parse, str("manifest path ", quote(p), ": ", *why));
  return {};
}

std::vector<std::string> path_components(std::string_view p) {
  std::vector<std::string> out;
  for (auto c : components_of(p)) out.emplace_back(c);
  return out;
}

std::pair<std::string, std::string> split_tree_path(std::string_view p) {
  const auto slash = p.find_last_of('/');
  return {slash == 0 ? std::string("/") : std::string(p.substr(0, slash)), std::string(p.substr(slash + 1))};
}

Result<std::string> normalize_entry_path(std::string_view name) {
  if (name.find('\0') != std::string_view::npos) return fail(Errc::permission, str("entry ", quote(name), ": name contains a NUL byte"));
  if (!name.empty() && name[0] == '/')
    return fail(Errc::permission, str("refusing entry ", quote(name), ": absolute path (entries must stay inside the root)"));
  std::string out;
  std::size_t pos = 0;
  while (pos <= name.size()) {
    auto next = name.find('/', pos);
    if (next == std::string_view::npos) next = name.size();
    const auto comp = name.substr(pos, next - pos);
    pos = next + 1;
    if (comp.empty() || comp == ".") continue;
    if (comp == "..") return fail(Errc::permission, str("refusing entry ", quote(name), ": '..' component (entries must stay inside the root)"));
    out += '/';
    out += comp;
  }
  if (out.empty()) out = "/";
  return out;
}

std::string base_name(std::string_view path) {
  const auto slash = path.find_last_of('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

std::string parent_dir(std::string_view path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string_view::npos) return ".";
  return slash == 0 ? std::string("/") : std::string(path.substr(0, slash));
}

}  // namespace chrootctl
