#pragma once
// A small strict JSON reader for OCI/Docker image metadata (index.json, manifest.json).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chrootctl/common/error.hpp"

namespace chrootctl::builder::detail {

struct Json {
  enum class Kind { null, boolean, number, string, array, object };
  struct Member;
  Kind kind = Kind::null;
  bool b = false;
  double n = 0;
  std::string s;
  std::vector<Json> a;
  // Not std::pair<std::string, Json>: a pair of a type still incomplete here is not valid C++
  // (GCC accepts it, clang with libstdc++ does not); a vector of one is.
  std::vector<Member> o;

  /// Member of an object, or nullptr.
  [[nodiscard]] const Json* get(std::string_view key) const;
  /// Member that is a string, or nullopt.
  [[nodiscard]] std::optional<std::string> str(std::string_view key) const;
};

struct Json::Member {
  std::string key;
  Json value;
};

/// Parses one JSON document; errors name `label` and the byte offset.
Result<Json> parse_json(std::string_view text, const std::string& label);

}  // namespace chrootctl::builder::detail
