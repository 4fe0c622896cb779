// The JSON reader: whole documents (OCI image metadata) and, through the flat reader, the
// one-line records chrootctl writes (resolve --json, the accounting log), read back by the
// Slurm plugin and `chrootctl log`.
#include <gtest/gtest.h>

#include <optional>
#include <string>

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
  EXPECT_EQ(error_of(R"({"a": "\ud800"})").message(), "unreadable test line at byte 9: \\u escape of a lone surrogate");
  EXPECT_EQ(error_of(R"({"a": "\udc00\ud800"})").message(), "unreadable test line at byte 9: \\u escape of a lone surrogate");
  EXPECT_EQ(error_of(R"({"a": "\ud800\u0041"})").message(), "unreadable test line at byte 9: \\u escape of a lone surrogate");
  EXPECT_EQ(error_of(R"({"a": "\q"})").message(), "unreadable test line at byte 9: unknown escape");
  EXPECT_EQ(error_of(R"({"a": "x)").message(), "unreadable test line at byte 8: unterminated string");
  EXPECT_EQ(error_of(R"({"a": 1} {)").message(), "unreadable test line at byte 9: trailing data");
  EXPECT_EQ(error_of(R"({"a" 1})").message(), "unreadable test line at byte 5: expected ':'");
  EXPECT_EQ(error_of(R"({"a": 1,})").message(), "unreadable test line at byte 8: expected a string");
}

TEST(Json, ReadsNestedDocumentsInOrder) {
  auto r = parse_json(R"({"manifests": [{"digest": "sha256:ab", "platform": {"os": "linux"}}, 3, [], {}], "s": "\ud83d\ude00"})", "index.json");
  ASSERT_TRUE(r) << r.error().what();
  ASSERT_EQ(r->kind, JsonValue::Kind::object);
  const JsonValue* m = r->get("manifests");
  ASSERT_TRUE(m);
  ASSERT_EQ(m->kind, JsonValue::Kind::array);
  ASSERT_EQ(m->items.size(), 4u);
  EXPECT_EQ(m->items[0].string_member("digest"), std::optional<std::string>("sha256:ab"));
  EXPECT_EQ(m->items[0].get("platform")->string_member("os"), std::optional<std::string>("linux"));
  EXPECT_EQ(m->items[0].string_member("platform"), std::nullopt) << "an object is not a string";
  EXPECT_EQ(m->items[1].kind, JsonValue::Kind::number);
  EXPECT_EQ(m->items[1].text, "3");
  EXPECT_EQ(m->items[2].kind, JsonValue::Kind::array);
  EXPECT_EQ(m->items[3].kind, JsonValue::Kind::object);
  EXPECT_EQ(m->get("x"), nullptr) << "an array has no members";
  EXPECT_EQ(r->string_member("s"), std::optional<std::string>("\xf0\x9f\x98\x80")) << "a surrogate pair is one code point";
  auto top = parse_json(" [\"a\", null] ", "list");
  ASSERT_TRUE(top) << top.error().what();
  EXPECT_EQ(top->items.size(), 2u);
  EXPECT_EQ(top->items[1].kind, JsonValue::Kind::null);
}

TEST(Json, RefusesWhatTheFlatReaderRefusesAndDeepNesting) {
  auto error = [](std::string_view text) {
    auto r = parse_json(text, "doc");
    EXPECT_FALSE(r) << text;
    return r ? std::string() : r.error().message();
  };
  EXPECT_EQ(error(R"({"a": [1, {"a": 1, "a": 2}]})"), "unreadable doc at byte 22: duplicate key 'a'");
  EXPECT_EQ(error("[1] x"), "unreadable doc at byte 4: trailing data");
  EXPECT_EQ(error("[1,]"), "unreadable doc at byte 3: unexpected value");
  EXPECT_EQ(error("[1 2]"), "unreadable doc at byte 3: expected ',' or ']'");
  EXPECT_EQ(error(""), "unreadable doc at byte 0: unexpected value");
  EXPECT_TRUE(parse_json(std::string(64, '[') + std::string(64, ']'), "doc"));
  // A repeated key is found in a large object too (past the scan, through the set).
  std::string big = "{";
  for (int i = 0; i < 100; ++i) big += "\"k" + std::to_string(i) + "\": " + std::to_string(i) + ", ";
  EXPECT_TRUE(parse_json(big + "\"last\": 0}", "doc"));
  EXPECT_EQ(error(big + "\"k7\": 0}"), "unreadable doc at byte " + std::to_string(big.size() + 4) + ": duplicate key 'k7'");
  EXPECT_EQ(error(std::string(65, '[') + std::string(65, ']')), "unreadable doc at byte 64: nested too deeply");
}

}  // namespace
}  // namespace chrootctl
