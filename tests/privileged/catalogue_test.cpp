// The catalogue library against real trees: the owner and permission checks at add, what resolve
// refuses, verification records, rollback, aliases, gc and NAMED_CHROOT import/export. Needs
// root: a job root must be owned by root, so these trees can only be made by root.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "chrootctl/catalogue/condor.hpp"
#include "chrootctl/catalogue/registry.hpp"
#include "chrootctl/catalogue/resolve.hpp"
#include "chrootctl/catalogue/safety.hpp"
#include "chrootctl/common/files.hpp"
#include "chrootctl/common/manifest.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "test_support.hpp"

namespace chrootctl {
namespace {

namespace cat = catalogue;
namespace mf = manifest;

class CatalogueImages : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    CHROOTCTL_REQUIRE_PRIVILEGE("root");
    s.store = path("store");
    test::mkdirs(s.store);
  }

  /// STORE/NAME/ID with root/, manifest, manifest.stat and recipe.toml, as the builder makes it.
  std::string make_build(const std::string& name, const std::string& id, const std::string& hosts = "127.0.0.1 localhost\n") {
    const std::string dir = str(s.store, "/", name, "/", id);
    test::mkdirs(dir + "/root/etc");
    test::mkdirs(dir + "/root/usr/bin");
    test::write_file(dir + "/root/etc/hosts", hosts);
    test::write_file(dir + "/root/etc/os-release", "ID=" + name + "\n");
    test::write_file(dir + "/root/usr/bin/job", "#!/bin/sh\necho job\n", 0755);
    test::write_file(dir + "/recipe.toml", str("name = \"", name, "\"\n"));
    write_manifest(dir + "/root", dir);
    return dir;
  }
  void write_manifest(const std::string& root, const std::string& dir) {
    auto m = mf::create(root);
    ASSERT_TRUE(m) << m.error().what();
    auto r = mf::render(*m);
    ASSERT_TRUE(write_file_atomic(dir + "/manifest", r.text));
    ASSERT_TRUE(write_file_atomic(dir + "/manifest.stat", mf::serialize_stat(*m, r.digest)));
  }
  cat::AddResult add(const std::string& name, const std::string& dir) {
    auto r = cat::add(s, name, dir);
    EXPECT_TRUE(r) << r.error().what();
    return r ? *r : cat::AddResult{};
  }
  std::string add_error(const std::string& name, const std::string& dir, Errc code) {
    auto r = cat::add(s, name, dir);
    EXPECT_FALSE(r);
    if (r) return "added";
    EXPECT_EQ(r.error().code(), code) << r.error().what();
    return r.error().what();
  }
  std::string resolve_error(const std::string& name, cat::ResolveOptions o = {}) {
    auto r = cat::resolve(s, name, o);
    EXPECT_FALSE(r);
    if (r) return "resolved to " + r->root;
    return r.error().what();
  }
  cat::Catalogue load() {
    auto c = cat::load(s);
    EXPECT_TRUE(c) << c.error().what();
    return c ? *c : cat::Catalogue{};
  }
  Settings s;
};

TEST_F(CatalogueImages, AddRecordsTheVerifiedImageAndResolveHandsOutItsRoot) {
  const std::string dir = make_build("el9", "b1");
  const auto before = sys::now_unix();
  auto r = add("EL9", dir);
  EXPECT_FALSE(r.refreshed);
  EXPECT_FALSE(r.replaced);
  EXPECT_EQ(r.entries, 7u);
  const auto& v = r.entry.current;
  EXPECT_EQ(v.image, dir);
  EXPECT_EQ(v.root, dir + "/root");
  EXPECT_EQ(v.build_id, "b1");
  EXPECT_EQ(v.recipe, "el9");
  EXPECT_EQ(v.digest, *mf::read_digest(dir + "/manifest"));
  EXPECT_GE(v.verified_at, before);
  struct stat st {};
  ASSERT_EQ(::lstat((dir + "/root").c_str(), &st), 0);
  EXPECT_EQ(v.identity.ino, st.st_ino);
  EXPECT_EQ(v.identity.dev, st.st_dev);
  EXPECT_EQ(v.identity.mode, 0755u);

  auto res = cat::resolve(s, "EL9");
  ASSERT_TRUE(res) << res.error().what();
  EXPECT_EQ(res->root, dir + "/root");
  EXPECT_EQ(res->name, "EL9");
  cat::ResolveOptions fast;
  fast.fast = true;
  auto f = cat::resolve(s, "EL9", fast);
  ASSERT_TRUE(f) << f.error().what();
  EXPECT_EQ(cat::image_dir(s, "EL9").value(), dir);
  EXPECT_EQ(resolve_error("el9"), str("'el9' is not in the catalogue ", s.store, "/catalogue.toml (did you mean 'EL9'? names are case-sensitive)"));
}

