#pragma once
// The fields an export entry (chrootctl-export.toml) and a published fragment (catalogue.d/)
// share, read and checked the same way. Not part of the API.

#include <cstdint>
#include <string>
#include <string_view>

#include "chrootctl/common/toml.hpp"

namespace chrootctl::distribution::detail {

struct ImageRecord {
  std::string name;      ///< a valid catalogue name
  std::string recipe;    ///< a recipe name
  std::string build_id;  ///< a build id
  std::string digest;    ///< the tree digest, 64 lowercase hex digits
  std::string signer;    ///< the signing key's id, or ""
};

/// Reads `format` (which must be `format`; `kind` names the file in the error), `name`,
/// `recipe`, `build_id`, `digest` (all required) and `signer`; each problem goes to `r`'s
/// diagnostics at its key.
ImageRecord read_image_record(TableReader& r, const toml::table& table, std::string_view kind, std::int64_t format);

}  // namespace chrootctl::distribution::detail
