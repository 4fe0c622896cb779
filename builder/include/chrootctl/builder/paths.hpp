#pragma once
/// The glob patterns of `[strip] remove` (tree paths themselves: common/tree_path.hpp). Pure
/// functions.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chrootctl::builder {

/// Why `pattern` is not a usable removal glob, or nullopt. A glob is an absolute path whose
/// components may use `*` and `?` (never matching '/'), `[...]` classes (with `!` or `^` to
/// negate), and a whole component `**` matching any number of components (zero included).
std::optional<std::string> glob_problem(std::string_view pattern);

/// True when the canonical tree path `path` matches `pattern`.
bool glob_match(std::string_view pattern, std::string_view path);

}  // namespace chrootctl::builder