TEST_F(CatalogueImages, AddRefusesATreeThatDoesNotMatchItsManifestAndListsEveryDifference) {
  const std::string dir = make_build("el9", "b1");
  test::write_file(dir + "/root/etc/hosts", "6.6.6.6 localhost\n");
  ASSERT_EQ(::chmod((dir + "/root/usr/bin/job").c_str(), 04755), 0);
  const std::string err = add_error("EL9", dir, Errc::mismatch);
  EXPECT_EQ(err.substr(0, err.find('\n')), str("refusing to add '", dir, "' as 'EL9': its root does not match its manifest (2 differences):"));
  EXPECT_NE(err.find("\nchanged /etc/hosts sha256 "), std::string::npos) << err;
  EXPECT_NE(err.find("\nchanged /usr/bin/job mode 0755 -> 4755"), std::string::npos) << err;
  EXPECT_FALSE(sys::lstat_path(cat::catalogue_path(s))) << "nothing may be recorded";
}

TEST_F(CatalogueImages, AddRefusesARootNotOwnedByRoot) {
  const std::string dir = make_build("el9", "b1");
  ASSERT_EQ(::chown((dir + "/root").c_str(), 65534, 0), 0);
  EXPECT_EQ(add_error("EL9", dir, Errc::permission),
            str("refusing to add '", dir, "' as 'EL9': root '", dir, "/root' is owned by uid 65534, not root"));
}

TEST_F(CatalogueImages, AddRefusesARootWritableByGroupOrOthers) {
  const std::string dir = make_build("el9", "b1");
  ASSERT_EQ(::chmod((dir + "/root").c_str(), 0775), 0);
  EXPECT_EQ(add_error("EL9", dir, Errc::permission),
            str("refusing to add '", dir, "' as 'EL9': root '", dir, "/root' is writable by group (mode 0775)"));
  ASSERT_EQ(::chmod((dir + "/root").c_str(), 01757), 0);  // the sticky bit does not excuse the root itself
  EXPECT_EQ(add_error("EL9", dir, Errc::permission),
            str("refusing to add '", dir, "' as 'EL9': root '", dir, "/root' is writable by others (mode 1757)"));
}

TEST_F(CatalogueImages, AddRefusesARootUnderADirectoryANonRootUserCanChange) {
  const std::string dir = make_build("el9", "b1");
  const std::string parent = s.store + "/el9";
  ASSERT_EQ(::chmod(parent.c_str(), 0777), 0);
  EXPECT_EQ(add_error("EL9", dir, Errc::permission),
            str("refusing to add '", dir, "' as 'EL9': '", parent, "' (above '", dir, "') is writable by others (mode 0777, no sticky bit)"));
  ASSERT_EQ(::chmod(parent.c_str(), 0775), 0);
  EXPECT_EQ(add_error("EL9", dir, Errc::permission),
            str("refusing to add '", dir, "' as 'EL9': '", parent, "' (above '", dir, "') is writable by group (mode 0775, no sticky bit)"));
  ASSERT_EQ(::chmod(parent.c_str(), 0755), 0);
  ASSERT_EQ(::chown(parent.c_str(), 65534, 65534), 0);
  EXPECT_EQ(add_error("EL9", dir, Errc::permission),
            str("refusing to add '", dir, "' as 'EL9': '", parent, "' (above '", dir, "') is owned by uid 65534, not root"));
  // A root-owned sticky directory (like /tmp) above the build is acceptable.
  ASSERT_EQ(::chown(parent.c_str(), 0, 0), 0);
  ASSERT_EQ(::chmod(parent.c_str(), 01777), 0);
  add("EL9", dir);
  EXPECT_TRUE(cat::resolve(s, "EL9")) << resolve_error("EL9");
}

