#include "chrootctl/common/json.hpp"

#include <cmath>
#include <cstdio>
#include <unordered_set>

#include "chrootctl/common/strings.hpp"

namespace chrootctl {

namespace {
// Length of a valid UTF-8 sequence starting at s[i], or 0 if invalid.
std::size_t utf8_len(std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  std::size_t n = 0;
  unsigned min = 0;
  if (c < 0x80) return 1;
  if ((c & 0xe0) == 0xc0) n = 2, min = 0x80;
  else if ((c & 0xf0) == 0xe0) n = 3, min = 0x800;
  else if ((c & 0xf8) == 0xf0) n = 4, min = 0x10000;
  else return 0;
  if (i + n > s.size()) return 0;
  unsigned cp = c & (0x7f >> n);
  for (std::size_t k = 1; k < n; ++k) {
    const auto d = static_cast<unsigned char>(s[i + k]);
    if ((d & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (d & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}
}  // namespace

std::string JsonWriter::escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back('"');
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const std::size_t n = utf8_len(s, i);
    if (n == 0) {
      // Not UTF-8: keep the byte visible and unambiguous.
      char buf[8];
      (void)std::snprintf(buf, sizeof buf, "\\\\x%02x", c);
      out += buf;
      ++i;
      continue;
    }
    if (n > 1) {
      out.append(s.substr(i, n));
      i += n;
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          (void)std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out.push_back('"');
  return out;
}

void JsonWriter::newline() {
  if (!m_pretty) return;
  m_out.push_back('\n');
  m_out.append(m_stack.size() * 2, ' ');
}

void JsonWriter::before_value() {
  if (m_after_key) {
    m_after_key = false;
    return;
  }
  if (!m_stack.empty()) {
    if (!m_stack.back().empty) m_out.push_back(',');
    m_stack.back().empty = false;
    newline();
  }
}

JsonWriter& JsonWriter::begin_object() {
  before_value();
  m_out.push_back('{');
  m_stack.push_back({true, true});
  return *this;
}

JsonWriter& JsonWriter::end_object() {
  const bool empty = m_stack.back().empty;
  m_stack.pop_back();
  if (!empty) newline();
  m_out.push_back('}');
  return *this;
}

JsonWriter& JsonWriter::begin_array() {
  before_value();
  m_out.push_back('[');
  m_stack.push_back({false, true});
  return *this;
}

JsonWriter& JsonWriter::end_array() {
  const bool empty = m_stack.back().empty;
  m_stack.pop_back();
  if (!empty) newline();
  m_out.push_back(']');
  return *this;
}

JsonWriter& JsonWriter::key(std::string_view k) {
  before_value();
  m_out += escape(k);
  m_out += m_pretty ? ": " : ":";
  m_after_key = true;
  return *this;
}

JsonWriter& JsonWriter::value(std::string_view s) {
  before_value();
  m_out += escape(s);
  return *this;
}

JsonWriter& JsonWriter::value(bool b) {
  before_value();
  m_out += b ? "true" : "false";
  return *this;
}

JsonWriter& JsonWriter::value(std::int64_t n) {
  before_value();
  m_out += std::to_string(n);
  return *this;
}

JsonWriter& JsonWriter::value(std::uint64_t n) {
  before_value();
  m_out += std::to_string(n);
  return *this;
}

JsonWriter& JsonWriter::value(double d) {
  before_value();
  if (!std::isfinite(d)) {
    m_out += "null";
    return *this;
  }
  char buf[64];
  (void)std::snprintf(buf, sizeof buf, "%.6g", d);
  m_out += buf;
  return *this;
}

JsonWriter& JsonWriter::null() {
  before_value();
  m_out += "null";
  return *this;
}

std::string JsonWriter::str() const {
  if (m_stack.empty() && !m_out.empty()) return m_out + "\n";
  return m_out;
}

namespace {

// The one reader behind parse_json and parse_flat_json_object. Containers nest at most
// `max_depth` deep; a flat object is read with a depth of 1, so that a nested value is
// "unexpected" where it starts.
class Reader {
 public:
  Reader(std::string_view text, std::string_view what, int max_depth) : m_s(text), m_what(what), m_max_depth(max_depth) {}

  Result<JsonValue> document() {
    space();
    auto v = TRY(value(0));
    space();
    if (m_i != m_s.size()) return bad("trailing data");
    return v;
  }

  Result<JsonValue> object_document() {
    space();
    if (peek() != '{') return bad("expected '{'");
    return document();
  }

 private:
  static bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }
  static bool is_digit(char c) { return c >= '0' && c <= '9'; }
  char peek() const { return m_i < m_s.size() ? m_s[m_i] : '\0'; }
  bool eat(char c) {
    if (m_i >= m_s.size() || m_s[m_i] != c) return false;
    ++m_i;
    return true;
  }
  void space() {
    while (m_i < m_s.size() && is_space(m_s[m_i])) ++m_i;
  }
  tl::unexpected<Error> bad(std::string_view why) const { return fail(Errc::parse, str("unreadable ", m_what, " at byte ", m_i, ": ", why)); }

  Result<JsonValue> value(int depth) {
    const char c = peek();
    if ((c == '{' || c == '[') && depth >= m_max_depth) return bad(m_max_depth == 1 ? "unexpected value" : "nested too deeply");
    if (c == '{') return object(depth);
    if (c == '[') return array(depth);
    JsonValue v;
    if (c == '"') {
      v.kind = JsonValue::Kind::string;
      v.text = TRY(string());
      return v;
    }
    for (const auto& [word, kind] :
         {std::pair{std::string_view("true"), JsonValue::Kind::boolean}, std::pair{std::string_view("false"), JsonValue::Kind::boolean},
          std::pair{std::string_view("null"), JsonValue::Kind::null}}) {
      if (m_s.substr(m_i, word.size()) == word) {
        m_i += word.size();
        v.kind = kind;
        v.text = std::string(word);
        return v;
      }
    }
    // -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
    const std::size_t start = m_i;
    eat('-');
    if (eat('0')) {
    } else if (is_digit(peek())) {
      while (is_digit(peek())) ++m_i;
    } else {
      m_i = start;
      return bad("unexpected value");
    }
    if (eat('.')) {
      if (!is_digit(peek())) return bad("expected a digit");
      while (is_digit(peek())) ++m_i;
    }
    if (eat('e') || eat('E')) {
      if (!eat('+')) eat('-');
      if (!is_digit(peek())) return bad("expected a digit");
      while (is_digit(peek())) ++m_i;
    }
    v.kind = JsonValue::Kind::number;
    v.text = std::string(m_s.substr(start, m_i - start));
    return v;
  }

  Result<JsonValue> object(int depth) {
    JsonValue out;
    out.kind = JsonValue::Kind::object;
    // Repeated keys are found by a scan while the object is small and through a set once it is
    // not, so that a hostile document of a million keys costs no more than reading it.
    std::unordered_set<std::string> keys;
    eat('{');
    space();
    if (eat('}')) return out;
    while (true) {
      space();
      auto key = TRY(string());
      bool repeated = false;
      if (out.members.size() < k_scan_keys) {
        repeated = out.get(key) != nullptr;
      } else {
        if (keys.empty())
          for (const auto& m : out.members) keys.insert(m.key);
        repeated = !keys.insert(key).second;
      }
      if (repeated) return bad(str("duplicate key ", quote(key)));
      space();
      if (!eat(':')) return bad("expected ':'");
      space();
      auto v = TRY(value(depth + 1));
      out.members.push_back({std::move(key), std::move(v)});
      space();
      if (eat(',')) continue;
      if (eat('}')) return out;
      return bad("expected ',' or '}'");
    }
  }

  Result<JsonValue> array(int depth) {
    JsonValue out;
    out.kind = JsonValue::Kind::array;
    eat('[');
    space();
    if (eat(']')) return out;
    while (true) {
      space();
      out.items.push_back(TRY(value(depth + 1)));
      space();
      if (eat(',')) continue;
      if (eat(']')) return out;
      return bad("expected ',' or ']'");
    }
  }

  static void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else {
      out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    }
  }

  Result<std::uint32_t> hex4() {
    if (m_i + 4 > m_s.size()) return bad("short \\u escape");
    auto v = parse_u64(m_s.substr(m_i, 4), 16);
    if (!v) return bad("bad \\u escape");
    m_i += 4;
    return static_cast<std::uint32_t>(*v);
  }

  // After "\u": one code point, a surrogate pair taken together (valid JSON, though chrootctl
  // writes none); a lone surrogate is refused, with the offset of its hex digits.
  Result<std::uint32_t> code_point() {
    const std::size_t start = m_i;
    auto lone = [&] {
      m_i = start;
      return bad("\\u escape of a lone surrogate");
    };
    const std::uint32_t cp = TRY(hex4());
    if (cp >= 0xdc00 && cp <= 0xdfff) return lone();
    if (cp < 0xd800 || cp > 0xdbff) return cp;
    if (m_s.substr(m_i, 2) != "\\u") return lone();
    m_i += 2;
    const std::uint32_t lo = TRY(hex4());
    if (lo < 0xdc00 || lo > 0xdfff) return lone();
    return 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
  }

  Result<std::string> string() {
    if (!eat('"')) return bad("expected a string");
    std::string out;
    while (m_i < m_s.size()) {
      const char c = m_s[m_i];
      if (c == '"') {
        ++m_i;
        return out;
      }
      if (static_cast<unsigned char>(c) < 0x20) return bad("control byte in a string");
      if (static_cast<unsigned char>(c) >= 0x80) {
        const std::size_t n = utf8_len(m_s, m_i);
        if (n == 0) return bad("a string that is not UTF-8");
        out.append(m_s.substr(m_i, n));
        m_i += n;
        continue;
      }
      ++m_i;
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      const char e = peek();
      ++m_i;
      switch (e) {
        case '"':
          out.push_back('"');
          break;
        case '\\':
          out.push_back('\\');
          break;
        case '/':
          out.push_back('/');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'u':
          append_utf8(out, TRY(code_point()));
          break;
        default:
          return bad("unknown escape");
      }
    }
    return bad("unterminated string");
  }

  static constexpr std::size_t k_scan_keys = 32;
  std::string_view m_s;
  std::string_view m_what;
  int m_max_depth;
  std::size_t m_i = 0;
};

}  // namespace

const JsonValue* JsonValue::get(std::string_view key) const {
  if (kind != Kind::object) return nullptr;
  for (const auto& m : members)
    if (m.key == key) return &m.value;
  return nullptr;
}

std::optional<std::string> JsonValue::string_member(std::string_view key) const {
  const JsonValue* v = get(key);
  if (!v || v->kind != Kind::string) return std::nullopt;
  return v->text;
}

Result<JsonValue> parse_json(std::string_view text, std::string_view what) { return Reader(text, what, 64).document(); }

Result<FlatObject> parse_flat_json_object(std::string_view text, std::string_view what) {
  auto doc = TRY(Reader(text, what, 1).object_document());
  FlatObject out;
  out.reserve(doc.members.size());
  for (auto& m : doc.members) out.emplace_back(std::move(m.key), std::move(m.value));
  return out;
}

const FlatValue* find_flat(const FlatObject& object, std::string_view key) {
  for (const auto& [k, v] : object)
    if (k == key) return &v;
  return nullptr;
}

}  // namespace chrootctl
