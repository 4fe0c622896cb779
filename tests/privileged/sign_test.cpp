// Signing real, root-owned builds: what add, verify and resolve accept and refuse under
// require_signature, revoked and removed keys, damaged signatures, and the safety of the key
// directories. Needs root: job roots and key directories must be root-owned.
#include <sys/stat.h>
#include <unistd.h>

#include "sign_fixture.hpp"

namespace chrootctl::test::sign {
namespace {

TEST_F(SignedImages, SignWritesTheStatementAndRecordsATrustedSigner) {
  CHROOTCTL_REQUIRE_TOOL("openssl");
  const std::string dir = make_build("el9", "b1");
  add("EL9", dir);
  const auto key = make_key();
  trust(key);
  const auto r = sign("EL9", key);
  EXPECT_EQ(r.image, dir);
  EXPECT_EQ(r.key_id, key.id);
  EXPECT_EQ(r.recorded, std::vector<std::string>{"EL9"});
  EXPECT_TRUE(r.notes.empty());
  const std::string text = read_file(dir + "/signature");
  const std::string lock_digest = sh(str("sha256sum '", dir, "/lock' | cut -c1-64")).out;
  EXPECT_EQ(text.substr(text.find("#statement\n")), str("#statement\nchrootctl-image-statement 1\nrecipe el9\nbuild-id b1\ntree-digest sha256:",
                                                        digest_of(dir), "\nlock-digest sha256:", lock_digest));
  struct stat st {};
  ASSERT_EQ(::stat((dir + "/signature").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  EXPECT_EQ(load(s).find("EL9")->current.signer, key.id);

  Settings required = s;
  required.require_signature = true;
  auto res = cat::resolve(required, "EL9");
  ASSERT_TRUE(res) << res.error().what();
  EXPECT_EQ(res->root, dir + "/root");
  // The signature verifies independently with OpenSSL over the statement's bytes.
  write_file(path("statement"), text.substr(text.find("#statement\n") + 11));
  const std::string b64 = text.substr(text.find("\nsignature ") + 11, 88);
  ASSERT_EQ(sh(str("echo '", b64, "' | base64 -d > '", path("sig.bin"), "'")).exit_code, 0);
  auto v =
      sh(str("openssl pkeyutl -verify -pubin -inkey '", key.public_file, "' -rawin -in '", path("statement"), "' -sigfile '", path("sig.bin"), "'"));
  EXPECT_EQ(v.out, "Signature Verified Successfully\n") << v.err;
}

TEST_F(SignedImages, SignByDirectoryAndWithAnUntrustedKeyRecordsNoSigner) {
  const std::string dir = make_build("el9", "b1");
  add("EL9", dir);
  const auto key = make_key();  // not trusted on this host
  auto r = sign(dir, key);
  EXPECT_TRUE(r.recorded.empty());
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_EQ(r.notes[0], str("this host does not accept the signature (it is signed by key ", key.id,
                            ", which is not trusted here: it is not one of the trusted keys in ", trusted, "), so no signer is recorded"));
  EXPECT_EQ(load(s).find("EL9")->current.signer, "");
  EXPECT_TRUE(cat::resolve(s, "EL9")) << "unsigned images are fine without require_signature";
  auto bad = dist::sign_image(s, "EL8", key.private_file);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().what(), str("'EL8' is not in the catalogue ", s.store,
                                    "/catalogue.toml (a build directory must be given with a '/', e.g. ./EL8); did you mean 'EL9'?"));
}

TEST_F(SignedImages, SignRefusesATreeThatDoesNotMatchItsManifest) {
  const std::string dir = make_build("el9", "b1");
  const auto key = make_key();
  write_file(dir + "/root/etc/hosts", "6.6.6.6 localhost\n");
  auto r = dist::sign_image(s, dir, key.private_file);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::mismatch);
  const std::string msg = r.error().what();
  EXPECT_EQ(msg.substr(0, msg.find('\n')), str("refusing to sign '", dir, "': its root does not match its manifest (1 difference):"));
  EXPECT_FALSE(sys::lstat_path(dir + "/signature")) << "nothing may be signed";
}

TEST_F(SignedImages, RequireSignatureRefusesUnsignedImagesAtAddAndResolve) {
  const std::string dir = make_build("el9", "b1");
  add("EL9", dir);
  Settings required = s;
  required.require_signature = true;
  required.config_file = "/etc/chrootctl/config.toml";
  EXPECT_EQ(resolve_error("EL9", required), "'EL9' is not usable: it is not signed and require_signature is set in /etc/chrootctl/config.toml");
  const std::string dir2 = make_build("el9", "b2", "10.0.0.2 localhost\n");
  auto a = cat::add(required, "EL9", dir2);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code(), Errc::permission);
  EXPECT_EQ(a.error().what(),
            str("refusing to add '", dir2, "' as 'EL9': it is not signed and require_signature is set in /etc/chrootctl/config.toml"));
  // Signed by a key this host does not trust: still refused, saying so.
  const auto stranger = make_key();
  sign(dir2, stranger);
  a = cat::add(required, "EL9", dir2);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().what(), str("refusing to add '", dir2, "' as 'EL9': it is signed by key ", stranger.id,
                                  ", which is not trusted here: it is not one of the trusted keys in ", trusted,
                                  "; require_signature is set in /etc/chrootctl/config.toml"));
  trust(stranger);
  auto ok = cat::add(required, "EL9", dir2);
  ASSERT_TRUE(ok) << ok.error().what();
  EXPECT_EQ(ok->entry.current.signer, stranger.id);
  EXPECT_TRUE(cat::resolve(required, "EL9"));
}