TEST_F(CatalogueImages, AddRefusesASymlinkedRootAndABuildDirectoryOthersCanWrite) {
  const std::string dir = make_build("el9", "b1");
  ASSERT_EQ(::rename((dir + "/root").c_str(), (dir + "/real").c_str()), 0);
  ASSERT_EQ(::symlink("real", (dir + "/root").c_str()), 0);
  EXPECT_EQ(add_error("EL9", dir, Errc::permission), str("refusing to add '", dir, "' as 'EL9': root '", dir, "/root' is a symbolic link"));
  const std::string dir2 = make_build("el9", "b2");
  ASSERT_EQ(::chmod(dir2.c_str(), 0770), 0);
  EXPECT_EQ(add_error("EL9", dir2, Errc::permission),
            str("refusing to add '", dir2, "' as 'EL9': build directory '", dir2, "' is writable by group (mode 0770)"));
  const std::string dir3 = make_build("el9", "b3");
  ASSERT_EQ(::chmod((dir3 + "/manifest").c_str(), 0666), 0);
  EXPECT_EQ(add_error("EL9", dir3, Errc::permission),
            str("refusing to add '", dir3, "' as 'EL9': '", dir3, "/manifest' is writable by others (mode 0666)"));
}

TEST_F(CatalogueImages, ReservedAndInvalidNamesAreRefused) {
  const std::string dir = make_build("el9", "b1");
  EXPECT_EQ(add_error("root", dir, Errc::invalid_argument),
            "bad name: 'root' is reserved: HTCondor maps 'root' to the host's /, and chrootctl never runs a job there");
  add("EL9", dir);
  auto a = cat::alias(s, "Root", "EL9");
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code(), Errc::invalid_argument);
  auto r = cat::resolve(s, "root");
  ASSERT_FALSE(r);
  EXPECT_TRUE(cat::is_refusal(r.error()));
}

TEST_F(CatalogueImages, NewVersionKeepsThePreviousOneAndRollbackRestoresIt) {
  const std::string b1 = make_build("el9", "b1");
  const std::string b2 = make_build("el9", "b2", "10.0.0.1 localhost\n");
  const std::string b3 = make_build("el9", "b3", "10.0.0.2 localhost\n");
  add("EL9", b1);
  auto r2 = add("EL9", b2);
  ASSERT_TRUE(r2.replaced);
  EXPECT_EQ(r2.replaced->build_id, "b1");
  add("EL9", b3);
  auto again = add("EL9", b3);  // the same build again only renews its verification
  EXPECT_TRUE(again.refreshed);
  auto c = load();
  ASSERT_EQ(c.find("EL9")->previous.size(), 2u);
  EXPECT_EQ(c.find("EL9")->previous[0].build_id, "b2");
  EXPECT_EQ(c.find("EL9")->previous[1].build_id, "b1");
  EXPECT_EQ(cat::resolve(s, "EL9")->root, b3 + "/root");

  auto rb = cat::rollback(s, "EL9");
  ASSERT_TRUE(rb) << rb.error().what();
  EXPECT_EQ(rb->current.build_id, "b2");
  ASSERT_EQ(rb->dropped.size(), 1u);
  EXPECT_EQ(rb->dropped[0].build_id, "b3");
  EXPECT_EQ(cat::resolve(s, "EL9")->root, b2 + "/root");

  auto bad = cat::rollback(s, "EL9", std::string("b9"));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().what(), "'EL9' has no previous version with build id 'b9' (previous: b1)");
  ASSERT_TRUE(cat::rollback(s, "EL9", std::string("b1")));
  EXPECT_EQ(cat::resolve(s, "EL9")->root, b1 + "/root");
  auto none = cat::rollback(s, "EL9");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), Errc::not_found);
  EXPECT_EQ(none.error().what(), "'EL9' has no previous version to roll back to");
}

TEST_F(CatalogueImages, ResolveRefusesAVerificationOlderThanTheMaximumAge) {
  add("EL9", make_build("el9", "b1"));
  const auto v = load().find("EL9")->current;
  cat::ResolveOptions o;
  o.now = v.verified_at + s.max_verify_age + 1;
  auto r = cat::resolve(s, "EL9", o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::mismatch);
  EXPECT_EQ(r.error().what(), str("'EL9' is not usable: its last full verification was at ", cat::format_time(v.verified_at),
                                  ", 1d 0h ago, longer than max_verify_age (1d 0h); run 'chrootctl verify EL9'"));
  o.now = v.verified_at + s.max_verify_age;
  EXPECT_TRUE(cat::resolve(s, "EL9", o));
}

