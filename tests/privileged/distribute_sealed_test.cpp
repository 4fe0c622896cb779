// Sealed images everywhere but the launch itself (docs/sealed.md): signed, exported and
// imported as one file, published as one file and registered from there, audited and diffed
// through their mount, rolled back and collected. Runs on the development machine (the VM stage
// covers the launches: SealedImage, VerityImage).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sealed_fixture.hpp"

namespace chrootctl {
namespace {

using namespace test::sealed;
using test::read_file;

class DistributeSealed : public SealedFixture {
 protected:
  void SetUp() override {
    SealedFixture::SetUp();
    if (HasFatalFailure()) return;
    CHROOTCTL_REQUIRE_PRIVILEGE("root");
    CHROOTCTL_REQUIRE_PRIVILEGE("mount-ns");
    CHROOTCTL_REQUIRE_TOOL("mkfs.erofs");
    CHROOTCTL_REQUIRE_TOOL("zstd");
    trusted = path("keys/trusted.d");
    test::mkdirs(trusted);
    set_config("trusted_keys = \"" + trusted + "\"\n");
  }
  // A key pair, its public half trusted; returns the private key's path.
  std::string trusted_key() {
    auto g = ctl({"key", "generate", "--out", path("private")});
    EXPECT_EQ(g.exit_code, 0) << g.err;
    const std::string id = g.out.substr(4, 16);
    EXPECT_EQ(test::sh("cp '" + path("private/" + id + ".pub") + "' '" + trusted + "/'").exit_code, 0);
    return path("private/" + id + ".key");
  }
  std::string trusted;
};

TEST_F(DistributeSealed, ExportAndImportMoveTheImageFileAsIs) {
  build("dist");
  const std::string key = trusted_key();
  auto s = ctl({"sign", "dist", "--key", key, "--store", store});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  // The signed statement names the image file and its root hash.
  const std::string sig = read_file(build_dir + "/signature");
  EXPECT_NE(sig.find("chrootctl-image-statement 2\n"), std::string::npos) << sig;
  EXPECT_NE(sig.find("\nimage-sha256 sha256:" + sha256 + "\nverity-root-hash sha256:" + root_hash + "\n"), std::string::npos) << sig;
  const std::string archive = path("dist.tar.zst");
  auto e = ctl({"export", "dist", "-o", archive, "--store", store});
  ASSERT_EQ(e.exit_code, 0) << e.err;
  EXPECT_EQ(test::sh("zstd -q -d -c '" + archive + "' | tar -tf -").out,
            "chrootctl-export.toml\nmanifest\nlock\nrecipe.toml\nsignature\nimage.erofs\n");
  EXPECT_EQ(test::sh("zstd -q -d -c '" + archive + "' | tar -xOf - image.erofs | sha256sum | cut -c1-64").out, sha256 + "\n");

  const std::string store2 = path("store2");
  auto i = ctl({"import", archive, "--store", store2});
  ASSERT_EQ(i.exit_code, 0) << i.out << i.err;
  auto show = ctl({"show", "dist", "--store", store2, "--json"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  const std::string imported = json_value(show.out, "root");
  EXPECT_EQ(imported.substr(imported.size() - 12), "/image.erofs") << show.out;
  EXPECT_EQ(read_file(imported), read_file(image));
  EXPECT_EQ(json_value(show.out, "signer"), key.substr(key.size() - 20, 16));
  auto r = ctl({"run", "dist", "--store", store2, "--sandbox", sandbox, "--user", "nobody", "--", "/bin/sh", "-c", "head -c 30 /srv/marker"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "chrootctl sealed marker line 0");
  expect_nothing_left();
}

TEST_F(DistributeSealed, ImportChecksTheImageFileBeforeItWritesAnythingElse) {
  build("bad");
  const std::string archive = path("bad.tar.zst");
  ASSERT_EQ(ctl({"export", "bad", "-o", archive, "--store", store}).exit_code, 0);
  const std::string store2 = path("store2");
  auto nothing_left = [&] {
    EXPECT_FALSE(test::sh("ls '" + store2 + "/bad' 2>/dev/null").exit_code == 0) << "an image directory was left";
    EXPECT_EQ(test::sh("ls -A '" + store2 + "/.staging' 2>/dev/null").out, "");
    EXPECT_NE(test::sh("test -e '" + store2 + "/catalogue.toml'").exit_code, 0) << "the catalogue was written";
  };
  // One byte of the image file changed in the archive: its SHA-256 is not the manifest's.
  ASSERT_EQ(test::sh("cd '" + m_dir +
                     "' && mkdir x && cd x && zstd -q -d -c ../bad.tar.zst | tar -xf - && "
                     "printf 'Z' | dd of=image.erofs bs=1 seek=5000 conv=notrunc status=none && "
                     "tar --format=pax -cf - chrootctl-export.toml manifest lock recipe.toml image.erofs | zstd -q -o ../flipped.tar.zst")
                .exit_code,
            0);
  auto flipped = ctl({"import", path("flipped.tar.zst"), "--store", store2, "--allow-unsigned"});
  EXPECT_EQ(flipped.exit_code, 1) << flipped.out;
  EXPECT_NE(flipped.err.find("its image.erofs has SHA-256 "), std::string::npos) << flipped.err;
  nothing_left();
  // The manifest (unsigned) names another root hash: the file is whole, its hash tree is not
  // that root's, and libcryptsetup's check refuses it.
  ASSERT_EQ(test::sh("cd '" + m_dir +
                     "/x' && zstd -q -d -c ../bad.tar.zst | tar -xf - && "
                     "sed -i '2s/root-hash=[0-9a-f]*/root-hash=" +
                     std::string(64, '0') +
                     "/' manifest && "
                     "tar --format=pax -cf - chrootctl-export.toml manifest lock recipe.toml image.erofs | zstd -q -o ../roothash.tar.zst")
                .exit_code,
            0);
  auto rooted = ctl({"import", path("roothash.tar.zst"), "--store", store2, "--allow-unsigned"});
  EXPECT_EQ(rooted.exit_code, 1) << rooted.out;
  EXPECT_NE(rooted.err.find("does not match its dm-verity root hash " + std::string(64, '0')), std::string::npos) << rooted.err;
  nothing_left();
  // The genuine one imports.
  auto ok = ctl({"import", archive, "--store", store2, "--allow-unsigned"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

TEST_F(DistributeSealed, PublishPutsOneFileOnTheSharedFilesystem) {
  build("pub");
  const std::string shared = path("shared");
  auto p = ctl({"publish", "pub", shared, "--allow-unsigned", "--store", store});
  ASSERT_EQ(p.exit_code, 0) << p.err;
  const std::string build_id = build_dir.substr(build_dir.find_last_of('/') + 1);
  EXPECT_EQ(test::sh("ls '" + shared + "/pub/" + build_id + "'").out, "image.erofs\nlock\nmanifest\nrecipe.toml\n");
  EXPECT_EQ(read_file(shared + "/pub/" + build_id + "/image.erofs"), read_file(image));
  const std::string store2 = path("store2");
  auto a = ctl({"add", "--from", shared, "--store", store2});
  ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
  auto res = ctl({"resolve", "pub", "--store", store2});
  EXPECT_EQ(res.out, shared + "/pub/" + build_id + "/image.erofs\n") << res.err;
  auto r = ctl({"run", "pub", "--store", store2, "--sandbox", sandbox, "--user", "nobody", "--", "/bin/sh", "-c", "head -c 30 /srv/marker"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "chrootctl sealed marker line 0");
  expect_nothing_left();
}

TEST_F(DistributeSealed, ARecipeDerivesFromASealedImage) {
  build("base");
  // image = "base": the builder reads the sealed image through its mount, and checks the copy
  // against its manifest.
  test::write_file(path("derived.toml"), "name = \"derived\"\n[base]\nimage = \"base\"\n[[files]]\ndst = \"/etc/derived\"\ncontent = \"yes\\n\"\n");
  auto b = ctl({"build", path("derived.toml"), "--store", store, "--json"});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  const std::string root = json_value(b.out, "root");
  EXPECT_EQ(read_file(root + "/srv/marker"), marker_text());
  EXPECT_EQ(read_file(root + "/etc/derived"), "yes\n");
  expect_nothing_left();
}

TEST_F(DistributeSealed, AuditDiffRollbackAndGcWorkOnSealedImages) {
  build("ver");
  const std::string first_dir = build_dir, first_image = image;
  // A second version: the marker changed.
  test::write_file(path("marker"), marker_text().substr(0, 8192) + "changed\n");
  build("ver");
  ASSERT_NE(build_dir, first_dir);

  auto audit = ctl({"audit", "ver", "--store", store});
  EXPECT_EQ(audit.exit_code, 0) << audit.out << audit.err;
  EXPECT_NE(audit.out.find("matches its manifest"), std::string::npos) << audit.out;
  auto diff = ctl({"diff", first_dir, "ver", "--store", store});
  EXPECT_EQ(diff.exit_code, 1) << diff.out << diff.err;
  EXPECT_NE(diff.out.find("/srv/marker"), std::string::npos) << diff.out;
  expect_nothing_left();

  auto rb = ctl({"rollback", "ver", "--store", store});
  ASSERT_EQ(rb.exit_code, 0) << rb.err;
  auto r = ctl({"run", "ver", "--store", store, "--sandbox", sandbox, "--user", "nobody", "--", "/bin/sh", "-c", "wc -c < /srv/marker"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "16384\n");  // the first version's marker

  // Once no version refers to the second build (and the builder's latest link, which gc spares,
  // names another), gc deletes it, image file and all.
  ASSERT_EQ(::unlink((store + "/ver/latest").c_str()), 0);
  auto gc = ctl({"gc", "--min-age", "0", "--store", store});
  EXPECT_EQ(gc.exit_code, 0) << gc.err;
  EXPECT_NE(gc.out.find(build_dir), std::string::npos) << gc.out;
  EXPECT_NE(test::sh("test -e '" + build_dir + "'").exit_code, 0);
  EXPECT_EQ(test::sh("test -e '" + first_image + "'").exit_code, 0);
  expect_nothing_left();
}

}  // namespace
}  // namespace chrootctl
