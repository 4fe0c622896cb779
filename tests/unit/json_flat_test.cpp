// The flat JSON reader: the one-line records chrootctl writes (resolve --json, the accounting
// log), read back by the Slurm plugin and `chrootctl log`.
#include <gtest/gtest.h>

#include "chrootctl/common/json.hpp"

namespace chrootctl {
namespace {

Error error_of(std::string_view text) {
  auto r = parse_flat_json_object(text, "test line");
  EXPECT_FALSE(r) << text;
  return r ? Error() : r.error();
}

TEST(FlatJson, ReadsStringsNumbersLiteralsAndEscapes) {
  auto r = parse_flat_json_object(R"( {"a": "x\"y\\z\n\u00e9\u20ac", "n": -12.5e+3, "z": 0, "t": true, "f": false, "u": null} )", "test line");
  ASSERT_TRUE(r) << r.error().what();
  ASSERT_EQ(r->size(), 6u);
  EXPECT_EQ(find_flat(*r, "a")->kind, FlatValue::Kind::string);
  EXPECT_EQ(find_flat(*r, "a")->text, "x\"y\\z\n\xc3\xa9\xe2\x82\xac");
  EXPECT_EQ(find_flat(*r, "n")->kind, FlatValue::Kind::number);
  EXPECT_EQ(find_flat(*r, "n")->text, "-12.5e+3");
  EXPECT_EQ(find_flat(*r, "z")->text, "0");
  EXPECT_EQ(find_flat(*r, "t")->kind, FlatValue::Kind::boolean);
  EXPECT_EQ(find_flat(*r, "f")->text, "false");
  EXPECT_EQ(find_flat(*r, "u")->kind, FlatValue::Kind::null);
  EXPECT_EQ(find_flat(*r, "missing"), nullptr);
  auto empty = parse_flat_json_object("{}", "test line");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
}

TEST(FlatJson, WhatJsonWriterWritesReadsBack) {
  JsonWriter w(false);
  w.begin_object();
  w.field("path", std::string("/a b/\xe2\x9c\x93\x01\xff"));  // a control byte and a byte that is not UTF-8
  w.field("n", static_cast<std::uint64_t>(18446744073709551615ull));
  w.end_object();
  auto r = parse_flat_json_object(w.str(), "test line");
  ASSERT_TRUE(r) << r.error().what() << "\n" << w.str();
  EXPECT_EQ(find_flat(*r, "path")->text, "/a b/\xe2\x9c\x93\x01\\xff");
  EXPECT_EQ(find_flat(*r, "n")->text, "18446744073709551615");
}

TEST(FlatJson, RefusesWhatIsNotAFlatObjectNamingTheByte) {
  EXPECT_EQ(error_of("").message(), "unreadable test line at byte 0: expected '{'");
  EXPECT_EQ(error_of(R"({"a": [1]})").message(), "unreadable test line at byte 6: unexpected value");
  EXPECT_EQ(error_of(R"({"a": {"b": 1}})").message(), "unreadable test line at byte 6: unexpected value");
  EXPECT_EQ(error_of(R"({"a": 1, "a": 2})").message(), "unreadable test line at byte 12: duplicate key 'a'");
  EXPECT_EQ(error_of(R"({"a": 01})").message(), "unreadable test line at byte 7: expected ',' or '}'");
  EXPECT_EQ(error_of(R"({"a": 1.})").message(), "unreadable test line at byte 8: expected a digit");
  EXPECT_EQ(error_of(R"({"a": tru})").message(), "unreadable test line at byte 6: unexpected value");
  EXPECT_EQ(error_of("{\"a\": \"x\ty\"}").message(), "unreadable test line at byte 8: control byte in a string");
  EXPECT_EQ(error_of("{\"a\": \"\xff\"}").message(), "unreadable test line at byte 7: a string that is not UTF-8");
  EXPECT_EQ(error_of(R"({"a": "\ud800"})").message(), "unreadable test line at byte 9: \\u escape of a surrogate");
  EXPECT_EQ(error_of(R"({"a": "\q"})").message(), "unreadable test line at byte 9: unknown escape");
  EXPECT_EQ(error_of(R"({"a": "x)").message(), "unreadable test line at byte 8: unterminated string");
  EXPECT_EQ(error_of(R"({"a": 1} {)").message(), "unreadable test line at byte 9: trailing data");
  EXPECT_EQ(error_of(R"({"a" 1})").message(), "unreadable test line at byte 5: expected ':'");
  EXPECT_EQ(error_of(R"({"a": 1,})").message(), "unreadable test line at byte 8: expected a string");
}

}  // namespace
}  // namespace chrootctl