TEST_F(CatalogueImages, ResolveRefusesARootThatWasReplacedEvenWithTheSameContents) {
  const std::string dir = make_build("el9", "b1");
  add("EL9", dir);
  const auto recorded = load().find("EL9")->current.identity;
  ASSERT_EQ(test::sh(str("mv '", dir, "/root' '", dir, "/old' && cp -a '", dir, "/old' '", dir, "/root'")).exit_code, 0);
  struct stat st {};
  ASSERT_EQ(::lstat((dir + "/root").c_str(), &st), 0);
  EXPECT_EQ(resolve_error("EL9"), str("'EL9' is not usable: its root '", dir, "/root' is not the directory that was verified (recorded ",
                                      cat::describe(recorded), ", now ", cat::describe(cat::identity_of(st)), "); run 'chrootctl verify EL9'"));
  // A full verification proves the contents and records the new directory.
  auto v = cat::verify(s, {"EL9"});
  ASSERT_TRUE(v) << v.error().what();
  ASSERT_EQ(v->size(), 1u);
  EXPECT_TRUE((*v)[0].passed) << (*v)[0].error;
  ASSERT_EQ((*v)[0].notes.size(), 1u);
  EXPECT_EQ((*v)[0].notes[0].substr(0, 53), "the root is a different directory from the one record");
  EXPECT_TRUE(cat::resolve(s, "EL9")) << resolve_error("EL9");
}

TEST_F(CatalogueImages, ResolveRefusesARootThatBecameWritableOrChangedOwner) {
  const std::string dir = make_build("el9", "b1");
  add("EL9", dir);
  ASSERT_EQ(::chmod((dir + "/root").c_str(), 0777), 0);
  EXPECT_EQ(resolve_error("EL9"), str("'EL9' is not usable: root '", dir, "/root' is writable by others (mode 0777)"));
  ASSERT_EQ(::chmod((dir + "/root").c_str(), 0755), 0);
  ASSERT_EQ(::chown((dir + "/root").c_str(), 65534, 0), 0);
  EXPECT_EQ(resolve_error("EL9"), str("'EL9' is not usable: root '", dir, "/root' is owned by uid 65534, not root"));
  ASSERT_EQ(::chown((dir + "/root").c_str(), 0, 0), 0);
  ASSERT_EQ(::chmod(s.store.c_str(), 0757), 0);
  EXPECT_EQ(resolve_error("EL9"), str("refusing to trust the catalogue: the store '", s.store, "' is writable by others (mode 0757)"));
}

TEST_F(CatalogueImages, ResolveFastRunsTheMetadataCheck) {
  const std::string dir = make_build("el9", "b1");
  add("EL9", dir);
  test::write_file(dir + "/root/etc/hosts", "6.6.6.6  localhost\n");
  cat::ResolveOptions fast;
  fast.fast = true;
  // The cheap checks cannot see a changed file; the metadata check can.
  EXPECT_TRUE(cat::resolve(s, "EL9"));
  const std::string err = resolve_error("EL9", fast);
  const std::string head = "'EL9' is not usable: the metadata check failed: changed /etc/hosts size 20 -> 19; changed /etc/hosts ctime ";
  EXPECT_EQ(err.substr(0, head.size()), head) << err;
  EXPECT_EQ(err.substr(err.size() - 28), "; run 'chrootctl verify EL9'");
}

TEST_F(CatalogueImages, ResolveFastRefusesAStatRecordOthersCouldHaveForged) {
  const std::string dir = make_build("el9", "b1");
  add("EL9", dir);
  ASSERT_EQ(::chmod((dir + "/manifest.stat").c_str(), 0646), 0);
  cat::ResolveOptions fast;
  fast.fast = true;
  EXPECT_EQ(resolve_error("EL9", fast), str("'EL9' is not usable: the metadata check failed: '", dir,
                                            "/manifest.stat' is writable by others (mode 0646); run 'chrootctl verify EL9'"));
}

