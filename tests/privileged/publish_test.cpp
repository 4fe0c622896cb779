// publish and add --from: a published build is a faithful, checked copy; a second version
// shares every identical file with the first through hard links and never merges hard-link
// groups; worker nodes register published builds with the signature checked and run the
// published root in place; refusals leave nothing half-published. Needs root.
#include <sys/stat.h>
#include <unistd.h>

#include "sign_fixture.hpp"

namespace chrootctl::test::sign {
namespace {

class Publish : public SignedImages {
 protected:
  void SetUp() override {
    SignedImages::SetUp();
    if (IsSkipped()) return;
    key = make_key();
    trust(key);
    pub = path("pub");
  }
  // Published trees are read by every user of every node: nothing privileged in them.
  std::string signed_build(const std::string& id, const std::string& hosts) {
    std::string dir = make_build("el9", id, hosts, true, false);
    sign(dir, key);
    add("EL9", dir);
    return dir;
  }
  dist::PublishResult publish(const dist::PublishOptions& o = {}) {
    auto r = dist::publish(s, "EL9", pub, o);
    EXPECT_TRUE(r) << r.error().what();
    return r ? *r : dist::PublishResult{};
  }
  ino_t inode(const std::string& p) {
    struct stat st {};
    EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
    return st.st_ino;
  }
  cat::GeneratedKey key;
  std::string pub;
};

TEST_F(Publish, APublishedBuildIsACheckedCopyWithItsFilesAndFragment) {
  const std::string b1 = signed_build("b1", "127.0.0.1 localhost\n");
  auto r = publish();
  EXPECT_EQ(r.published, pub + "/EL9/b1");
  EXPECT_EQ(r.fragment, pub + "/catalogue.d/EL9.toml");
  EXPECT_EQ(r.signer, key.id);
  EXPECT_FALSE(r.already_published);
  EXPECT_EQ(r.files_linked, 0u);
  EXPECT_EQ(r.files, 9u);  // job and job-again are one group
  EXPECT_EQ(sh(str("cd '", pub, "' && ls -a . EL9/b1")).out,
            ".:\n.\n..\nEL9\ncatalogue.d\n\nEL9/b1:\n.\n..\nlock\nmanifest\nrecipe.toml\nroot\nsignature\n");
  auto m = mf::create(pub + "/EL9/b1/root");
  ASSERT_TRUE(m) << m.error().what();
  EXPECT_EQ(mf::digest(*m), digest_of(b1));
  EXPECT_EQ(read_file(pub + "/EL9/b1/signature"), read_file(b1 + "/signature"));
  const std::string frag = read_file(r.fragment);
  EXPECT_EQ(frag.substr(0, frag.find("published_at")),
            str("# chrootctl published image (docs/signing.md): chrootctl add --from DIR EL9\nformat = 1\nname = \"EL9\"\nimage = \"EL9/b1\"\n"
                "build_id = \"b1\"\nrecipe = \"el9\"\ndigest = \"",
                digest_of(b1), "\"\nsigner = \"", key.id, "\"\n"));
  EXPECT_EQ(inode(pub + "/EL9/b1/root/usr/bin/job"), inode(pub + "/EL9/b1/root/usr/bin/job-again"));
  // Publishing it again changes nothing but the fragment.
  auto again = publish();
  EXPECT_TRUE(again.already_published);
}

TEST_F(Publish, ASecondVersionHardLinksEveryIdenticalFileAndCopiesTheChangedOne) {
  signed_build("b1", "127.0.0.1 localhost\n");
  publish();
  const std::string b2 = signed_build("b2", "10.1.1.1 localhost\n");
  // Same contents as an existing file but another owner: never shared.
  write_file(b2 + "/root/etc/os-release.copy", "ID=el9\n");
  ASSERT_EQ(::chown((b2 + "/root/etc/os-release.copy").c_str(), 1000, 0), 0);
  // Two identical files that are not hard links in the image stay two inodes.
  write_file(b2 + "/root/usr/lib/libbig-copy.so", std::string(200000, 'x') + "end\n");
  write_manifest(b2);
  sign(b2, key);
  add("EL9", b2);
  auto r = publish();
  EXPECT_EQ(r.published, pub + "/EL9/b2");
  EXPECT_EQ(r.files, 11u);
  // Shared: everything but /etc/hosts (changed), os-release.copy (other owner) and one of the two big libraries.
  EXPECT_EQ(r.files_linked, 8u);
  const std::string v1 = pub + "/EL9/b1/root", v2 = pub + "/EL9/b2/root";
  EXPECT_EQ(inode(v1 + "/usr/bin/job"), inode(v2 + "/usr/bin/job"));
  EXPECT_EQ(inode(v2 + "/usr/bin/job"), inode(v2 + "/usr/bin/job-again"));
  EXPECT_EQ(inode(v1 + "/usr/bin/ping"), inode(v2 + "/usr/bin/ping"));
  EXPECT_EQ(inode(v1 + "/home/user/notes"), inode(v2 + "/home/user/notes"));
  EXPECT_NE(inode(v1 + "/etc/hosts"), inode(v2 + "/etc/hosts"));
  EXPECT_NE(inode(v1 + "/etc/os-release"), inode(v2 + "/etc/os-release.copy"));
  EXPECT_NE(inode(v2 + "/usr/lib/libbig.so"), inode(v2 + "/usr/lib/libbig-copy.so"));
  // Both versions still match their manifests exactly (hard-link groups are counted inside each tree).
  for (const auto& [root, build] : {std::pair{v1, std::string("b1")}, std::pair{v2, std::string("b2")}}) {
    auto m = mf::load(str(pub, "/EL9/", build, "/manifest"));
    ASSERT_TRUE(m);
    auto d = mf::check(root, *m);
    ASSERT_TRUE(d) << d.error().what();
    EXPECT_FALSE(d->differs_beyond_mtime()) << build << "\n" << mf::render_text(*d);
  }
  const std::string frag = read_file(pub + "/catalogue.d/EL9.toml");
  EXPECT_NE(frag.find("image = \"EL9/b2\"\n"), std::string::npos) << frag;
  // --copy shares nothing.
  const std::string b3 = signed_build("b3", "10.3.3.3 localhost\n");
  dist::PublishOptions copy;
  copy.link = false;
  auto c = publish(copy);
  EXPECT_EQ(c.files_linked, 0u);
  EXPECT_NE(inode(v1 + "/usr/bin/job"), inode(pub + "/EL9/b3/root/usr/bin/job"));
}

TEST_F(Publish, UnsignedImagesAndChangedTreesAreNotPublishedAndLeaveNothing) {
  const std::string dir = make_build("el9", "b1", "127.0.0.1 localhost\n", true, false);
  add("EL9", dir);
  auto r = dist::publish(s, "EL9", pub);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::permission);
  EXPECT_EQ(r.error().what(),
            "refusing to publish 'EL9': it is not signed (sign it with 'chrootctl sign EL9 --key KEY', or publish it with --allow-unsigned)");
  EXPECT_FALSE(sys::lstat_path(pub));
  dist::PublishOptions allow;
  allow.allow_unsigned = true;
  ASSERT_EQ(::chmod((dir + "/root/usr/bin/job").c_str(), 0700), 0);
  r = dist::publish(s, "EL9", pub, allow);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().what(), str("publishing 'EL9' into ", pub, ": '/usr/bin/job' changed since it was verified: mode 0700, not 0755"));
  EXPECT_EQ(listing(pub), "") << "no half-published build is left";
  ASSERT_EQ(::chmod((dir + "/root/usr/bin/job").c_str(), 0755), 0);
  auto ok = dist::publish(s, "EL9", pub, allow);
  ASSERT_TRUE(ok) << ok.error().what();
  EXPECT_EQ(ok->signer, "");
  EXPECT_FALSE(sys::lstat_path(pub + "/EL9/b1/signature"));
}

