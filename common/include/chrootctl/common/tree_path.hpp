#pragma once
/// Paths: canonical paths inside a tree ("/", "/etc/passwd", as manifests and recipes name
/// entries) and the two plain helpers every component needs. Pure functions.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chrootctl/common/error.hpp"

namespace chrootctl {

/// Why `p` is not a canonical absolute path inside a tree ("/", "/etc/passwd"), or nullopt.
/// Refused: relative paths, empty, "." or ".." components, "//", a trailing slash, NUL bytes.
std::optional<std::string> tree_path_problem(std::string_view p);

/// Errc::parse "manifest path 'P' ..." when `p` is not a canonical tree path (a manifest line
/// that could leave the tree).
Status check_manifest_path(std::string_view p);

/// The components of a canonical tree path ("/a/b" -> {"a", "b"}; "/" -> {}).
std::vector<std::string> path_components(std::string_view p);

/// A canonical tree path other than "/" split at its last '/': "/a/b" -> {"/a", "b"},
/// "/a" -> {"/", "a"}.
std::pair<std::string, std::string> split_tree_path(std::string_view p);

/// Turns an archive member name into a canonical tree path ("./etc/x" -> "/etc/x", "." -> "/").
/// Refuses absolute names, ".." components and NUL bytes with a message naming the entry.
Result<std::string> normalize_entry_path(std::string_view name);

/// The last component of a host path ("/a/b" -> "b", "b" -> "b").
std::string base_name(std::string_view path);
/// The directory of a host path ("/a/b" -> "/a", "/a" -> "/", "b" -> ".").
std::string parent_dir(std::string_view path);

}  // namespace chrootctl
