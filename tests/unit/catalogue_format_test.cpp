// The catalogue file: names, parsing with file:line:col errors, canonical round trips, and the
// checks on a version's state that need no file system.
#include <gtest/gtest.h>

#include "chrootctl/catalogue/catalogue.hpp"
#include "chrootctl/catalogue/resolve.hpp"
#include "test_support.hpp"

namespace chrootctl {
namespace {

namespace cat = catalogue;

cat::Version version(const std::string& id) {
  cat::Version v;
  v.image = "/srv/images/el9/" + id;
  v.root = v.image + "/root";
  v.digest = std::string(64, 'a');
  v.build_id = id;
  v.recipe = "el9";
  v.added_at = 1700000000;
  v.verified_at = 1700000100;
  v.identity = {2049, 131075, 0, 0, 0755};
  return v;
}

cat::Catalogue sample() {
  cat::Catalogue c;
  cat::Entry el9;
  el9.name = "EL9";
  el9.current = version("b3");
  el9.previous = {version("b2"), version("b1")};
  el9.previous[0].failed_at = 1700000200;
  el9.previous[0].failure = "1 difference: changed /etc/hosts sha256 \"x\" -> y\nsecond line";
  el9.aliases = {"RHEL9", "Rocky9"};
  c.insert(el9);
  cat::Entry sl;
  sl.name = "SL6.x86_64+gpu";
  sl.current = version("import-20261123T120530Z");
  sl.current.recipe = "";
  sl.current.signer = "site-key";
  sl.current.image = "/srv/odd path/\xc3\xa9t\xc3\xa9";
  sl.seccomp = "/etc/chrootctl/seccomp/sl6.toml";
  c.insert(sl);
  return c;
}

TEST(CatalogueNames, ValidNames) {
  for (const char* n : {"RHEL5", "el9", "SL6.x86_64+gpu", "a", "9x", "debian-12_slim"}) EXPECT_EQ(cat::invalid_name(n), std::nullopt) << n;
  EXPECT_EQ(cat::invalid_name(std::string(64, 'x')), std::nullopt);
}

TEST(CatalogueNames, InvalidNamesSayWhy) {
  EXPECT_EQ(cat::invalid_name(""), "a name must not be empty");
  EXPECT_EQ(cat::invalid_name("root"), "'root' is reserved: HTCondor maps 'root' to the host's /, and chrootctl never runs a job there");
  EXPECT_EQ(cat::invalid_name("ROOT"), "'ROOT' is reserved: HTCondor maps 'root' to the host's /, and chrootctl never runs a job there");
  EXPECT_EQ(cat::invalid_name("-el9"), "'-el9' must start with a letter or a digit");
  EXPECT_EQ(cat::invalid_name("el 9"), "'el 9' may hold only letters, digits, '_', '-', '.' and '+'");
  EXPECT_EQ(cat::invalid_name("a=b"), "'a=b' may hold only letters, digits, '_', '-', '.' and '+'");
  EXPECT_EQ(cat::invalid_name("a,b"), "'a,b' may hold only letters, digits, '_', '-', '.' and '+'");
  EXPECT_EQ(cat::invalid_name("a/b"), "'a/b' may hold only letters, digits, '_', '-', '.' and '+'");
  EXPECT_EQ(cat::invalid_name(std::string(65, 'x')), "'" + std::string(65, 'x') + "' is longer than 64 bytes");
  // "root" is reserved only as a whole name.
  EXPECT_EQ(cat::invalid_name("rootfs"), std::nullopt);
}

TEST(CatalogueFormat, RoundTripIsExact) {
  const auto c = sample();
  const std::string text = cat::serialize(c);
  auto back = cat::parse(text, "catalogue.toml");
  ASSERT_TRUE(back) << back.error().what();
  EXPECT_EQ(back->entries, c.entries);
  EXPECT_EQ(cat::serialize(*back), text);
}

TEST(CatalogueFormat, CanonicalText) {
  cat::Catalogue c;
  cat::Entry e;
  e.name = "EL9";
  e.current = version("b1");
  e.aliases = {"RHEL9"};
  c.insert(e);
  const std::string text = cat::serialize(c);
  const std::string body = text.substr(text.find("format = 1\n"));
  EXPECT_EQ(body,
            "format = 1\n"
            "\n"
            "[entry.\"EL9\"]\n"
            "aliases = [\"RHEL9\"]\n"
            "image = \"/srv/images/el9/b1\"\n"
            "root = \"/srv/images/el9/b1/root\"\n"
            "digest = \"" +
                std::string(64, 'a') +
                "\"\n"
                "build_id = \"b1\"\n"
                "recipe = \"el9\"\n"
                "added_at = 1700000000\n"
                "verified_at = 1700000100\n"
                "identity = { dev = 2049, ino = 131075, uid = 0, gid = 0, mode = \"0755\" }\n");
}

TEST(CatalogueFormat, ASealedVersionRecordsItsImageFile) {
  cat::Catalogue c;
  cat::Entry e;
  e.name = "EL9";
  e.current = version("b1");
  e.current.root = "/srv/images/el9/b1/image.erofs";
  manifest::Sealed s;
  s.format = "erofs";
  s.size = 8192;
  s.sha256 = std::string(64, 'c');
  s.hash_offset = 4096;
  s.root_hash = std::string(64, 'd');
  s.salt = std::string(64, 'e');
  e.current.sealed = s;
  c.insert(e);
  const std::string text = cat::serialize(c);
  EXPECT_NE(text.find("root = \"/srv/images/el9/b1/image.erofs\"\n"), std::string::npos) << text;
  EXPECT_NE(text.find("sealed = { format = \"erofs\", size = 8192, sha256 = \"" + std::string(64, 'c') + "\", hash_offset = 4096, root_hash = \"" +
                      std::string(64, 'd') + "\", salt = \"" + std::string(64, 'e') + "\" }\n"),
            std::string::npos)
      << text;
  auto back = cat::parse(text, "catalogue.toml");
  ASSERT_TRUE(back) << back.error().what();
  EXPECT_EQ(back->entries, c.entries);
  // A record that the manifest's rules refuse is refused here too.
  std::string bad = text;
  bad.replace(bad.find("hash_offset = 4096"), 18, "hash_offset = 4097");
  auto r = cat::parse(bad, "catalogue.toml");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().what().find("'sealed' is not a valid sealed image record"), std::string::npos) << r.error().what();
}

TEST(CatalogueFormat, ASealedVersionRecordsTheManifestBytesThatPassed) {
  cat::Catalogue c;
  cat::Entry e;
  e.name = "EL9";
  e.current = version("b1");
  e.current.root = "/srv/images/el9/b1/image.erofs";
  e.current.sealed = manifest::Sealed{"erofs", 8192, std::string(64, 'c'), 4096, std::string(64, 'd'), std::string(64, 'e')};
  e.current.manifest_sha256 = std::string(64, 'f');
  c.insert(e);
  const std::string text = cat::serialize(c);
  EXPECT_NE(text.find(" }\nmanifest_sha256 = \"" + std::string(64, 'f') + "\"\n"), std::string::npos) << text;
  auto back = cat::parse(text, "catalogue.toml");
  ASSERT_TRUE(back) << back.error().what();
  EXPECT_EQ(back->entries, c.entries);
  std::string bad = text;
  bad.replace(bad.find("manifest_sha256 = \"f"), 19, "manifest_sha256 = \"F");
  auto r = cat::parse(bad, "catalogue.toml");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().what().find("'manifest_sha256' must be 64 lowercase hex digits"), std::string::npos) << r.error().what();
  // Only a sealed image has one: a directory image's full verify walks its tree anyway.
  std::string unsealed = text;
  const auto at = unsealed.find("sealed = {");
  unsealed.erase(at, unsealed.find('\n', at) - at + 1);
  r = cat::parse(unsealed, "catalogue.toml");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().what().find("'manifest_sha256' is recorded for sealed images only"), std::string::npos) << r.error().what();
}