TEST_F(CatalogueImages, AFailedVerificationMakesTheImageUnusableUntilAFullOnePasses) {
  const std::string dir = make_build("el9", "b1");
  add("EL9", dir);
  const std::string original = test::read_file(dir + "/root/etc/hosts");
  test::write_file(dir + "/root/etc/hosts", "6.6.6.6 localhost\n");

  auto v = cat::verify(s, {});
  ASSERT_TRUE(v) << v.error().what();
  ASSERT_EQ(v->size(), 1u);
  const auto& rep = (*v)[0];
  EXPECT_FALSE(rep.passed);
  EXPECT_TRUE(rep.recorded);
  ASSERT_EQ(rep.differences.differences.size(), 1u);
  EXPECT_EQ(rep.differences.differences[0].path, "/etc/hosts");
  const auto recorded = load().find("EL9")->current;
  EXPECT_NE(recorded.failed_at, 0);
  const std::string failure = "1 difference: changed /etc/hosts size 20 -> 18; changed /etc/hosts sha256 ";
  EXPECT_EQ(recorded.failure.substr(0, failure.size()), failure);
  const std::string err = resolve_error("EL9");
  const std::string head = "'EL9' is not usable: its verification at " + cat::format_time(recorded.failed_at) + " failed: " + failure;
  EXPECT_EQ(err.substr(0, head.size()), head) << err;
  EXPECT_EQ(err.substr(err.size() - 56), " (it stays unusable until 'chrootctl verify EL9' passes)") << err;

  // Putting the bytes back is not enough for the metadata check (ctime moved) ...
  test::write_file(dir + "/root/etc/hosts", original);
  cat::VerifyOptions fast;
  fast.fast = true;
  auto f = cat::verify(s, {"EL9"}, fast);
  ASSERT_TRUE(f);
  EXPECT_FALSE((*f)[0].passed);
  EXPECT_FALSE(cat::resolve(s, "EL9"));
  // ... a full verification clears the failure.
  auto full = cat::verify(s, {"EL9"});
  ASSERT_TRUE(full);
  EXPECT_TRUE((*full)[0].passed) << (*full)[0].error;
  EXPECT_EQ(load().find("EL9")->current.failed_at, 0);
  EXPECT_TRUE(cat::resolve(s, "EL9")) << resolve_error("EL9");
  cat::ResolveOptions ro;
  ro.fast = true;
  EXPECT_TRUE(cat::resolve(s, "EL9", ro)) << resolve_error("EL9", ro);
}

TEST_F(CatalogueImages, AFastVerificationThatPassesWritesNothing) {
  add("EL9", make_build("el9", "b1"));
  const std::string before = test::read_file(cat::catalogue_path(s));
  cat::VerifyOptions fast;
  fast.fast = true;
  auto f = cat::verify(s, {"EL9"}, fast);
  ASSERT_TRUE(f);
  EXPECT_TRUE((*f)[0].passed) << (*f)[0].error;
  EXPECT_FALSE((*f)[0].recorded);
  EXPECT_EQ((*f)[0].entries, 7u);
  EXPECT_EQ(test::read_file(cat::catalogue_path(s)), before);
}

TEST_F(CatalogueImages, VerifyNoticesAManifestSwappedForAnotherTree) {
  const std::string dir = make_build("el9", "b1");
  add("EL9", dir);
  const std::string recorded = load().find("EL9")->current.digest;
  test::write_file(dir + "/root/etc/hosts", "6.6.6.6 localhost\n");
  write_manifest(dir + "/root", dir);  // a manifest of the changed tree
  const std::string now_digest = *mf::read_digest(dir + "/manifest");
  auto v = cat::verify(s, {"EL9"});
  ASSERT_TRUE(v);
  EXPECT_FALSE((*v)[0].passed);
  EXPECT_EQ((*v)[0].error, str(dir, "/manifest has tree digest ", now_digest, ", not the ", recorded, " recorded in the catalogue"));
  EXPECT_FALSE(cat::resolve(s, "EL9"));
}

TEST_F(CatalogueImages, AnUntrustedCatalogueIsNotBelieved) {
  add("EL9", make_build("el9", "b1"));
  ASSERT_EQ(::chmod(cat::catalogue_path(s).c_str(), 0664), 0);
  auto r = cat::resolve(s, "EL9");
  ASSERT_FALSE(r);
  EXPECT_FALSE(cat::is_refusal(r.error()));
  EXPECT_EQ(r.error().what(), str("refusing to trust the catalogue: '", cat::catalogue_path(s), "' is writable by group (mode 0664)"));
}

TEST_F(CatalogueImages, RootNeverRewritesACatalogueAnotherUserCouldHavePlanted) {
  const std::string dir = make_build("el9", "b1");
  add("EL9", dir);
  ASSERT_EQ(::chown(cat::catalogue_path(s).c_str(), 65534, 65534), 0);
  const std::string before = test::read_file(cat::catalogue_path(s));
  EXPECT_EQ(add_error("EL10", dir, Errc::permission), str("refusing to edit the catalogue: '", cat::catalogue_path(s),
                                                          "' is not a regular file owned by root and unwritable by group and others"));
  EXPECT_EQ(resolve_error("EL9"), str("refusing to trust the catalogue: '", cat::catalogue_path(s), "' is owned by uid 65534, not root"));
  EXPECT_EQ(test::read_file(cat::catalogue_path(s)), before);
  ASSERT_EQ(::chown(cat::catalogue_path(s).c_str(), 0, 0), 0);
  ASSERT_EQ(::chown(s.store.c_str(), 65534, 65534), 0);
  auto a = cat::alias(s, "X", "EL9");
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().what(), str("refusing to edit the catalogue: '", s.store, "' is owned by uid 65534, not root"));
}

