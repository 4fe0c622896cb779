#include <gtest/gtest.h>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/toml.hpp"

namespace chrootctl {
namespace {

TEST(Toml, SyntaxErrorShowsFileLineColumnAndCaret) {
  auto r = parse_toml("name = \"x\"\n[base\n", "recipes/x.toml");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::parse);
  const auto msg = r.error().what();
  EXPECT_EQ(msg.substr(0, 17), "recipes/x.toml:2:") << msg;
  EXPECT_NE(msg.find(": error: "), std::string::npos) << msg;
  EXPECT_NE(msg.find(" 2 | [base\n"), std::string::npos) << msg;
  EXPECT_NE(msg.find('^'), std::string::npos) << msg;
}

// TOML++ 3.3 breaks its own precondition on table headers like these (common/src/toml.cpp): a
// sanitizer build aborted on them, found by fuzz/catalogue_fuzz. They are parse errors.
TEST(Toml, TableHeadersThatStartNoKeyAreSyntaxErrors) {
  for (const char* text : {"[[[1]]]\n", "[=\n", "[\x01\n"}) {
    auto r = parse_toml(text, "x.toml");
    ASSERT_FALSE(r) << text;
    EXPECT_EQ(r.error().code(), Errc::parse);
  }
  auto r = parse_toml("a = 1\n[[[b]]]\n", "x.toml");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().what(),
            "x.toml:2:3: error: Error while parsing key: expected bare key starting character or string delimiter, saw '['\n"
            " 2 | [[[b]]]\n"
            "   |   ^");
}

// TOML++ 3.3 reached __builtin_unreachable on these (common/include/chrootctl/common/toml.hpp):
// non-ASCII characters where whitespace may be. Found by fuzz/catalogue.
TEST(Toml, NonAsciiOutsideStringsIsASyntaxError) {
  for (const char* text : {"a = 1 \u00e9\n", "1\u0163\n", "a = [1,\u0400]\n", "a = 1\u30a2\n", "\u00a0a = 1\n x\u00e9 = 2\n"}) {
    auto r = parse_toml(text, "x.toml");
    ASSERT_FALSE(r) << text;
    EXPECT_EQ(r.error().code(), Errc::parse) << text;
  }
  auto r = parse_toml("a = \"\u00e9\" # \u0163\n", "x.toml");
  ASSERT_TRUE(r) << r.error().what();
}

// TOML++ parses a dotted key recursively: about 130,000 parts overflowed the stack (a hostile
// review crashed a root `import` with one line of a recipe). Past 128 parts a key is refused
// before TOML++ sees it; dots inside strings are no key's and do not count.
TEST(Toml, ADottedKeyOfTooManyPartsIsRefusedUnparsed) {
  auto chain = [](std::size_t parts, const std::string& part) {
    std::string s = part;
    for (std::size_t i = 1; i < parts; ++i) s += "." + part;
    return s;
  };
  EXPECT_TRUE(parse_toml(chain(k_max_dotted_key_parts, "a") + " = 1\n", "x.toml"));
  for (const std::string& text :
       {"x = 1\n" + chain(200000, "a") + " = 1\n", "x = 1\n[" + chain(129, "\"q\"") + "]\n", "x = 1\n[[" + chain(129, "a . a") + "]]\n"}) {
    auto r = parse_toml(text, "x.toml");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), Errc::parse);
    EXPECT_EQ(r.error().what().substr(0, 9), "x.toml:2:");
    EXPECT_NE(r.error().what().find("parts (at most 128)"), std::string::npos) << r.error().what().substr(0, 200);
  }
  auto r = parse_toml("x = 1\n" + chain(200000, "a") + " = 1\n", "x.toml");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().what().substr(0, 54), "x.toml:2:1: error: a dotted key of 200000 parts (at mo");
  // Dots in values and strings, one-line or multi-line, are not a key's.
  const std::string dots = chain(1000, "v");
  auto ok = parse_toml(
      "a = \"" + dots + "\"\nb = '" + dots + "'\nc = \"\"\"\n" + dots + "\n\"\"\"\nd = '''" + dots + "'''\ne = \"x\\\"" + dots + "\"\n", "x.toml");
  EXPECT_TRUE(ok) << ok.error().what();
}

