#pragma once
/// A minimal streaming JSON writer for `--json` output. Strings must be valid UTF-8 to be
/// emitted as-is; other bytes are replaced by their `\xHH` escape (see escape_bytes) so the
/// output is always valid JSON. Paths should be passed through escape_bytes by the caller when
/// a byte-exact form is needed.

#include <cstdint>
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

/// One value of a flat JSON object: a string (unescaped), or the text of a number, `true`,
/// `false` or `null` as written.
struct FlatValue {
  enum class Kind { string, number, boolean, null };
  Kind kind = Kind::null;
  std::string text;
};
using FlatObject = std::vector<std::pair<std::string, FlatValue>>;

/// Reads one JSON object whose values are strings, numbers, booleans or null: the one-line
/// records chrootctl writes (`resolve --json`, the accounting log), never a nested object or
/// array. Strings must be UTF-8; `\u` escapes of surrogates are refused, as are control bytes,
/// a repeated key and anything after the object but white space. Errors read
/// "unreadable WHAT at byte N: why".
Result<FlatObject> parse_flat_json_object(std::string_view text, std::string_view what);

/// The value of `key`, or nullptr.
const FlatValue* find_flat(const FlatObject& object, std::string_view key);

}  // namespace chrootctl