TEST_F(CatalogueImages, AStoreNamedThroughASymlinkIsUsedByItsCheckedRealPath) {
  const std::string dir = make_build("el9", "b1");
  ASSERT_EQ(::symlink(s.store.c_str(), path("link").c_str()), 0);
  Settings via = s;
  via.store = path("link");
  auto r = cat::add(via, "EL9", path("link/el9/b1"));
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(r->entry.current.image, dir);
  EXPECT_TRUE(sys::lstat_path(s.store + "/catalogue.toml"));
  auto res = cat::resolve(via, "EL9");
  ASSERT_TRUE(res) << res.error().what();
  EXPECT_EQ(res->root, dir + "/root");
  // Re-pointing the symlink afterwards cannot make an edit read or write elsewhere unnoticed:
  // the new target is checked like the old one.
  test::mkdirs(path("elsewhere"));
  ASSERT_EQ(::chmod(path("elsewhere").c_str(), 0777), 0);
  ASSERT_EQ(::unlink(path("link").c_str()), 0);
  ASSERT_EQ(::symlink(path("elsewhere").c_str(), path("link").c_str()), 0);
  auto a = cat::alias(via, "X", "EL9");
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().what(), str("refusing to edit the catalogue: '", path("elsewhere"), "' is writable by others (mode 0777)"));
}

TEST_F(CatalogueImages, AliasesResolveToTheirEntryAndFollowItsVersions) {
  const std::string b1 = make_build("el6", "b1");
  add("RHEL6", b1);
  ASSERT_EQ(cat::alias(s, "SL6", "RHEL6").value(), "RHEL6");
  EXPECT_EQ(cat::alias(s, "SL6", "RHEL6").value(), "RHEL6");  // again: nothing to do
  auto res = cat::resolve(s, "SL6");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->name, "RHEL6");
  EXPECT_EQ(res->requested, "SL6");
  const std::string b2 = make_build("el6", "b2", "10.0.0.1 localhost\n");
  add("RHEL6", b2);
  EXPECT_EQ(cat::resolve(s, "SL6")->root, b2 + "/root");

  add("EL9", make_build("el9", "b1"));
  auto taken = cat::alias(s, "SL6", "EL9");
  ASSERT_FALSE(taken);
  EXPECT_EQ(taken.error().what(), "'SL6' is already an alias of 'RHEL6' (use --force to move it)");
  EXPECT_EQ(cat::alias(s, "EL9", "RHEL6").error().what(), "'EL9' is already the name of an entry");
  ASSERT_TRUE(cat::alias(s, "SL6", "EL9", true));
  EXPECT_EQ(cat::resolve(s, "SL6")->name, "EL9");
  auto as_name = cat::add(s, "SL6", b1);
  ASSERT_FALSE(as_name);
  EXPECT_EQ(as_name.error().what(), "'SL6' is an alias of 'EL9'; remove the alias first (chrootctl remove SL6)");

  auto rm = cat::remove(s, "SL6");
  ASSERT_TRUE(rm);
  EXPECT_EQ(rm->alias_of, "EL9");
  EXPECT_FALSE(cat::resolve(s, "SL6"));
  EXPECT_TRUE(cat::resolve(s, "EL9"));
  auto rm2 = cat::remove(s, "RHEL6");
  ASSERT_TRUE(rm2);
  EXPECT_EQ(rm2->images, (std::vector<std::string>{b2, b1}));
  EXPECT_TRUE(sys::lstat_path(b1 + "/root")) << "remove never deletes images";
  EXPECT_EQ(cat::remove(s, "RHEL6").error().code(), Errc::not_found);
}

