#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <sstream>
#include <string_view>
#include <vector>

#include "chrootctl/common/json.hpp"
#include "chrootctl/common/strings.hpp"

namespace chrootctl {
namespace {

// str() writes each piece as an ostream would, without one.
template <class... Args>
std::string via_stream(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

TEST(Str, WritesEachPieceAsAStreamWould) {
  const std::string s = "text";
  const std::string_view v = "view";
  const char* none = nullptr;
  EXPECT_EQ(str("a", 'b', s, v, none, "!"), "abtextview!");
  EXPECT_EQ(str(true, false), via_stream(true, false));
  EXPECT_EQ(str(0, -5, 42u, 0755), via_stream(0, -5, 42u, 0755));
  const auto i64min = std::numeric_limits<std::int64_t>::min();
  const auto u64max = std::numeric_limits<std::uint64_t>::max();
  EXPECT_EQ(str(i64min, " ", u64max), via_stream(i64min, " ", u64max));
  EXPECT_EQ(str(static_cast<short>(-7), static_cast<unsigned short>(7), 9L, 10ULL),
            via_stream(static_cast<short>(-7), static_cast<unsigned short>(7), 9L, 10ULL));
  EXPECT_EQ(str(static_cast<signed char>('x'), static_cast<unsigned char>('y')), "xy");
  for (double d : {0.0, 1.5, 0.1, -2.25, 1e20, 123456789.0, 1.0 / 3}) EXPECT_EQ(str(d), via_stream(d)) << d;
  EXPECT_EQ(str(2.5f), via_stream(2.5f));
  EXPECT_EQ(str(), "");
}

TEST(Str, HexNumber) {
  EXPECT_EQ(hex_number(0), "0");
  EXPECT_EQ(hex_number(255), "ff");
  EXPECT_EQ(hex_number(0x7e020000), "7e020000");
  EXPECT_EQ(hex_number(std::numeric_limits<std::uint64_t>::max()), "ffffffffffffffff");
}

TEST(Str, HumanSize) {
  EXPECT_EQ(human_size(0), "0 B");
  EXPECT_EQ(human_size(1023), "1023 B");
  EXPECT_EQ(human_size(1536), "1.5 KiB");
  EXPECT_EQ(human_size(161ull << 20), "161.0 MiB");
}

TEST(EscapeBytes, RoundTripsEveryByte) {
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  const std::string esc = escape_bytes(all);
  for (char c : esc) {
    EXPECT_GT(static_cast<unsigned char>(c), 0x20);
    EXPECT_LT(static_cast<unsigned char>(c), 0x7f);
  }
  auto back = unescape_bytes(esc);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, all);
}

TEST(EscapeBytes, EscapesSpaceNewlineBackslash) {
  EXPECT_EQ(escape_bytes("a b\nc\\d"), "a\\x20b\\x0ac\\x5cd");
  EXPECT_EQ(escape_bytes("x=y", "="), "x\\x3dy");
}

TEST(EscapeBytes, RejectsNonCanonicalInput) {
  EXPECT_FALSE(unescape_bytes("a\\x41"));  // 'A' needs no escape
  EXPECT_FALSE(unescape_bytes("a\\x0A"));  // upper-case hex
  EXPECT_FALSE(unescape_bytes("a\\x0"));   // truncated escape
  EXPECT_FALSE(unescape_bytes("a b"));     // raw space
  EXPECT_FALSE(unescape_bytes("a\\n"));    // unknown escape
  EXPECT_TRUE(unescape_bytes("a\\x3d", "="));
  EXPECT_FALSE(unescape_bytes("a=", "="));
}

TEST(Base64, RoundTrips) {
  for (const std::string& s : std::vector<std::string>{"", "f", "fo", "foo", "foob", "fooba", "foobar", std::string("\0\xff\x01", 3)}) {
    auto d = base64_decode(base64_encode(s));
    ASSERT_TRUE(d) << s;
    EXPECT_EQ(*d, s);
  }
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_FALSE(base64_decode("Zm9=YmFy"));
  EXPECT_FALSE(base64_decode("Zm9"));
}

TEST(ParseSize, Units) {
  EXPECT_EQ(parse_size("1024"), 1024u);
  EXPECT_EQ(parse_size("512M"), 512ull << 20);
  EXPECT_EQ(parse_size("2G"), 2ull << 30);
  EXPECT_EQ(parse_size("2GiB"), 2ull << 30);
  EXPECT_EQ(parse_size("1.5k"), 1536u);
  EXPECT_FALSE(parse_size("12Q"));
  EXPECT_FALSE(parse_size(""));
  EXPECT_FALSE(parse_size("-1"));
}

TEST(DidYouMean, FindsCloseKeys) {
  EXPECT_EQ(did_you_mean("pakages", {"packages", "strip", "layout"}), "packages");
  EXPECT_FALSE(did_you_mean("zzzzzz", {"packages", "strip"}));
}

TEST(Json, EscapesAndNests) {
  JsonWriter w(false);
  w.begin_object().field("a", "x\"y\n").key("b").begin_array().value(1).value(true).null().end_array();
  w.field("bad", std::string("\xff", 1)).end_object();
  EXPECT_EQ(w.str(), "{\"a\":\"x\\\"y\\n\",\"b\":[1,true,null],\"bad\":\"\\\\xff\"}\n");
}

TEST(Lines, NumbersEachLineAndNoneAfterAFinalNewline) {
  for (const std::string_view text : {"a\n\nb c\n", "a\n\nb c"}) {
    Lines lines(text);
    std::string_view line;
    unsigned number = 0;
    std::vector<std::pair<std::string, unsigned>> got;
    while (lines.next(line, number)) got.emplace_back(line, number);
    EXPECT_EQ(got, (std::vector<std::pair<std::string, unsigned>>{{"a", 1}, {"", 2}, {"b c", 3}})) << text;
  }
  Lines none("");
  std::string_view line;
  unsigned number = 0;
  EXPECT_FALSE(none.next(line, number));
}

TEST(EscapeForDisplay, KeepsSpacesAndEscapesWhatCouldForgeALine) {
  EXPECT_EQ(escape_for_display("machine id 0123"), "machine id 0123");
  EXPECT_EQ(escape_for_display(std::string("a\nb\\c\x01\xff\x7f", 8)), "a\\x0ab\\x5cc\\x01\\xff\\x7f");
  // The same as escape_bytes except for the space.
  EXPECT_EQ(escape_bytes("a b"), "a\\x20b");
}

}  // namespace
}  // namespace chrootctl
