#pragma once
/// Small string helpers: concatenation, byte-exact escaping of paths, hex and base64.

#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace chrootctl {

/// Concatenates anything that has operator<<. `str("mode ", 0755)`.
template <class... Args>
std::string str(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
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

/// Quotes a string for display in messages: 'like this', with control bytes escaped.
std::string quote(std::string_view s);

std::string to_hex(const unsigned char* data, std::size_t n);
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
