#include "chrootctl/common/strings.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace chrootctl {

namespace detail {
void append_piece(std::string& out, std::string_view v) { out.append(v); }
void append_piece(std::string& out, const char* v) {
  if (v) out.append(v);
}
void append_piece(std::string& out, char c) { out.push_back(c); }
void append_piece(std::string& out, bool b) { out.push_back(b ? '1' : '0'); }
void append_signed(std::string& out, long long v) {
  char buf[24];
  out.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}
void append_unsigned(std::string& out, unsigned long long v) {
  char buf[24];
  out.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}
void append_floating(std::string& out, double v) {
  char buf[32];
  const int n = std::snprintf(buf, sizeof buf, "%g", v);
  if (n > 0) out.append(buf, static_cast<std::size_t>(n));
}
}  // namespace detail

std::string hex_number(std::uint64_t v) {
  char buf[17];
  return std::string(buf, std::to_chars(buf, buf + sizeof buf, v, 16).ptr);
}

namespace {
constexpr char k_hex[] = "0123456789abcdef";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool plain_byte(unsigned char c, std::string_view extra = {}) {
  return c >= 0x21 && c <= 0x7e && c != '\\' && extra.find(static_cast<char>(c)) == std::string_view::npos;
}
}  // namespace

namespace {
std::string escape_impl(std::string_view raw, std::string_view extra, bool keep_space) {
  std::string out;
  out.reserve(raw.size() + 8);
  for (unsigned char c : raw) {
    if (plain_byte(c, extra) || (keep_space && c == ' ')) {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(k_hex[c >> 4]);
      out.push_back(k_hex[c & 0xf]);
    }
  }
  return out;
}
}  // namespace

std::string escape_bytes(std::string_view raw, std::string_view extra) { return escape_impl(raw, extra, false); }

std::string escape_for_display(std::string_view raw) { return escape_impl(raw, {}, true); }

std::optional<std::string> unescape_bytes(std::string_view s, std::string_view extra) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '\\') {
      if (s.size() - i < 4) return std::nullopt;
      if (s[i + 1] != 'x') return std::nullopt;
      const int hi = hex_value(s[i + 2]);
      const int lo = hex_value(s[i + 3]);
      if (hi < 0 || lo < 0) return std::nullopt;
      const auto byte = static_cast<unsigned char>(hi * 16 + lo);
      // Canonical form only: a byte that needs no escape must not be escaped, and hex is lowercase.
      if (plain_byte(byte, extra) || std::isupper(static_cast<unsigned char>(s[i + 2])) || std::isupper(static_cast<unsigned char>(s[i + 3])))
        return std::nullopt;
      out.push_back(static_cast<char>(byte));
      i += 3;
    } else if (plain_byte(c, extra)) {
      out.push_back(static_cast<char>(c));
    } else {
      return std::nullopt;
    }
  }
  return out;
}

namespace {
// The length of the valid UTF-8 sequence at s[i] and the code point it encodes; 0 when the
// bytes there are not valid UTF-8 (overlong forms, surrogates and values above U+10FFFF are not).
std::size_t utf8_sequence(std::string_view s, std::size_t i, char32_t& cp) {
  const auto c = static_cast<unsigned char>(s[i]);
  std::size_t n;
  char32_t min;
  if (c < 0x80) {
    cp = c;
    return 1;
  }
  if ((c & 0xe0) == 0xc0) {
    n = 2;
    min = 0x80;
    cp = c & 0x1f;
  } else if ((c & 0xf0) == 0xe0) {
    n = 3;
    min = 0x800;
    cp = c & 0x0f;
  } else if ((c & 0xf8) == 0xf0) {
    n = 4;
    min = 0x10000;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (s.size() - i < n) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

// Characters a terminal does not simply draw: C1 controls (U+0080..U+009F; U+009B is CSI on
// some terminals), and the format controls that reorder or hide text (bidi embeddings,
// overrides and isolates, zero-width characters, line and paragraph separators, BOM).
bool unsafe_code_point(char32_t cp) {
  return (cp >= 0x80 && cp <= 0x9f) || cp == 0x061c || (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202e) ||
         (cp >= 0x2060 && cp <= 0x2069) || cp == 0xfeff;
}

void append_hex_escape(std::string& out, unsigned char c) {
  out += "\\x";
  out.push_back(k_hex[c >> 4]);
  out.push_back(k_hex[c & 0xf]);
}

// terminal_safe, with the bytes in `extra` (ASCII) escaped as well.
void append_terminal_safe(std::string& out, std::string_view s, bool keep_newlines, std::string_view extra) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      const bool plain = (c >= 0x20 && c != 0x7f) || c == '\t' || (keep_newlines && c == '\n');
      if (plain && extra.find(static_cast<char>(c)) == std::string_view::npos) out.push_back(static_cast<char>(c));
      else append_hex_escape(out, c);
      ++i;
      continue;
    }
    char32_t cp = 0;
    const std::size_t n = utf8_sequence(s, i, cp);
    if (n == 0) {
      append_hex_escape(out, c);
      ++i;
      continue;
    }
    if (unsafe_code_point(cp))
      for (std::size_t k = 0; k < n; ++k) append_hex_escape(out, static_cast<unsigned char>(s[i + k]));
    else out.append(s.substr(i, n));
    i += n;
  }
}
}  // namespace

std::size_t utf8_char_length(std::string_view s, std::size_t i) {
  char32_t cp = 0;
  return i < s.size() ? utf8_sequence(s, i, cp) : 0;
}

std::string terminal_safe(std::string_view text, bool keep_newlines) {
  std::string out;
  out.reserve(text.size());
  append_terminal_safe(out, text, keep_newlines, {});
  return out;
}