TEST(CatalogueFormat, LookupByNameAndAlias) {
  const auto c = sample();
  ASSERT_NE(c.find("EL9"), nullptr);
  EXPECT_EQ(c.find("el9"), nullptr);  // case-sensitive
  EXPECT_EQ(c.find("RHEL9"), nullptr);
  ASSERT_NE(c.find_any("RHEL9"), nullptr);
  EXPECT_EQ(c.find_any("RHEL9")->name, "EL9");
  EXPECT_EQ(c.find_any("rhel9"), nullptr);
  EXPECT_EQ(c.alias_target("Rocky9")->name, "EL9");
  EXPECT_EQ(c.names(), (std::vector<std::string>{"EL9", "RHEL9", "Rocky9", "SL6.x86_64+gpu"}));
}

std::string parse_error(const std::string& text) {
  auto r = cat::parse(text, "/store/catalogue.toml");
  if (r) return "parsed";
  EXPECT_EQ(r.error().code(), Errc::parse);
  return r.error().what();
}

const char* k_good_version =
    "image = \"/i/b1\"\n"
    "root = \"/i/b1/root\"\n"
    "digest = \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\n"
    "build_id = \"b1\"\n"
    "recipe = \"el9\"\n"
    "added_at = 1\n"
    "verified_at = 2\n"
    "identity = { dev = 1, ino = 2, uid = 0, gid = 0, mode = \"0755\" }\n";