TEST_F(SignedImages, ARevokedKeyInvalidatesEveryImageItSignedEvenWithoutRequireSignature) {
  const auto key = make_key();
  trust(key);
  const std::string b1 = make_build("el9", "b1");
  const std::string b2 = make_build("sl7", "b1", "10.0.0.7 localhost\n");
  sign(b1, key);
  sign(b2, key);
  EXPECT_EQ(add("EL9", b1).entry.current.signer, key.id);
  EXPECT_EQ(add("SL7", b2).entry.current.signer, key.id);
  ASSERT_TRUE(cat::resolve(s, "EL9"));
  revoke(key);
  for (const char* name : {"EL9", "SL7"})
    EXPECT_EQ(resolve_error(name, s),
              str("'", name, "' is not usable: it is signed by key ", key.id, ", which is revoked (", revoked, "/", key.id, ".pub)"));
  const auto c = load(s);
  EXPECT_EQ(cat::evaluate(s, "EL9", {}, c.find("EL9")->current, sys::now_unix()).state, "revoked");
  // A new add refuses it, and a full verification records the failure.
  const std::string b3 = make_build("el9", "b3", "10.0.0.3 localhost\n");
  sign(b3, key);
  auto a = cat::add(s, "EL9", b3);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().what(),
            str("refusing to add '", b3, "' as 'EL9': it is signed by key ", key.id, ", which is revoked (", revoked, "/", key.id, ".pub)"));
  auto v = cat::verify(s, {"EL9"});
  ASSERT_TRUE(v) << v.error().what();
  EXPECT_FALSE((*v)[0].passed);
  EXPECT_EQ((*v)[0].error, str("signature: it is signed by key ", key.id, ", which is revoked (", revoked, "/", key.id, ".pub)"));
  // Revocation wins even if the key is also put back among the trusted ones.
  trust(key);
  EXPECT_NE(resolve_error("SL7", s).find("which is revoked"), std::string::npos);
  // The key-id line is not signed: naming another key does not turn a revoked signature into
  // one of an unknown key (which an unsigned-tolerant site would register).
  std::string renamed = read_file(b3 + "/signature");
  renamed.replace(renamed.find("key-id " + key.id), 7 + key.id.size(), "key-id 0000000000000000");
  write_file(b3 + "/signature", renamed);
  a = cat::add(s, "SL7B", b3);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().what(),
            str("refusing to add '", b3, "' as 'SL7B': it is signed by key ", key.id, ", which is revoked (", revoked, "/", key.id, ".pub)"));
}

TEST_F(SignedImages, AnImageRegisteredAsSignedIsRefusedWhenItsKeyOrSignatureGoes) {
  const auto key = make_key();
  trust(key);
  const std::string dir = make_build("el9", "b1");
  sign(dir, key);
  add("EL9", dir);
  ASSERT_EQ(::unlink(str(trusted, "/", key.id, ".pub").c_str()), 0);
  EXPECT_EQ(resolve_error("EL9", s), str("'EL9' is not usable: it was registered as signed, but its key ", key.id,
                                         " is no longer trusted here: it is not one of the trusted keys in ", trusted));
  trust(key);
  ASSERT_TRUE(cat::resolve(s, "EL9"));
  ASSERT_EQ(::rename((dir + "/signature").c_str(), path("signature.saved").c_str()), 0);
  EXPECT_EQ(resolve_error("EL9", s), str("'EL9' is not usable: it was registered as signed, but ", dir, "/signature is gone"));
  ASSERT_EQ(::rename(path("signature.saved").c_str(), (dir + "/signature").c_str()), 0);
  ASSERT_TRUE(cat::resolve(s, "EL9"));
}

