#pragma once
// Store operations used by build.cpp (layout documented in build.hpp and docs/recipes.md).

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "chrootctl/common/error.hpp"
#include "chrootctl/common/fd.hpp"
#include "chrootctl/common/files.hpp"
#include "chrootctl/common/staging.hpp"

namespace chrootctl::builder::detail {

Result<LockFile> lock_recipe(const std::string& store, const std::string& name, const std::function<void(const std::string&)>& status);
/// Syncs the staging tree and renames it to STORE/NAME/BUILD-ID (never replacing anything);
/// `existed` is set when an image with that id is already there (the staging is kept then).
Status commit(store::Staging& staging, const std::string& store, const std::string& name, const std::string& build_id, bool& existed);
/// Points STORE/NAME/latest at `build_id`, atomically. The caller holds the recipe's lock.
Status set_latest(const std::string& store, const std::string& name, const std::string& build_id);
bool valid_build_id(std::string_view id);
bool complete_image(const std::string& build_dir);
Result<std::string> lock_value(const std::string& lock_path, const std::string& key);
/// The id of a complete image of `name` whose lock has input key `key` (hex), if any.
Result<std::optional<std::string>> find_cached(const std::string& store, const std::string& name, const std::string& key);

}  // namespace chrootctl::builder::detail
