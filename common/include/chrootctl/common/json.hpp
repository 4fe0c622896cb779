#pragma once
/// A minimal streaming JSON writer for `--json` output. Strings must be valid UTF-8 to be
/// emitted as-is; other bytes are replaced by their `\xHH` escape (see escape_bytes) so the
/// output is always valid JSON. Paths should be passed through escape_bytes by the caller when
/// a byte-exact form is needed.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

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

}  // namespace chrootctl