TEST(CatalogueDamage, TomlSyntaxErrorNamesLineAndColumn) {
  const std::string text = std::string("format = 1\n\n[entry.\"EL9\"]\naliases = [\"A\",\n") + k_good_version;
  const std::string err = parse_error(text);
  // The unclosed array swallows the next line, where TOML++ finds the error.
  EXPECT_EQ(err.substr(0, err.find(": error: ")), "/store/catalogue.toml:5:2") << err;
}

TEST(CatalogueDamage, TruncatedFileIsAnError) {
  const std::string full = std::string("format = 1\n\n[entry.\"EL9\"]\naliases = []\n") + k_good_version;
  const std::string cut = full.substr(0, full.find("mode = ") + 9);
  const std::string err = parse_error(cut);
  EXPECT_NE(err.find("/store/catalogue.toml:12:"), std::string::npos) << err;
}

TEST(CatalogueDamage, SemanticErrorsAreAllReportedWithPositions) {
  const std::string text =
      "format = 1\n"
      "\n"
      "[entry.\"root\"]\n"
      "aliases = [\"EL9\", \"bad name\"]\n"
      "image = \"relative/b1\"\n"
      "root = \"/i/b1/root\"\n"
      "digest = \"ABC\"\n"
      "build_id = \"b1\"\n"
      "recipe = \"el9\"\n"
      "added_at = -1\n"
      "verified_at = 2\n"
      "verifed_at = 2\n"
      "identity = { dev = 1, ino = 2, uid = 0, gid = 0, mode = \"755\" }\n"
      "\n"
      "[entry.\"EL9\"]\n" +
      std::string(k_good_version);
  const std::string err = parse_error(text);
  EXPECT_NE(err.find("/store/catalogue.toml:3:8: error: bad entry name: 'root' is reserved"), std::string::npos) << err;
  EXPECT_NE(err.find("/store/catalogue.toml:4:12: error: alias 'EL9' is already the name of an entry or another alias"), std::string::npos) << err;
  EXPECT_NE(err.find("/store/catalogue.toml:4:19: error: bad alias: 'bad name' may hold only letters"), std::string::npos) << err;
  EXPECT_NE(err.find("/store/catalogue.toml:5:9: error: 'image' must be an absolute path"), std::string::npos) << err;
  EXPECT_NE(err.find("/store/catalogue.toml:7:10: error: 'digest' must be 64 lowercase hex digits"), std::string::npos) << err;
  EXPECT_NE(err.find("/store/catalogue.toml:10:12: error: 'entry.root.added_at' must not be negative"), std::string::npos) << err;
  EXPECT_NE(err.find("/store/catalogue.toml:12:1: error: unknown key 'entry.root.verifed_at' (did you mean 'verified_at'?)"), std::string::npos)
      << err;
  EXPECT_NE(err.find("/store/catalogue.toml:13:57: error: 'identity.mode' must be four octal digits"), std::string::npos) << err;
  EXPECT_NE(err.find("8 errors in /store/catalogue.toml"), std::string::npos) << err;
}

TEST(CatalogueDamage, MissingKeysAndUnknownFormat) {
  EXPECT_NE(parse_error("format = 2\n").find("/store/catalogue.toml:1:10: error: unsupported catalogue format 2 (this chrootctl reads format 1)"),
            std::string::npos);
  EXPECT_NE(parse_error("[entry]\n").find("missing required key 'format'"), std::string::npos);
  const std::string err = parse_error("format = 1\n[entry.\"EL9\"]\nimage = \"/i/b1\"\n");
  EXPECT_NE(err.find("missing required key 'entry.EL9.digest'"), std::string::npos) << err;
  EXPECT_NE(err.find("missing required key 'entry.EL9.identity'"), std::string::npos) << err;
}

TEST(CatalogueDamage, EmptyTextIsAnErrorNotAnEmptyCatalogue) {
  // A zero-length catalogue.toml is damage (a missing file is the empty catalogue).
  EXPECT_NE(parse_error("").find("missing required key 'format'"), std::string::npos);
}

// ---- evaluate: the states decided without touching the file system ----

Settings settings() {
  Settings s;
  s.store = "/nonexistent-store";
  s.max_verify_age = 86400;
  return s;
}

TEST(CatalogueEvaluate, NeverVerified) {
  auto v = version("b1");
  v.verified_at = 0;
  auto ev = cat::evaluate(settings(), "EL9", {}, v, 1700000200);
  EXPECT_FALSE(ev.usable);
  EXPECT_EQ(ev.state, "unverified");
  EXPECT_EQ(ev.reason, "it has never been verified");
}

TEST(CatalogueEvaluate, FailedStaysFailedEvenWhenRecent) {
  auto v = version("b1");
  v.failed_at = 1700000150;
  v.failure = "1 difference: changed /etc/hosts size 3 -> 4";
  auto ev = cat::evaluate(settings(), "EL9", {}, v, 1700000200);
  EXPECT_FALSE(ev.usable);
  EXPECT_EQ(ev.state, "failed");
  EXPECT_EQ(ev.reason,
            "its verification at 2023-11-14T22:15:50Z failed: 1 difference: changed /etc/hosts size 3 -> 4 "
            "(it stays unusable until 'chrootctl verify EL9' passes)");
}

