// Signing without privilege: Ed25519 keys, the canonical statement and signature file, the
// verdict for every kind of signature, and the strict parsers of the export entry and the
// published catalogue fragment.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chrootctl/catalogue/sign.hpp"
#include "chrootctl/common/sha256.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/distribution/export.hpp"
#include "chrootctl/distribution/publish.hpp"
#include "test_support.hpp"

namespace chrootctl {
namespace {

namespace cat = catalogue;
namespace dist = distribution;

const std::string k_tree(64, 'a');
const std::string k_lock(64, 'b');

cat::Statement statement() { return {"el9", "0123456789ab-cdef0123", k_tree, k_lock, {}, {}}; }

std::optional<manifest::Sealed> mf_sealed(const std::string& sha256, const std::string& root_hash) {
  manifest::Sealed s;
  s.format = "erofs";
  s.size = 8192;
  s.sha256 = sha256;
  s.hash_offset = 4096;
  s.root_hash = root_hash;
  s.salt = std::string(64, 'e');
  return s;
}

cat::Key new_key() {
  auto k = cat::generate_key();
  EXPECT_TRUE(k) << k.error().what();
  return *k;
}

std::string signature_text(const cat::Key& k, const cat::Statement& st) {
  cat::Signature sig;
  sig.key_id = k.id();
  sig.statement = st;
  sig.statement_text = cat::render_statement(st);
  sig.value = k.sign(sig.statement_text).value();
  return cat::render_signature(sig);
}

TEST(SignStatement, CanonicalBytesRoundTrip) {
  const std::string text = cat::render_statement(statement());
  EXPECT_EQ(text, str("chrootctl-image-statement 1\nrecipe el9\nbuild-id 0123456789ab-cdef0123\ntree-digest sha256:", k_tree,
                      "\nlock-digest sha256:", k_lock, "\n"));
  auto back = cat::parse_statement(text, "s");
  ASSERT_TRUE(back) << back.error().what();
  EXPECT_EQ(*back, statement());
}

TEST(SignStatement, ASealedImagesStatementNamesItsFileAndRootHash) {
  const std::string image(64, 'c'), root(64, 'd');
  const cat::Statement st = cat::with_sealed(statement(), mf_sealed(image, root));
  const std::string text = cat::render_statement(st);
  EXPECT_EQ(text, str("chrootctl-image-statement 2\nrecipe el9\nbuild-id 0123456789ab-cdef0123\ntree-digest sha256:", k_tree,
                      "\nlock-digest sha256:", k_lock, "\nimage-sha256 sha256:", image, "\nverity-root-hash sha256:", root, "\n"));
  auto back = cat::parse_statement(text, "s");
  ASSERT_TRUE(back) << back.error().what();
  EXPECT_EQ(*back, st);
  // Version 1 with seven lines, version 2 with five: refused.
  std::string v1 = text;
  v1.replace(v1.find(" 2\n"), 3, " 1\n");
  EXPECT_EQ(cat::parse_statement(v1, "s").error().what(), "s: not a chrootctl image statement: expected five lines");
  const std::string v2 = str("chrootctl-image-statement 2\n", cat::render_statement(statement()).substr(28));
  EXPECT_EQ(cat::parse_statement(v2, "s").error().what(), "s: not a chrootctl image statement: expected seven lines");
  std::string bad = text;
  bad.replace(bad.find("verity-root-hash"), 16, "verity-root-hask");
  EXPECT_EQ(cat::parse_statement(bad, "s").error().what(), "s: not a chrootctl image statement: line 7 must be 'verity-root-hash sha256:HEX'");
}

TEST(SignStatement, AnythingButTheCanonicalFormIsRefused) {
  const std::string good = cat::render_statement(statement());
  auto err = [](const std::string& text) {
    auto r = cat::parse_statement(text, "sig");
    return r ? std::string("parsed") : r.error().what();
  };
  EXPECT_EQ(err(good.substr(0, good.size() - 1)), "sig: not a chrootctl image statement: expected five lines");
  EXPECT_EQ(err(good + "extra 1\n"), "sig: not a chrootctl image statement: expected five lines");
  std::string two_spaces = good;
  two_spaces.replace(two_spaces.find("recipe "), 7, "recipe  ");
  EXPECT_EQ(err(two_spaces), "sig: not a chrootctl image statement: line 2 must be 'recipe NAME'");
  std::string upper = good;
  upper.replace(upper.find("aaaa"), 1, "A");
  EXPECT_EQ(err(upper), "sig: not a chrootctl image statement: line 4 must be 'tree-digest sha256:HEX'");
  std::string slash = good;
  slash.replace(slash.find("el9"), 3, "../x");
  EXPECT_EQ(err(slash), "sig: not a chrootctl image statement: line 2 must be 'recipe NAME'");
}

TEST(SignKeys, SignAndVerifyWithEd25519) {
  auto k = new_key();
  ASSERT_EQ(k.id().size(), 16u);
  EXPECT_EQ(k.raw_public().size(), 32u);
  EXPECT_EQ(k.id(), Sha256::hex(k.raw_public()).substr(0, 16));
  const std::string msg = cat::render_statement(statement());
  auto sig = k.sign(msg);
  ASSERT_TRUE(sig) << sig.error().what();
  EXPECT_EQ(sig->size(), 64u);
  EXPECT_TRUE(k.verify(msg, *sig));
  std::string flipped = msg;
  flipped[flipped.size() - 2] ^= 1;
  EXPECT_FALSE(k.verify(flipped, *sig));
  std::string bad = *sig;
  bad[10] ^= 0x40;
  EXPECT_FALSE(k.verify(msg, bad));
  EXPECT_FALSE(new_key().verify(msg, *sig));
  // The public half alone verifies and cannot sign.
  auto pub = cat::parse_key(k.public_pem().value(), "k.pub", false);
  ASSERT_TRUE(pub) << pub.error().what();
  EXPECT_EQ(pub->id(), k.id());
  EXPECT_TRUE(pub->verify(msg, *sig));
  EXPECT_EQ(pub->sign(msg).error().what(), str("key ", k.id(), " has no private half"));
}

TEST(SignKeys, PublicKeysParseTheSameWhateverTheirPemLayout) {
  auto k = new_key();
  const std::string pem = k.public_pem().value();
  // The common single-line form takes a fast path; anything else goes through OpenSSL.
  for (const std::string& text : {pem, pem + "\n", "# comment\n" + pem, std::string(pem).insert(pem.size() - 26, "\r")}) {
    auto p = cat::parse_key(text, "k.pub", false);
    if (text.find('\r') != std::string::npos && !p) continue;  // OpenSSL may refuse a CR inside the base64
    ASSERT_TRUE(p) << p.error().what() << "\n" << text;
    EXPECT_EQ(p->id(), k.id());
    EXPECT_EQ(p->raw_public(), k.raw_public());
  }
  // Not Ed25519: the fast path does not apply and OpenSSL says what it is not.
  auto bad =
      cat::parse_key("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VuAyEA" + std::string(43, 'A') + "=\n-----END PUBLIC KEY-----\n", "x25519.pub", false);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().what(), "'x25519.pub' is not an Ed25519 key");
}

class SignKeyFiles : public test::TempDirTest {};

TEST_F(SignKeyFiles, GenerateWritesAPrivateAndAPublicKeyThatOpenSSLReads) {
  CHROOTCTL_REQUIRE_TOOL("openssl");
  auto g = cat::generate_key_files(path("keys"));
  ASSERT_TRUE(g) << g.error().what();
  EXPECT_EQ(g->private_file, path("keys/" + g->id + ".key"));
  EXPECT_EQ(g->public_file, path("keys/" + g->id + ".pub"));
  struct stat st {};
  ASSERT_EQ(::stat(path("keys").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  ASSERT_EQ(::stat(g->private_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  ASSERT_EQ(::stat(g->public_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  // The key id, computed independently: SHA-256 of the last 32 bytes of the DER public key.
  auto id = test::sh(str("openssl pkey -pubin -in '", g->public_file, "' -outform DER | tail -c 32 | sha256sum | cut -c1-16"));
  EXPECT_EQ(id.out, g->id + "\n") << id.err;
  auto text = test::sh(str("openssl pkey -in '", g->private_file, "' -noout -text | head -1"));
  EXPECT_EQ(text.out, "ED25519 Private-Key:\n") << text.err;
  auto k = cat::load_private_key(g->private_file);
  ASSERT_TRUE(k) << k.error().what();
  EXPECT_EQ(k->id(), g->id);
  EXPECT_TRUE(k->has_private());
}

TEST_F(SignKeyFiles, PrivateKeysMustBeProtectedUnencryptedEd25519) {
  CHROOTCTL_REQUIRE_TOOL("openssl");
  auto g = cat::generate_key_files(path("keys"));
  ASSERT_TRUE(g) << g.error().what();
  ASSERT_EQ(::chmod(g->private_file.c_str(), 0640), 0);
  EXPECT_EQ(cat::load_private_key(g->private_file).error().what(),
            str("private key '", g->private_file, "' is accessible by group or others (mode 0640); make it mode 0600"));
  ASSERT_EQ(::chmod(g->private_file.c_str(), 0600), 0);
  ASSERT_EQ(::symlink(g->private_file.c_str(), path("link.key").c_str()), 0);
  EXPECT_EQ(cat::load_private_key(path("link.key")).error().what(), str("private key '", path("link.key"), "' is a symbolic link"));
  ASSERT_EQ(
      test::sh(str("umask 077; openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out '", path("rsa.key"), "' 2>/dev/null")).exit_code, 0);
  EXPECT_EQ(cat::load_private_key(path("rsa.key")).error().what(), str("'", path("rsa.key"), "' is not an Ed25519 key"));
  ASSERT_EQ(test::sh(str("umask 077; openssl genpkey -algorithm ED25519 -aes256 -pass pass:x -out '", path("enc.key"), "'")).exit_code, 0);
  EXPECT_EQ(cat::load_private_key(path("enc.key")).error().what(),
            str("'", path("enc.key"), "' is encrypted; chrootctl reads only unencrypted keys (protect the file instead: mode 0600)"));
  test::write_file(path("junk.key"), "not a key\n", 0600);
  const std::string junk = cat::load_private_key(path("junk.key")).error().what();
  EXPECT_EQ(junk.substr(0, junk.find(" (")), str("'", path("junk.key"), "' is not a PEM private key"));
}

TEST(SignFile, RoundTripAndStrictParsing) {
  auto k = new_key();
  const std::string text = signature_text(k, statement());
  EXPECT_EQ(text.substr(0, text.find("\nsignature ") + 1), str("#chrootctl-signature 1\nkey-id ", k.id(), "\nalgorithm ed25519\n"));
  EXPECT_EQ(text.substr(text.find("#statement\n")), "#statement\n" + cat::render_statement(statement()));
  auto sig = cat::parse_signature(text, "S");
  ASSERT_TRUE(sig) << sig.error().what();
  EXPECT_EQ(sig->key_id, k.id());
  EXPECT_EQ(sig->statement, statement());
  EXPECT_TRUE(k.verify(sig->statement_text, sig->value));
  EXPECT_EQ(cat::render_signature(*sig), text);

  auto err = [](const std::string& t) {
    auto r = cat::parse_signature(t, "S");
    return r ? std::string("parsed") : r.error().what();
  };
  EXPECT_EQ(err("hello\n"), "S: not a chrootctl signature: the first line must be '#chrootctl-signature 1'");
  std::string no_marker = text;
  no_marker.replace(no_marker.find("#statement"), 10, "#statemenT");
  EXPECT_EQ(err(no_marker), "S: not a chrootctl signature: no '#statement' line");
  std::string algo = text;
  algo.replace(algo.find("ed25519"), 7, "rsa2048");
  EXPECT_EQ(err(algo), "S: not a chrootctl signature: line 3 must be 'algorithm ed25519'");
  std::string b64 = text;
  const auto at = b64.find("\nsignature ") + 11;
  b64.insert(at, "AAAA");
  EXPECT_EQ(err(b64), "S: not a chrootctl signature: line 4 must be 'signature' and 64 bytes in canonical base64");
  std::string id = text;
  id.replace(id.find("key-id ") + 7, 1, "X");
  EXPECT_EQ(err(id), "S: not a chrootctl signature: line 2 must be 'key-id' and 16 lowercase hex digits");
}

// The verdict for each kind of signature, against keys held in memory.
class SignJudge : public ::testing::Test {
 protected:
  cat::SignatureVerdict judge(const std::optional<std::string>& text, bool unsigned_ok = false, const cat::Statement& expected = statement()) {
    cat::JudgeInput in;
    in.signature_text = text;
    in.signature_label = "IMG/signature";
    in.expected = [=]() -> Result<cat::Statement> { return expected; };
    in.unsigned_ok = unsigned_ok;
    in.trust = &trust;
    return cat::judge_signature(in);
  }
  void SetUp() override {
    trust.trusted_dir = "/etc/chrootctl/trusted.d";
    trust.revoked_dir = "/etc/chrootctl/revoked.d";
    trust.trusted_dir_exists = true;
    trust.trusted.push_back(site);
  }
  cat::Key site = new_key();
  cat::Key other = new_key();
  cat::TrustStore trust;
};

TEST_F(SignJudge, AValidSignatureByATrustedKeyIsSigned) {
  auto v = judge(signature_text(site, statement()));
  EXPECT_TRUE(v.acceptable);
  EXPECT_EQ(v.state, "signed");
  EXPECT_EQ(v.signer, site.id());
  EXPECT_EQ(v.reason, "");
}

TEST_F(SignJudge, NoSignatureOrAnUnknownKeyIsUnsignedAndAcceptableOnlyWhenAllowed) {
  auto none = judge(std::nullopt);
  EXPECT_FALSE(none.acceptable);
  EXPECT_EQ(none.state, "unsigned");
  EXPECT_EQ(none.reason, "it is not signed");
  EXPECT_TRUE(judge(std::nullopt, true).acceptable);
  auto unknown = judge(signature_text(other, statement()));
  EXPECT_FALSE(unknown.acceptable);
  EXPECT_EQ(unknown.state, "unsigned");
  EXPECT_EQ(unknown.signer, "");
  EXPECT_EQ(unknown.reason,
            str("it is signed by key ", other.id(), ", which is not trusted here: it is not one of the trusted keys in /etc/chrootctl/trusted.d"));
  EXPECT_TRUE(judge(signature_text(other, statement()), true).acceptable);
  trust.trusted_dir_exists = false;
  EXPECT_EQ(judge(signature_text(other, statement())).reason,
            str("it is signed by key ", other.id(), ", which is not trusted here: /etc/chrootctl/trusted.d does not exist"));
}

TEST_F(SignJudge, ARevokedKeyIsRefusedEvenIfStillTrusted) {
  trust.revoked.push_back(*cat::parse_key(site.public_pem().value(), "/etc/chrootctl/revoked.d/site.pub", false));
  auto v = judge(signature_text(site, statement()), true);
  EXPECT_FALSE(v.acceptable);
  EXPECT_EQ(v.state, "revoked");
  EXPECT_EQ(v.reason, str("it is signed by key ", site.id(), ", which is revoked (/etc/chrootctl/revoked.d/site.pub)"));
}

TEST_F(SignJudge, ASignatureThatDoesNotVerifyOrDescribesAnotherImageIsRefusedEvenWhenUnsignedIsAllowed) {
  std::string text = signature_text(site, statement());
  std::string altered = text;
  altered.replace(altered.find("recipe el9"), 10, "recipe el8");
  auto v = judge(altered, true);
  EXPECT_FALSE(v.acceptable);
  EXPECT_EQ(v.state, "bad-signature");
  EXPECT_EQ(v.reason, str("its signature by key ", site.id(), " does not verify (IMG/signature was altered)"));

  cat::Statement other_tree = statement();
  other_tree.tree_digest = std::string(64, 'c');
  v = judge(text, true, other_tree);
  EXPECT_EQ(v.state, "bad-signature");
  EXPECT_EQ(v.reason, str("its signature by key ", site.id(), " is for tree digest ", k_tree, ", not ", std::string(64, 'c')));
  cat::Statement other_lock = statement();
  other_lock.lock_digest = std::string(64, 'd');
  EXPECT_EQ(judge(text, true, other_lock).reason,
            str("its signature by key ", site.id(), " is for lock digest ", k_lock, ", not ", std::string(64, 'd')));
  cat::Statement other_build = statement();
  other_build.build_id = "b2";
  EXPECT_EQ(judge(text, true, other_build).reason, str("its signature by key ", site.id(), " is for build id 0123456789ab-cdef0123, not b2"));
  EXPECT_EQ(judge("garbage\n", true).state, "bad-signature");
}

TEST(SignTrust, RevokedDirectoryIsBesideTheTrustedOne) {
  EXPECT_EQ(cat::revoked_dir_for("/etc/chrootctl/trusted.d"), "/etc/chrootctl/revoked.d");
  EXPECT_EQ(cat::revoked_dir_for("/etc/chrootctl/trusted.d/"), "/etc/chrootctl/revoked.d");
  EXPECT_EQ(cat::revoked_dir_for("/keys"), "/revoked.d");
}

TEST(SignExportEntry, RoundTripAndStrictParsing) {
  dist::ExportEntry e{"EL9", "el9", "b1", k_tree, "0123456789abcdef", {"RHEL9"}, 1700000000};
  const std::string text = dist::render_export_entry(e);
  EXPECT_EQ(text, str("# chrootctl image export (docs/signing.md)\nformat = 1\nname = \"EL9\"\nrecipe = \"el9\"\nbuild_id = \"b1\"\ndigest = \"",
                      k_tree, "\"\nsigner = \"0123456789abcdef\"\naliases = [\"RHEL9\"]\nexported_at = 1700000000\n"));
  auto back = dist::parse_export_entry(text, "E");
  ASSERT_TRUE(back) << back.error().what();
  EXPECT_EQ(back->name, "EL9");
  EXPECT_EQ(back->aliases, std::vector<std::string>{"RHEL9"});
  auto bad = dist::parse_export_entry(
      "format = 1\nname = \"root\"\nrecipe = \"../x\"\nbuild_id = \"b1\"\ndigest = \"x\"\nexported_at = 1\nextra = 2\n", "E");
  ASSERT_FALSE(bad);
  const std::string msg = bad.error().what();
  EXPECT_NE(msg.find("E:2:8: error: bad name: 'root' is reserved"), std::string::npos) << msg;
  EXPECT_NE(msg.find("E:3:10: error: 'recipe' must be a recipe name"), std::string::npos) << msg;
  EXPECT_NE(msg.find("E:5:10: error: 'digest' must be 64 lowercase hex digits"), std::string::npos) << msg;
  EXPECT_NE(msg.find("E:7:1: error: unknown key 'extra'"), std::string::npos) << msg;
}

TEST(SignFragment, AFragmentCanOnlyNameItsOwnBuildDirectory) {
  dist::Fragment f{"EL9", "EL9/b1", "b1", "el9", k_tree, "", 1700000000};
  const std::string text = dist::render_fragment(f);
  EXPECT_EQ(text, str("# chrootctl published image (docs/signing.md): chrootctl add --from DIR EL9\nformat = 1\nname = \"EL9\"\n"
                      "image = \"EL9/b1\"\nbuild_id = \"b1\"\nrecipe = \"el9\"\ndigest = \"",
                      k_tree, "\"\npublished_at = 1700000000\n"));
  auto back = dist::parse_fragment(text, "F");
  ASSERT_TRUE(back) << back.error().what();
  EXPECT_EQ(back->image, "EL9/b1");
  std::string escape = text;
  escape.replace(escape.find("\"EL9/b1\""), 8, "\"../../etc\"");
  auto r = dist::parse_fragment(escape, "F");
  ASSERT_FALSE(r);
  const std::string msg = r.error().what();
  EXPECT_EQ(msg.substr(0, msg.find('\n')), "F:4:9: error: 'image' must be \"EL9/b1\"");
  std::string bad_id = text;
  bad_id.replace(bad_id.find("build_id = \"b1\""), 15, "build_id = \"../b\"");
  r = dist::parse_fragment(bad_id, "F");
  ASSERT_FALSE(r);
  EXPECT_NE(std::string(r.error().what()).find("F:5:12: error: 'build_id' must be a build id"), std::string::npos) << r.error().what();
}

}  // namespace
}  // namespace chrootctl