TEST_F(Publish, ADirectoryOthersCouldRearrangeIsRefused) {
  signed_build("b1", "127.0.0.1 localhost\n");
  mkdirs(pub);
  ASSERT_EQ(::chmod(pub.c_str(), 0777), 0);
  auto r = dist::publish(s, "EL9", pub);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::permission);
  EXPECT_EQ(r.error().what(), str("refusing to publish into '", pub, "': '", pub, "' is writable by others (mode 0777)"));
  EXPECT_EQ(listing(pub), "");
  ASSERT_EQ(::chmod(pub.c_str(), 0755), 0);
  ASSERT_EQ(::chown(pub.c_str(), 1000, 1000), 0);
  r = dist::publish(s, "EL9", pub);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().what(), str("refusing to publish into '", pub, "': '", pub, "' is owned by uid 1000, not root"));
  // A symlink on the way, as a user could plant one in a directory everyone may write: refused
  // before anything is made, not followed to where it points (a hostile review had root write
  // a whole publication there).
  const std::string sticky = path("sticky"), victim = path("victim");
  mkdirs(sticky);
  mkdirs(victim);
  ASSERT_EQ(::chmod(sticky.c_str(), 01777), 0);
  ASSERT_EQ(::symlink(victim.c_str(), (sticky + "/evil").c_str()), 0);
  for (const std::string& target : {sticky + "/evil", sticky + "/evil/deeper"}) {
    r = dist::publish(s, "EL9", target);
    ASSERT_FALSE(r) << target;
    EXPECT_EQ(r.error().code(), Errc::permission);
    EXPECT_EQ(r.error().what(), str("refusing to publish into '", target, "': '", sticky,
                                    "/evil' is a symlink or not a directory; publish to the real directory, with no symlink on the way"));
  }
  EXPECT_EQ(listing(victim), "");
  // A new directory of root's under the sticky one is the publisher's own: taken.
  r = dist::publish(s, "EL9", sticky + "/mine");
  EXPECT_TRUE(r) << r.error().what();
}

