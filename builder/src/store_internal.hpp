#pragma once
// Store operations used by build.cpp (layout documented in build.hpp and docs/recipes.md).

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "chrootctl/common/error.hpp"
#include "chrootctl/common/fd.hpp"
#include "chrootctl/common/files.hpp"

namespace chrootctl::builder::detail {

/// A staging directory STORE/.staging/NAME.XXXXXX, flock-held while it lives and removed on
/// destruction unless committed.
struct Staging {
  Staging() = default;
  Staging(Staging&&) = default;
  Staging& operator=(Staging&&) = default;
  ~Staging();
  std::string path;
  Fd fd;
};

Status prepare_store(const std::string& store);
Result<LockFile> lock_recipe(const std::string& store, const std::string& name, const std::function<void(const std::string&)>& status);
Result<Staging> create_staging(const std::string& store, const std::string& name);
/// Removes staging directories whose flock is free; returns how many (problems are collected).
Result<std::size_t> clean_staging(const std::string& store, std::vector<std::string>* problems);
/// Syncs the staging tree and renames it to STORE/NAME/BUILD-ID (never replacing anything);
/// `existed` is set when an image with that id is already there (the staging is kept then).
Status commit(Staging& staging, const std::string& store, const std::string& name, const std::string& build_id, bool& existed);
Status set_latest(const std::string& store, const std::string& name, const std::string& build_id);
bool valid_build_id(std::string_view id);
bool complete_image(const std::string& build_dir);
Result<std::string> lock_value(const std::string& lock_path, const std::string& key);
/// The id of a complete image of `name` whose lock has input key `key` (hex), if any.
Result<std::optional<std::string>> find_cached(const std::string& store, const std::string& name, const std::string& key);

}  // namespace chrootctl::builder::detail