TEST_F(CatalogueImages, GcRemovesOnlyOldUnreferencedBuildDirectories) {
  const std::string b1 = make_build("el9", "b1");
  const std::string b2 = make_build("el9", "b2", "10.0.0.2 localhost\n");
  const std::string b3 = make_build("el9", "b3", "10.0.0.3 localhost\n");
  const std::string orphan_old = make_build("el9", "orphan-old");
  const std::string orphan_new = make_build("el9", "orphan-new");
  test::mkdirs(s.store + "/el9/.staging-1/root");   // a build in progress
  test::mkdirs(s.store + "/el9/no-manifest/root");  // not a complete build directory
  const std::string latest = make_build("el9", "latest-build");
  ASSERT_EQ(::symlink("latest-build", (s.store + "/el9/latest").c_str()), 0);  // the builder's newest
  add("EL9", b1);
  add("EL9", b2);
  add("EL9", b3);
  const auto past = sys::now_unix() - 7200;
  for (const auto& d : {b1, b2, b3, orphan_old, latest}) {
    struct timeval tv[2] = {{past, 0}, {past, 0}};
    ASSERT_EQ(::utimes(d.c_str(), tv), 0);
  }
  cat::GcOptions dry;
  dry.dry_run = true;
  auto d = cat::gc(s, dry);
  ASSERT_TRUE(d) << d.error().what();
  EXPECT_EQ(d->removed, (std::vector<std::string>{orphan_old}));
  EXPECT_EQ(d->too_new, (std::vector<std::string>{orphan_new}));
  EXPECT_TRUE(sys::lstat_path(orphan_old));

  cat::GcOptions keep1;
  keep1.keep = 1;
  auto g = cat::gc(s, keep1);
  ASSERT_TRUE(g) << g.error().what();
  ASSERT_EQ(g->trimmed.size(), 1u);
  EXPECT_EQ(g->trimmed[0].build_id, "b1");
  std::vector<std::string> removed = g->removed;
  std::sort(removed.begin(), removed.end());
  EXPECT_EQ(removed, (std::vector<std::string>{b1, orphan_old}));
  EXPECT_TRUE(g->errors.empty());
  EXPECT_FALSE(sys::lstat_path(b1));
  EXPECT_FALSE(sys::lstat_path(orphan_old));
  for (const auto& kept : {b2, b3, orphan_new, latest, s.store + "/el9/.staging-1", s.store + "/el9/no-manifest"})
    EXPECT_TRUE(sys::lstat_path(kept)) << kept;
  EXPECT_EQ(test::sh("ls -A '" + s.store + "' | grep -c '^.gc-'").out, "0\n");
  EXPECT_TRUE(cat::resolve(s, "EL9"));
  ASSERT_EQ(load().find("EL9")->previous.size(), 1u);
}

TEST_F(CatalogueImages, ImportCondorConfigManifestsRootsInPlaceAndRegistersThem) {
  // Existing HTCondor chroots live outside the store; they are manifested, not copied.
  for (const char* n : {"rhel5", "sl6"}) {
    test::mkdirs(path(str("chroots/", n, "/etc")));
    test::write_file(path(str("chroots/", n, "/etc/redhat-release")), str(n, "\n"));
  }
  test::mkdirs(path("chroots/bad"));
  ASSERT_EQ(::chmod(path("chroots/bad").c_str(), 0777), 0);
  const std::string cfg = path("condor_config.local");
  test::write_file(cfg,
                   str("# old worker config\n"
                       "NAMED_CHROOT = OLD=/nowhere\n"
                       "NAMED_CHROOT = RHEL5=",
                       path("chroots/rhel5"), ", SL6=", path("chroots/sl6"), " \\\n", "   BROKEN, root=/, EMPTY=, BAD=", path("chroots/bad"), "\n"));
  auto r = cat::import_condor_config(s, cfg);
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(r->where, cfg + ":3");
  EXPECT_EQ(r->warnings, (std::vector<std::string>{
                             "skipping 'BROKEN' in NAMED_CHROOT: no '=' (expected NAME=PATH)",
                             "skipping 'EMPTY=' in NAMED_CHROOT: no path after '='",
                             "skipping 'root=/': 'root' is the host's / and is never registered",
                         }));
  ASSERT_EQ(r->items.size(), 3u);
  EXPECT_TRUE(r->items[0].imported) << r->items[0].message;
  EXPECT_TRUE(r->items[1].imported) << r->items[1].message;
  EXPECT_FALSE(r->items[2].imported);
  EXPECT_EQ(r->items[2].message,
            str("refusing to import '", path("chroots/bad"), "': root '", path("chroots/bad"), "' is writable by others (mode 0777)"));
  auto res = cat::resolve(s, "RHEL5");
  ASSERT_TRUE(res) << res.error().what();
  EXPECT_EQ(res->root, path("chroots/rhel5"));
  EXPECT_EQ(res->image.substr(0, s.store.size() + 14), s.store + "/RHEL5/import-");
  EXPECT_EQ(test::read_file(res->image + "/source"), path("chroots/rhel5") + "\n");
  EXPECT_TRUE(cat::resolve(s, "SL6"));
  EXPECT_EQ(test::read_file(path("chroots/rhel5/etc/redhat-release")), "rhel5\n");
  cat::ResolveOptions fast;
  fast.fast = true;
  EXPECT_TRUE(cat::resolve(s, "RHEL5", fast));

  // Importing the same unchanged roots again renews them instead of piling up versions.
  auto again = cat::import_condor_config(s, cfg);
  ASSERT_TRUE(again);
  EXPECT_NE(again->items[0].message.find("unchanged since build import-"), std::string::npos) << again->items[0].message;
  EXPECT_TRUE(load().find("RHEL5")->previous.empty());

  // gc never touches a root outside the store.
  cat::GcOptions all;
  all.min_age = 0;
  ASSERT_TRUE(cat::gc(s, all));
  ASSERT_TRUE(cat::remove(s, "RHEL5"));
  auto g = cat::gc(s, all);
  ASSERT_TRUE(g);
  ASSERT_EQ(g->removed.size(), 1u);
  EXPECT_EQ(g->removed[0], res->image);
  EXPECT_EQ(test::read_file(path("chroots/rhel5/etc/redhat-release")), "rhel5\n");
}