TEST_F(Publish, WorkersAddPublishedBuildsVerifiedAndRunTheRootInPlace) {
  signed_build("b1", "127.0.0.1 localhost\n");
  publish();
  Settings worker = other_host("worker");
  worker.require_signature = true;
  auto items = dist::add_from(worker, pub, {});
  ASSERT_TRUE(items) << items.error().what();
  ASSERT_EQ(items->size(), 1u);
  const auto& i = (*items)[0];
  ASSERT_TRUE(i.added) << i.message;
  EXPECT_EQ(i.name, "EL9");
  const auto& v = i.result.entry.current;
  EXPECT_EQ(v.root, pub + "/EL9/b1/root");
  EXPECT_EQ(v.image, worker.store + "/EL9/from-b1");
  EXPECT_EQ(v.build_id, "b1");
  EXPECT_EQ(v.signer, key.id);
  EXPECT_EQ(read_file(v.image + "/source"), pub + "/EL9/b1/root\n");
  cat::ResolveOptions fast;
  fast.fast = true;
  auto res = cat::resolve(worker, "EL9", fast);
  ASSERT_TRUE(res) << res.error().what();
  EXPECT_EQ(res->root, pub + "/EL9/b1/root");

  // A new version: the worker moves to it and keeps the old one for rollback.
  signed_build("b2", "10.2.2.2 localhost\n");
  publish();
  items = dist::add_from(worker, pub, {"EL9"});
  ASSERT_TRUE(items) << items.error().what();
  ASSERT_TRUE((*items)[0].added) << (*items)[0].message;
  ASSERT_TRUE((*items)[0].result.replaced);
  EXPECT_EQ((*items)[0].result.replaced->build_id, "b1");
  EXPECT_EQ(cat::resolve(worker, "EL9")->root, pub + "/EL9/b2/root");

  // gc removes the worker's copy of a build no longer referenced, never the published root.
  ASSERT_TRUE(cat::rollback(worker, "EL9"));  // drops b2 from the catalogue
  cat::GcOptions now;
  now.min_age = 0;
  auto g = cat::gc(worker, now);
  ASSERT_TRUE(g) << g.error().what();
  EXPECT_EQ(g->removed, std::vector<std::string>{worker.store + "/EL9/from-b2"});
  EXPECT_TRUE(sys::lstat_path(pub + "/EL9/b2/root/etc/hosts"));
}