// One long line of many mistakes: each is shown with the line around its column only, and
// past fifty only counted, so the report does not grow with the square of the line.
TEST(Toml, ALongLineOfManyErrorsIsReportedInBoundedSpace) {
  std::string line = "allow = [";
  for (int i = 0; i < 5000; ++i) line += (i ? ", \"s" : "\"s") + std::to_string(100000 + i) + "\"";
  auto doc = parse_toml(line + "]\n", "p.toml");
  ASSERT_TRUE(doc) << doc.error().what();
  Diagnostics diag(*doc);
  for (const auto& v : *(*doc).table["allow"].as_array()) diag.error(v, "unknown system call");
  const std::string out = diag.render();
  EXPECT_LT(out.size(), 20000u) << out.size();
  EXPECT_NE(out.find("(4950 more not shown)\n5000 errors in p.toml\n"), std::string::npos);
  // The 1001st value starts at column 10 + 1000 * 11: the line shown from 80 characters before it.
  const std::string at = render_diagnostic(*doc, {1, 11010}, "here");
  EXPECT_EQ(at.substr(0, 30), "p.toml:1:11010: error: here\n 1");
  const auto shown = at.substr(at.find(" | ") + 3, 3);
  EXPECT_EQ(shown, "...");
  const auto lines = split(at, '\n');
  ASSERT_GE(lines.size(), 3u);
  EXPECT_EQ(lines[1].size(), std::string(" 1 | ").size() + 3 + 161 + 3);
  EXPECT_EQ(lines[2].find('^') - std::string(" 1 | ").size(), 3u + 80u) << lines[2];
  EXPECT_EQ(lines[1].substr(lines[2].find('^'), 8), "\"s101000") << lines[1];
}

TEST(Toml, UnknownKeysAreReportedTogetherWithSuggestions) {
  auto doc = parse_toml("name = \"el9\"\npakages = 1\n\n[strip]\nsetiud = \"remove\"\n", "recipes/el9.toml");
  ASSERT_TRUE(doc) << doc.error().what();
  Diagnostics diag(*doc);
  TableReader top(diag, doc->table);
  top.string("name", true);
  top.table("packages");
  if (const auto* strip = top.table("strip")) {
    TableReader s(diag, *strip, "strip");
    s.string("setuid");
    s.finish();
  }
  top.finish();
  EXPECT_EQ(diag.count(), 2u);
  EXPECT_EQ(diag.render(),
            "recipes/el9.toml:2:1: error: unknown key 'pakages' (did you mean 'packages'?)\n"
            " 2 | pakages = 1\n"
            "   | ^\n"
            "recipes/el9.toml:5:1: error: unknown key 'strip.setiud' (did you mean 'setuid'?)\n"
            " 5 | setiud = \"remove\"\n"
            "   | ^\n"
            "2 errors in recipes/el9.toml\n");
  EXPECT_FALSE(diag.result());
}

TEST(Toml, WrongTypesAndMissingKeys) {
  auto doc = parse_toml("name = 3\nlist = [\"a\", 2]\n", "f.toml");
  ASSERT_TRUE(doc);
  Diagnostics diag(*doc);
  TableReader r(diag, doc->table);
  EXPECT_FALSE(r.string("name"));
  EXPECT_FALSE(r.string_array("list"));
  EXPECT_FALSE(r.string("description", true));
  r.finish();
  const auto text = diag.render();
  EXPECT_NE(text.find("f.toml:1:8: error: 'name' must be a string"), std::string::npos) << text;
  EXPECT_NE(text.find("f.toml:2:14: error: every item of 'list' must be a string"), std::string::npos) << text;
  EXPECT_NE(text.find("error: missing required key 'description' (a string)"), std::string::npos) << text;
}

TEST(Toml, QuoteEscapes) { EXPECT_EQ(toml_quote("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\n\\u0001\""); }

}  // namespace
}  // namespace chrootctl
