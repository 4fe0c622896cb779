#include "json_reader.hpp"

#include <cstdlib>

#include "chrootctl/common/strings.hpp"

namespace chrootctl::builder::detail {

const Json* Json::get(std::string_view key) const {
  if (kind != Kind::object) return nullptr;
  for (const auto& [k, v] : o)
    if (k == key) return &v;
  return nullptr;
}

std::optional<std::string> Json::str(std::string_view key) const {
  const Json* v = get(key);
  if (!v || v->kind != Kind::string) return std::nullopt;
  return v->s;
}

namespace {

class Reader {
 public:
  Reader(std::string_view t, const std::string& label) : m_t(t), m_label(label) {}

  Result<Json> document() {
    auto v = TRY(value(0));
    ws();
    if (m_p != m_t.size()) return error("trailing data after the JSON value");
    return v;
  }

 private:
  tl::unexpected<Error> error(const std::string& what) const {
    return fail(Errc::parse, chrootctl::str(m_label, ": invalid JSON at byte ", m_p, ": ", what));
  }
  void ws() {
    while (m_p < m_t.size() && (m_t[m_p] == ' ' || m_t[m_p] == '\t' || m_t[m_p] == '\n' || m_t[m_p] == '\r')) ++m_p;
  }
  bool lit(std::string_view w) {
    if (m_t.substr(m_p, w.size()) != w) return false;
    m_p += w.size();
    return true;
  }

  Result<Json> value(int depth) {
    if (depth > 64) return error("nested too deeply");
    ws();
    if (m_p >= m_t.size()) return error("unexpected end");
    Json j;
    const char c = m_t[m_p];
    if (c == '{') {
      ++m_p;
      j.kind = Json::Kind::object;
      ws();
      if (m_p < m_t.size() && m_t[m_p] == '}') {
        ++m_p;
        return j;
      }
      while (true) {
        ws();
        if (m_p >= m_t.size() || m_t[m_p] != '"') return error("expected a string key");
        auto k = TRY(string());
        ws();
        if (m_p >= m_t.size() || m_t[m_p] != ':') return error("expected ':'");
        ++m_p;
        auto v = TRY(value(depth + 1));
        j.o.push_back({std::move(k), std::move(v)});
        ws();
        if (m_p < m_t.size() && m_t[m_p] == ',') {
          ++m_p;
          continue;
        }
        if (m_p < m_t.size() && m_t[m_p] == '}') {
          ++m_p;
          return j;
        }
        return error("expected ',' or '}'");
      }
    }
    if (c == '[') {
      ++m_p;
      j.kind = Json::Kind::array;
      ws();
      if (m_p < m_t.size() && m_t[m_p] == ']') {
        ++m_p;
        return j;
      }
      while (true) {
        j.a.push_back(TRY(value(depth + 1)));
        ws();
        if (m_p < m_t.size() && m_t[m_p] == ',') {
          ++m_p;
          continue;
        }
        if (m_p < m_t.size() && m_t[m_p] == ']') {
          ++m_p;
          return j;
        }
        return error("expected ',' or ']'");
      }
    }
    if (c == '"') {
      j.kind = Json::Kind::string;
      j.s = TRY(string());
      return j;
    }
    if (lit("true")) {
      j.kind = Json::Kind::boolean;
      j.b = true;
      return j;
    }
    if (lit("false")) {
      j.kind = Json::Kind::boolean;
      return j;
    }
    if (lit("null")) return j;
    if (c == '-' || (c >= '0' && c <= '9')) {
      const std::size_t start = m_p;
      while (m_p < m_t.size() && std::string_view("+-0123456789.eE").find(m_t[m_p]) != std::string_view::npos) ++m_p;
      const std::string num(m_t.substr(start, m_p - start));
      char* end = nullptr;
      j.kind = Json::Kind::number;
      j.n = std::strtod(num.c_str(), &end);
      if (end != num.c_str() + num.size()) return error("bad number");
      return j;
    }
    return error("unexpected character");
  }

  void utf8(std::string& out, std::uint32_t cp) {
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
    if (m_p + 4 > m_t.size()) return error("short \\u escape");
    auto v = parse_u64(m_t.substr(m_p, 4), 16);
    if (!v) return error("bad \\u escape");
    m_p += 4;
    return static_cast<std::uint32_t>(*v);
  }

  Result<std::string> string() {
    ++m_p;  // opening quote
    std::string out;
    while (true) {
      if (m_p >= m_t.size()) return error("unterminated string");
      const char c = m_t[m_p++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) return error("control character in a string");
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (m_p >= m_t.size()) return error("unterminated escape");
      const char e = m_t[m_p++];
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
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'u': {
          std::uint32_t cp = TRY(hex4());
          if (cp >= 0xd800 && cp < 0xdc00 && m_t.substr(m_p, 2) == "\\u") {
            m_p += 2;
            const std::uint32_t lo = TRY(hex4());
            if (lo < 0xdc00 || lo >= 0xe000) return error("bad surrogate pair");
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          }
          utf8(out, cp);
          break;
        }
        default:
          return error("bad escape");
      }
    }
  }

  std::string_view m_t;
  const std::string& m_label;
  std::size_t m_p = 0;
};

}  // namespace

Result<Json> parse_json(std::string_view text, const std::string& label) { return Reader(text, label).document(); }

}  // namespace chrootctl::builder::detail