TEST_F(SignedImages, AnAlteredSignatureOrLockIsRefusedAndResolveNeverReadsTheTree) {
  const auto key = make_key();
  trust(key);
  const std::string dir = make_build("el9", "b1");
  sign(dir, key);
  add("EL9", dir);
  const std::string original = read_file(dir + "/signature");
  std::string altered = original;
  altered.replace(altered.find("build-id b1"), 11, "build-id b2");
  write_file(dir + "/signature", altered);
  EXPECT_EQ(resolve_error("EL9", s), str("'EL9' is not usable: its signature by key ", key.id, " does not verify (", dir, "/signature was altered)"));
  // Nor may the key-id line name another key than the trusted one that signed.
  altered = original;
  altered.replace(altered.find("key-id " + key.id), 7 + key.id.size(), "key-id 0000000000000000");
  write_file(dir + "/signature", altered);
  EXPECT_EQ(resolve_error("EL9", s),
            str("'EL9' is not usable: it is signed by trusted key ", key.id, " but names key 0000000000000000 (", dir, "/signature was altered)"));
  write_file(dir + "/signature", original);
  const std::string old_lock = sh(str("sha256sum '", dir, "/lock' | cut -c1-64 | tr -d '\\n'")).out;
  write_file(dir + "/lock", read_file(dir + "/lock") + "# edited\n");
  const std::string new_lock = sh(str("sha256sum '", dir, "/lock' | cut -c1-64 | tr -d '\\n'")).out;
  EXPECT_EQ(resolve_error("EL9", s), str("'EL9' is not usable: its signature by key ", key.id, " is for lock digest ", old_lock, ", not ", new_lock));
  write_file(dir + "/lock", read_file(dir + "/lock").substr(0, read_file(dir + "/lock").size() - 9));
  ASSERT_TRUE(cat::resolve(s, "EL9"));
  // A signature file anyone may rewrite is not trusted.
  ASSERT_EQ(::chmod((dir + "/signature").c_str(), 0666), 0);
  EXPECT_EQ(resolve_error("EL9", s), str("'EL9' is not usable: cannot read its signature: '", dir, "/signature' is writable by others (mode 0666)"));
  ASSERT_EQ(::chmod((dir + "/signature").c_str(), 0644), 0);
  // resolve checks the statement, not the tree: a changed file is found by verify, not here.
  write_file(dir + "/root/etc/os-release", "ID=evil\n");
  EXPECT_TRUE(cat::resolve(s, "EL9"));
  auto v = cat::verify(s, {"EL9"});
  ASSERT_TRUE(v);
  EXPECT_FALSE((*v)[0].passed);
}

TEST_F(SignedImages, KeyDirectoriesMustBeRootOwnedAndHoldOnlyPublicKeys) {
  const auto key = make_key();
  trust(key);
  const std::string dir = make_build("el9", "b1");
  sign(dir, key);
  add("EL9", dir);
  ASSERT_EQ(::chmod(trusted.c_str(), 0777), 0);
  EXPECT_EQ(resolve_error("EL9", s),
            str("'EL9' is not usable: refusing to trust the signing keys: trusted key directory '", trusted, "' is writable by others (mode 0777)"));
  ASSERT_EQ(::chmod(trusted.c_str(), 0755), 0);
  ASSERT_EQ(::chown(str(trusted, "/", key.id, ".pub").c_str(), 1000, 0), 0);
  EXPECT_EQ(resolve_error("EL9", s), str("'EL9' is not usable: refusing to trust the signing keys: reading the trusted key ", trusted, "/", key.id,
                                         ".pub: '", trusted, "/", key.id, ".pub' is owned by uid 1000, not root"));
  ASSERT_EQ(::chown(str(trusted, "/", key.id, ".pub").c_str(), 0, 0), 0);
  mkdirs(revoked);
  ASSERT_EQ(::chmod(revoked.c_str(), 0775), 0);
  EXPECT_EQ(resolve_error("EL9", s),
            str("'EL9' is not usable: refusing to trust the signing keys: revoked key directory '", revoked, "' is writable by group (mode 0775)"));
  ASSERT_EQ(::chmod(revoked.c_str(), 0755), 0);
  ASSERT_EQ(sh(str("cp '", key.private_file, "' '", trusted, "/oops.pub'")).exit_code, 0);
  EXPECT_EQ(resolve_error("EL9", s), str("'EL9' is not usable: refusing to trust the signing keys: '", trusted,
                                         "/oops.pub' holds a private key; only public keys (KEYID.pub) belong in ", trusted));
  ASSERT_EQ(::unlink(str(trusted, "/oops.pub").c_str()), 0);
  auto t = cat::load_trust_store(trusted);
  ASSERT_TRUE(t) << t.error().what();
  ASSERT_EQ(t->trusted.size(), 1u);
  EXPECT_EQ(t->trusted[0].id(), key.id);
  EXPECT_TRUE(t->revoked.empty());
}

TEST_F(SignedImages, VerifyRecordsASignatureAddedAfterRegistration) {
  const std::string dir = make_build("el9", "b1");
  add("EL9", dir);
  const auto key = make_key();
  trust(key);
  // Signed behind the catalogue's back (a copy of the signature from the image host):
  // the next full verification records the signer.
  Settings elsewhere = s;
  elsewhere.store = path("nowhere");
  auto r = dist::sign_image(elsewhere, dir, key.private_file);
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(load(s).find("EL9")->current.signer, "");
  auto v = cat::verify(s, {"EL9"});
  ASSERT_TRUE(v) << v.error().what();
  EXPECT_TRUE((*v)[0].passed) << (*v)[0].error;
  EXPECT_EQ(load(s).find("EL9")->current.signer, key.id);
}

}  // namespace
}  // namespace chrootctl::test::sign