TEST_F(Publish, WorkersRefuseUntrustedTamperedAndMisdirectedPublications) {
  signed_build("b1", "127.0.0.1 localhost\n");
  publish();
  Settings worker = other_host("worker");
  worker.require_signature = true;
  worker.trusted_keys = path("worker-etc/trusted.d");
  mkdirs(worker.trusted_keys);
  auto items = dist::add_from(worker, pub, {});
  ASSERT_TRUE(items);
  EXPECT_FALSE((*items)[0].added);
  EXPECT_EQ((*items)[0].message,
            str("refusing to add '", worker.store, "/EL9/from-b1' as 'EL9': it is signed by key ", key.id,
                ", which is not trusted here: it is not one of the trusted keys in ", worker.trusted_keys, "; require_signature is set"));
  EXPECT_FALSE(sys::lstat_path(cat::catalogue_path(worker)));
  worker.trusted_keys = trusted;
  // One byte changed in a published file: the worker finds it.
  write_file(pub + "/EL9/b1/root/etc/hosts", "127.0.0.2 localhost\n");
  items = dist::add_from(worker, pub, {"EL9"});
  ASSERT_TRUE(items);
  EXPECT_FALSE((*items)[0].added);
  const std::string msg = (*items)[0].message;
  EXPECT_EQ(msg.substr(0, msg.find('\n')),
            str("refusing to add '", worker.store, "/EL9/from-b1' as 'EL9': its root does not match its manifest (1 difference):"));
  EXPECT_NE(msg.find("\nchanged /etc/hosts sha256 "), std::string::npos) << msg;
  write_file(pub + "/EL9/b1/root/etc/hosts", "127.0.0.1 localhost\n");
  ASSERT_EQ(::setxattr((pub + "/EL9/b1/root/etc/hosts").c_str(), "user.origin", "test", 4, 0), 0);
  // A fragment that points elsewhere is refused by its parser.
  write_file(pub + "/catalogue.d/EVIL.toml", str("format = 1\nname = \"EVIL\"\nimage = \"../store/el9/b1\"\nbuild_id = \"b1\"\nrecipe = \"el9\"\n"
                                                 "digest = \"",
                                                 std::string(64, '0'), "\"\npublished_at = 1\n"));
  items = dist::add_from(worker, pub, {});
  ASSERT_TRUE(items) << items.error().what();
  ASSERT_EQ(items->size(), 2u);
  EXPECT_TRUE((*items)[0].added) << (*items)[0].message;
  EXPECT_FALSE((*items)[1].added);
  EXPECT_EQ((*items)[1].message.substr(0, (*items)[1].message.find('\n')),
            str(pub, "/catalogue.d/EVIL.toml:3:9: error: 'image' must be \"EVIL/b1\""));
  // A published directory others may write is not trusted.
  ASSERT_EQ(::chmod((pub + "/EL9").c_str(), 0777), 0);
  items = dist::add_from(worker, pub, {"EL9"});
  ASSERT_TRUE(items);
  EXPECT_EQ((*items)[0].message, str("'", pub, "/EL9' (above '", pub, "/EL9/b1') is writable by others (mode 0777, no sticky bit)"));
  auto missing = dist::add_from(worker, pub, {"EL8"});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().what(), str("'EL8' is not published in ", pub, " (no ", pub, "/catalogue.d/EL8.toml)"));
}

}  // namespace
}  // namespace chrootctl::test::sign
