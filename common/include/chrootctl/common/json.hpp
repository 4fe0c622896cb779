#pragma once
/// A minimal streaming JSON writer for `--json` output. Strings must be valid UTF-8 to be
/// emitted as-is; other bytes are replaced by their `\xHH` escape (see escape_bytes) so the
/// output is always valid JSON. Paths should be passed through escape_bytes by the caller when
/// a byte-exact form is needed.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chrootctl/common/error.hpp"

namespace chrootctl {

class JsonWriter {
 public:
  explicit JsonWriter(bool pretty = true) : m_pretty(pretty) {}

  JsonWriter& begin_object();
  JsonWriter& end_object();
  JsonWriter& begin_array();
  JsonWriter& end_array();
  /// Writes a key inside an object; the next call writes its value.
  JsonWriter& key(std::string_view k);

  JsonWriter& value(std::string_view s);
  JsonWriter& value(const char* s) { return value(std::string_view(s)); }
  JsonWriter& value(const std::string& s) { return value(std::string_view(s)); }
  JsonWriter& value(bool b);
  JsonWriter& value(std::int64_t n);
  JsonWriter& value(std::uint64_t n);
  JsonWriter& value(int n) { return value(static_cast<std::int64_t>(n)); }
  JsonWriter& value(unsigned n) { return value(static_cast<std::uint64_t>(n)); }
  JsonWriter& value(long long n) { return value(static_cast<std::int64_t>(n)); }
  JsonWriter& value(unsigned long long n) { return value(static_cast<std::uint64_t>(n)); }
  JsonWriter& value(double d);
  JsonWriter& null();

  template <class T>
  JsonWriter& field(std::string_view k, const T& v) {
    key(k);
    return value(v);
  }

  /// The document so far, with a trailing newline once complete.
  [[nodiscard]] std::string str() const;

  static std::string escape(std::string_view s);

 private:
  void before_value();
  void newline();

  std::string m_out;
  bool m_pretty;
  struct Level {
    bool is_object;
    bool empty;
  };
  std::vector<Level> m_stack;
  bool m_after_key = false;
};

/// One JSON value as read: a string (unescaped), the text of a number, `true`, `false` or
/// `null` as written, an array, or an object with its members in document order.
struct JsonValue {
  enum class Kind { null, boolean, number, string, array, object };
  struct Member;
  Kind kind = Kind::null;
  std::string text;              ///< a string's value; a number's, boolean's or null's text
  std::vector<JsonValue> items;  ///< an array's values
  // Not std::pair<std::string, JsonValue>: a pair of a type still incomplete here is not
  // valid C++ (GCC accepts it, clang with libstdc++ does not); a vector of one is.
  std::vector<Member> members;  ///< an object's members

  /// The member `key` of an object, or nullptr.
  [[nodiscard]] const JsonValue* get(std::string_view key) const;
  /// The member `key` of an object when it is a string, or nullopt.
  [[nodiscard]] std::optional<std::string> string_member(std::string_view key) const;
};

struct JsonValue::Member {
  std::string key;
  JsonValue value;
};

/// Reads one JSON document (RFC 8259), strictly: strings must be UTF-8; control bytes, `\u`
/// escapes of a lone surrogate, a repeated key in an object, nesting deeper than 64 and
/// anything after the value but white space are refused. Errors read
/// "unreadable WHAT at byte N: why". The one JSON reader in chrootctl: OCI image metadata,
/// and through parse_flat_json_object the records chrootctl writes itself.
Result<JsonValue> parse_json(std::string_view text, std::string_view what);

/// A value of a flat object: never an array or an object.
using FlatValue = JsonValue;
using FlatObject = std::vector<std::pair<std::string, FlatValue>>;

/// Reads one JSON object whose values are strings, numbers, booleans or null: the one-line
/// records chrootctl writes (`resolve --json`, the accounting log). A nested object or array
/// is refused ("unexpected value"), as is all that parse_json refuses.
Result<FlatObject> parse_flat_json_object(std::string_view text, std::string_view what);

/// The value of `key`, or nullptr.
const FlatValue* find_flat(const FlatObject& object, std::string_view key);

}  // namespace chrootctl
