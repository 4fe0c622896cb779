#pragma once
// A small strict JSON reader for OCI/Docker image metadata (index.json, manifest.json).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chrootctl/common/error.hpp"

namespace chrootctl::builder::detail {

struct Json {
  enum class Kind { null, boolean, number, string, array, object };
  Kind kind = Kind::null;
  bool b = false;
  double n = 0;
  std::string s;
  std::vector<Json> a;
  std::vector<std::pair<std::string, Json>> o;

  /// Member of an object, or nullptr.
  [[nodiscard]] const Json* get(std::string_view key) const;
  /// Member that is a string, or nullopt.
  [[nodiscard]] std::optional<std::string> str(std::string_view key) const;
};

/// Parses one JSON document; errors name `label` and the byte offset.
Result<Json> parse_json(std::string_view text, const std::string& label);

}  // namespace chrootctl::builder::detail
