#pragma once
/// Small string helpers: concatenation, byte-exact escaping of paths, hex and base64.

#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace chrootctl {

namespace detail {
// One piece of str(): text as it is, a char as itself, bool as 1 or 0, an integer in decimal,
// a floating-point number as printf's %g (what an ostream would write for each). No stream is
// built: a launch formats many messages and paths, and a stream costs a locale for each.
void append_piece(std::string& out, std::string_view v);
void append_piece(std::string& out, const char* v);  // nothing for a null pointer
void append_piece(std::string& out, char c);
void append_piece(std::string& out, bool b);
void append_signed(std::string& out, long long v);
void append_unsigned(std::string& out, unsigned long long v);
void append_floating(std::string& out, double v);
inline void append_piece(std::string& out, const std::string& v) { append_piece(out, std::string_view(v)); }
inline void append_piece(std::string& out, signed char c) { append_piece(out, static_cast<char>(c)); }
inline void append_piece(std::string& out, unsigned char c) { append_piece(out, static_cast<char>(c)); }
template <std::integral T>
requires(!std::same_as<T, bool> && !std::same_as<T, char> && !std::same_as<T, signed char> &&
         !std::same_as<T, unsigned char>) void append_piece(std::string& out, T v) {
  if constexpr (std::is_signed_v<T>) append_signed(out, v);
  else append_unsigned(out, v);
}
// Any other pointer would otherwise print as bool: refused at compile time.
template <class T>
void append_piece(std::string& out, const T* p) = delete;
template <std::floating_point T>
void append_piece(std::string& out, T v) {
  append_floating(out, static_cast<double>(v));
}
}  // namespace detail

/// Concatenates text, characters and numbers. `str("mode ", 0755)` is "mode 493".
template <class... Args>
std::string str(const Args&... args) {
  std::string out;
  (detail::append_piece(out, args), ...);
  return out;
}

/// Escapes raw bytes so that the result holds only printable ASCII other than space and
/// backslash, plus `\xHH` escapes: every byte outside 0x21..0x7e, and '\\' itself, become `\xHH`.
/// `unescape_bytes` is its exact inverse; a name with newlines, spaces, backslashes or
/// non-UTF-8 bytes round-trips. Bytes in `extra` are escaped as well.
std::string escape_bytes(std::string_view raw, std::string_view extra = {});
/// escape_bytes for text shown to people (report lines): spaces are kept as they are; every
/// other byte outside 0x21..0x7e, and the backslash, becomes `\xHH`, so a hostile name cannot
/// forge a line.
std::string escape_for_display(std::string_view raw);
/// Inverse of escape_bytes (with the same `extra`). Returns nullopt on a malformed escape, an
/// escape that escape_bytes would not have written, or a raw byte it never emits.
std::optional<std::string> unescape_bytes(std::string_view escaped, std::string_view extra = {});

/// Text that came from input (a file, an archive, a name, a path, a tool's output), made safe
/// to print on a terminal: printable ASCII and valid UTF-8 characters are kept; every byte of a
/// control character (C0 except tab, DEL, C1), of a Unicode format or bidi control (which can
/// reorder what is shown), and every byte that is not valid UTF-8 becomes `\xHH`. A newline is
/// kept only with `keep_newlines` (multi-line messages). Text that is already safe comes back
/// unchanged, so it can be applied again at the point of printing.
std::string terminal_safe(std::string_view text, bool keep_newlines = false);

/// The length of the valid UTF-8 sequence starting at s[i] (1 for ASCII), or 0 when the bytes
/// there are not valid UTF-8.
std::size_t utf8_char_length(std::string_view s, std::size_t i);

/// Quotes a string for display in messages: 'like this', escaped as terminal_safe (newlines
/// included), and the quote and backslash as `\x27` and `\x5c`.
std::string quote(std::string_view s);

std::string to_hex(const unsigned char* data, std::size_t n);
/// A number in lowercase hexadecimal, without a prefix: hex_number(255) is "ff".
std::string hex_number(std::uint64_t v);
std::optional<std::string> from_hex(std::string_view hex);
/// A SHA-256 digest as written everywhere in chrootctl: exactly 64 lowercase hex digits.
bool is_sha256_hex(std::string_view s);
std::string base64_encode(std::string_view raw);
std::optional<std::string> base64_decode(std::string_view text);

std::vector<std::string> split(std::string_view s, char sep);

/// The lines of a text, one at a time, numbered from 1 for messages ("file:LINE: ..."): each
/// without its '\n'; a final newline does not start another line.
class Lines {
 public:
  explicit Lines(std::string_view text) : m_text(text) {}
  /// The next line and its number; false after the last.
  bool next(std::string_view& line, unsigned& number);

 private:
  std::string_view m_text;
  std::size_t m_pos = 0;
  unsigned m_number = 0;
};
std::string_view trim(std::string_view s);
bool starts_with(std::string_view s, std::string_view prefix);
std::string join(const std::vector<std::string>& parts, std::string_view sep);

/// Parses a non-negative decimal integer that fits; nullopt on anything else.
std::optional<std::uint64_t> parse_u64(std::string_view s, int base = 10);
/// Parses sizes like "512M", "2G", "1024", "1.5G" (binary units). nullopt on error.
std::optional<std::uint64_t> parse_size(std::string_view s);
/// "1.5 GiB"-style rendering.
std::string human_size(std::uint64_t bytes);
/// Octal mode with four digits, "0755".
std::string mode_octal(unsigned mode);

/// Levenshtein distance, for did-you-mean suggestions.
std::size_t edit_distance(std::string_view a, std::string_view b);
/// The closest candidate within a small distance, if any.
std::optional<std::string> did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace chrootctl