TEST(CatalogueEvaluate, ExpiredAfterMaxAge) {
  auto v = version("b1");
  auto ev = cat::evaluate(settings(), "EL9", {}, v, v.verified_at + 86401);
  EXPECT_FALSE(ev.usable);
  EXPECT_EQ(ev.state, "expired");
  EXPECT_EQ(ev.reason,
            "its last full verification was at 2023-11-14T22:15:00Z, 1d 0h ago, longer than max_verify_age (1d 0h); "
            "run 'chrootctl verify EL9'");
  Settings s = settings();
  s.max_verify_age = 3600;
  EXPECT_EQ(cat::evaluate(s, "EL9", {}, v, v.verified_at + 3601).state, "expired");
}

TEST(CatalogueEvaluate, VerificationInTheFutureIsNotTrusted) {
  auto v = version("b1");
  auto ev = cat::evaluate(settings(), "EL9", {}, v, v.verified_at - 301);
  EXPECT_EQ(ev.state, "expired");
  EXPECT_EQ(ev.reason,
            "its last verification is recorded at 2023-11-14T22:15:00Z, in the future (was the clock changed?); "
            "run 'chrootctl verify EL9'");
}

TEST(CatalogueEvaluate, UnsignedWhenSignaturesAreRequired) {
  Settings s = settings();
  s.require_signature = true;
  s.config_file = "/etc/chrootctl/config.toml";
  auto ev = cat::evaluate(s, "EL9", {}, version("b1"), 1700000200);
  EXPECT_EQ(ev.state, "unsigned");
  EXPECT_EQ(ev.reason, "it is not signed and require_signature is set in /etc/chrootctl/config.toml");
}

TEST(CatalogueEvaluate, MissingRootIsUntrusted) {
  auto v = version("b1");
  v.root = "/nonexistent-chrootctl-test/el9/b1/root";
  auto ev = cat::evaluate(settings(), "EL9", {}, v, 1700000200);
  EXPECT_FALSE(ev.usable);
  EXPECT_EQ(ev.state, "untrusted");
  EXPECT_EQ(ev.reason, "lstat('/nonexistent-chrootctl-test'): No such file or directory");
}

TEST(CatalogueResolve, RefusesReservedAndUnknownNamesWithoutTouchingTheHost) {
  const auto c = sample();
  auto r = cat::resolve_in(settings(), c, "root");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::invalid_argument);
  EXPECT_TRUE(cat::is_refusal(r.error()));
  auto e = cat::resolve_in(settings(), c, "");
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().what(), "cannot resolve '': a name must not be empty");
  auto u = cat::resolve_in(settings(), c, "el9");
  ASSERT_FALSE(u);
  EXPECT_EQ(u.error().code(), Errc::not_found);
  EXPECT_EQ(u.error().what(), "'el9' is not in the catalogue /nonexistent-store/catalogue.toml (did you mean 'EL9'? names are case-sensitive)");
}

TEST(CatalogueFormatting, TimesAndDurations) {
  EXPECT_EQ(cat::format_time(0), "never");
  EXPECT_EQ(cat::format_time(1700000000), "2023-11-14T22:13:20Z");
  EXPECT_EQ(cat::format_duration(42), "42s");
  EXPECT_EQ(cat::format_duration(125), "2m 5s");
  EXPECT_EQ(cat::format_duration(7500), "2h 5m");
  EXPECT_EQ(cat::format_duration(90000), "1d 1h");
}

TEST(CatalogueFormat, AnEntryRecordsItsSystemCallPolicy) {
  cat::Catalogue c;
  cat::Entry e;
  e.name = "EL5";
  e.current = version("b1");
  e.seccomp = "none";
  c.insert(e);
  const std::string text = cat::serialize(c);
  EXPECT_NE(text.find("[entry.\"EL5\"]\naliases = []\nseccomp = \"none\"\nimage = "), std::string::npos) << text;
  auto back = cat::parse(text, "catalogue.toml");
  ASSERT_TRUE(back) << back.error().what();
  EXPECT_EQ(back->entries[0].seccomp, "none");
  std::string bad = text;
  bad.replace(bad.find("seccomp = \"none\""), 16, "seccomp = \"off\"");
  auto refused = cat::parse(bad, "catalogue.toml");
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().what().find(":8:11: error: 'seccomp' must be \"default\", \"none\" or the absolute path of a policy file"),
            std::string::npos)
      << refused.error().what();
}

}  // namespace
}  // namespace chrootctl