std::string quote(std::string_view s) {
  std::string out = "'";
  append_terminal_safe(out, s, false, "'\\\t");
  out += "'";
  return out;
}

std::string to_hex(const unsigned char* data, std::size_t n) {
  std::string out(n * 2, '0');
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = k_hex[data[i] >> 4];
    out[2 * i + 1] = k_hex[data[i] & 0xf];
  }
  return out;
}

bool is_sha256_hex(std::string_view s) {
  if (s.size() != 64) return false;
  for (const char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::optional<std::string> from_hex(std::string_view hex) {
  if (hex.size() % 2) return std::nullopt;
  std::string out(hex.size() / 2, '\0');
  for (std::size_t i = 0; i < out.size(); ++i) {
    const int hi = hex_value(hex[2 * i]);
    const int lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<char>(hi * 16 + lo);
  }
  return out;
}

namespace {
constexpr char k_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
}

std::string base64_encode(std::string_view raw) {
  std::string out;
  out.reserve((raw.size() + 2) / 3 * 4);
  std::size_t i = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(raw.data());
  for (; i + 2 < raw.size(); i += 3) {
    const unsigned v = (p[i] << 16) | (p[i + 1] << 8) | p[i + 2];
    out.push_back(k_b64[(v >> 18) & 63]);
    out.push_back(k_b64[(v >> 12) & 63]);
    out.push_back(k_b64[(v >> 6) & 63]);
    out.push_back(k_b64[v & 63]);
  }
  if (i + 1 == raw.size()) {
    const unsigned v = p[i] << 16;
    out.push_back(k_b64[(v >> 18) & 63]);
    out.push_back(k_b64[(v >> 12) & 63]);
    out += "==";
  } else if (i + 2 == raw.size()) {
    const unsigned v = (p[i] << 16) | (p[i + 1] << 8);
    out.push_back(k_b64[(v >> 18) & 63]);
    out.push_back(k_b64[(v >> 12) & 63]);
    out.push_back(k_b64[(v >> 6) & 63]);
    out.push_back('=');
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4) return std::nullopt;
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = text[i + k];
      if (c == '=' && last && k >= 2) {
        v[k] = 0;
        ++pad;
        continue;
      }
      if (pad) return std::nullopt;
      v[k] = val(c);
      if (v[k] < 0) return std::nullopt;
    }
    const unsigned n = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    out.push_back(static_cast<char>((n >> 16) & 0xff));
    if (pad < 2) out.push_back(static_cast<char>((n >> 8) & 0xff));
    if (pad < 1) out.push_back(static_cast<char>(n & 0xff));
  }
  return out;
}

bool Lines::next(std::string_view& line, unsigned& number) {
  if (m_pos >= m_text.size()) return false;
  const auto nl = m_text.find('\n', m_pos);
  line = m_text.substr(m_pos, nl == std::string_view::npos ? std::string_view::npos : nl - m_pos);
  m_pos = nl == std::string_view::npos ? m_text.size() : nl + 1;
  number = ++m_number;
  return true;
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    const auto pos = s.find(sep, start);
    out.emplace_back(s.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return out;
}

std::string_view trim(std::string_view s) {
  const auto ws = " \t\r\n\f\v";
  const auto b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i) out += sep;
    out += parts[i];
  }
  return out;
}

std::optional<std::uint64_t> parse_u64(std::string_view s, int base) {
  if (s.empty()) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    const int d = hex_value(c);
    if (d < 0 || d >= base) return std::nullopt;
    if (v > (UINT64_MAX - static_cast<std::uint64_t>(d)) / static_cast<std::uint64_t>(base)) return std::nullopt;
    v = v * static_cast<std::uint64_t>(base) + static_cast<std::uint64_t>(d);
  }
  return v;
}

std::optional<std::uint64_t> parse_size(std::string_view s) {
  s = trim(s);
  if (s.empty()) return std::nullopt;
  std::size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  const std::string number(s.substr(0, i));
  std::string unit(s.substr(i));
  if (number.empty() || std::count(number.begin(), number.end(), '.') > 1 || number == ".") return std::nullopt;
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (unit.size() > 1 && unit.back() == 'B') unit.pop_back();
  if (unit.size() == 2 && unit[1] == 'I') unit.pop_back();
  std::uint64_t mult = 1;
  if (unit.empty() || unit == "B") mult = 1;
  else if (unit == "K") mult = 1ull << 10;
  else if (unit == "M") mult = 1ull << 20;
  else if (unit == "G") mult = 1ull << 30;
  else if (unit == "T") mult = 1ull << 40;
  else return std::nullopt;
  const long double v = std::stold(number) * static_cast<long double>(mult);
  if (v >= 1.8e19L) return std::nullopt;
  return static_cast<std::uint64_t>(v);
}

std::string human_size(std::uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  if (u == 0) return str(bytes, " B");
  char buf[32];
  (void)std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);  // fits: at most "1023.9 EiB"
  return buf;
}

std::string mode_octal(unsigned mode) {
  char buf[8];
  (void)std::snprintf(buf, sizeof buf, "%04o", mode & 07777u);  // fits: four digits
  return buf;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::optional<std::string> did_you_mean(std::string_view word, const std::vector<std::string>& candidates) {
  std::optional<std::string> best;
  std::size_t best_d = 0;
  for (const auto& c : candidates) {
    const auto d = edit_distance(word, c);
    const std::size_t limit = std::max<std::size_t>(2, c.size() / 3);
    if (d <= limit && (!best || d < best_d)) {
      best = c;
      best_d = d;
    }
  }
  return best;
}

}  // namespace chrootctl
