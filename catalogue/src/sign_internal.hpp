#pragma once
// Helpers shared by the signing, export, import and publishing sources; not part of the API.

#include <optional>
#include <string>

#include "chrootctl/common/error.hpp"

namespace chrootctl::catalogue::detail {

/// Reads a small file that decides what runs (a signature, a lock, a key): opened with
/// O_NOFOLLOW, it must be a regular file owned by root and unwritable by group and others.
/// nullopt when it does not exist.
Result<std::optional<std::string>> read_trusted_file(const std::string& path, std::size_t limit = 16u << 20);

/// Like read_trusted_file, but the file must exist.
Result<std::string> read_required_file(const std::string& path, std::size_t limit = 16u << 20);

/// The recipe name in a recipe.toml's text (`name = "..."`), or "" when there is none.
Result<std::string> recipe_name_of(const std::string& text, const std::string& label);

}  // namespace chrootctl::catalogue::detail