TEST_F(CatalogueImages, CondorConfigListsOnlyVerifiedEntries) {
  const std::string b1 = make_build("el9", "b1");
  const std::string b2 = make_build("rhel5", "b1");
  add("EL9", b1);
  add("RHEL5", b2);
  ASSERT_TRUE(cat::alias(s, "Rocky9", "EL9"));
  test::write_file(b2 + "/root/etc/hosts", "changed\n");
  ASSERT_TRUE(cat::verify(s, {"RHEL5"}));
  auto c = cat::condor_config(s);
  ASSERT_TRUE(c) << c.error().what();
  EXPECT_EQ(c->text, str("# Written by 'chrootctl condor-config' from ", s.store, "/catalogue.toml.\n",
                         "# Only verified images are listed. Names are case-sensitive; 'root' (the host's /) is never listed.\n",
                         "NAMED_CHROOT = EL9=", b1, "/root, Rocky9=", b1, "/root\n"));
  ASSERT_EQ(c->skipped.size(), 1u);
  EXPECT_EQ(c->skipped[0].name, "RHEL5");
  EXPECT_EQ(c->skipped[0].reason.substr(0, 26), "its verification at " + cat::format_time(load().find("RHEL5")->current.failed_at).substr(0, 6));
  // What we write reads back with HTCondor's rules.
  auto back = cat::parse_named_chroot(cat::find_named_chroot(c->text, "x").value);
  ASSERT_EQ(back.entries.size(), 2u);
  EXPECT_EQ(back.entries[0].name, "EL9");
  EXPECT_EQ(back.entries[0].path, b1 + "/root");
}

TEST_F(CatalogueImages, LookupResolvesTheRequestOfASubmitFile) {
  const std::string dir = make_build("el9", "b1");
  add("EL9", dir);
  test::write_file(path("job.sub"), "executable = /bin/job\n+RequestedChroot = \"EL9\"\nqueue\n");
  auto r = cat::lookup(s, path("job.sub"));
  ASSERT_TRUE(r) << r.error().what();
  ASSERT_TRUE(r->resolved);
  EXPECT_EQ(r->resolved->root, dir + "/root");
  test::write_file(path("job.ad"), "RequestedChroot = \"root\"\n");
  auto root = cat::lookup(s, path("job.ad"));
  ASSERT_TRUE(root);
  EXPECT_FALSE(root->resolved);
  EXPECT_EQ(root->reason, str(path("job.ad"),
                              ":1: RequestedChroot: cannot resolve 'root': 'root' is reserved: HTCondor maps 'root' "
                              "to the host's /, and chrootctl never runs a job there"));
  test::write_file(path("none.ad"), "Cmd = \"/bin/job\"\n");
  auto none = cat::lookup(s, path("none.ad"));
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->request.present);
  EXPECT_FALSE(none->resolved);
}

}  // namespace
}  // namespace chrootctl
