#pragma once
/// Paths inside a tree and the glob patterns of `[strip] remove`. Pure functions.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chrootctl::builder {

/// Why `p` is not a canonical absolute path inside a tree ("/", "/etc/passwd"), or nullopt.
/// Refused: relative paths, empty, "." or ".." components, "//", a trailing slash, NUL bytes.
std::optional<std::string> tree_path_problem(std::string_view p);

/// The components of a canonical tree path ("/a/b" -> {"a", "b"}; "/" -> {}).
std::vector<std::string> path_components(std::string_view p);

/// Why `pattern` is not a usable removal glob, or nullopt. A glob is an absolute path whose
/// components may use `*` and `?` (never matching '/'), `[...]` classes (with `!` or `^` to
/// negate), and a whole component `**` matching any number of components (zero included).
std::optional<std::string> glob_problem(std::string_view pattern);

/// True when the canonical tree path `path` matches `pattern`.
bool glob_match(std::string_view pattern, std::string_view path);

}  // namespace chrootctl::builder
