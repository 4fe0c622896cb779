// Extraction of rootfs tarballs and OCI images: everything kept, nothing escapes the root.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "builder_fixtures.hpp"
#include "chrootctl/builder/extract.hpp"
#include "chrootctl/builder/strip.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/tree_writer.hpp"
#include "test_support.hpp"

namespace chrootctl::builder {
namespace {

using fixtures::TarEntry;

// cap_net_raw=ep as a VFS_CAP_REVISION_2 security.capability value.
const std::string k_cap("\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 20);

class BuilderExtract : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    root = path("root");
    outside = path("outside");
    test::mkdirs(root);
    test::mkdirs(outside);
  }
  Result<ExtractStats> extract(const std::vector<TarEntry>& entries, const std::string& filter = "") {
    const std::string archive = path("a.tar");
    fixtures::write_tar(archive, entries, filter);
    auto tree = TreeWriter::open(root);
    if (!tree) return fail(tree.error());
    auto r = extract_archive(archive, *tree);
    if (r) {
      if (auto f = tree->finish(); !f) return fail(f.error());
    }
    return r;
  }
  bool exists(const std::string& p) {
    struct stat st {};
    return ::lstat(p.c_str(), &st) == 0;
  }
  std::string root, outside;
};

TEST_F(BuilderExtract, KeepsOwnersModesSetuidLinksDevicesAndXattrs) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  CHROOTCTL_REQUIRE_PRIVILEGE("mknod");
  for (const std::string filter : {"", "gzip", "xz", "zstd", "bzip2"}) {
    SCOPED_TRACE("filter " + filter);
    test::sh("rm -rf '" + root + "' && mkdir '" + root + "'");
    auto r = extract(
        {{".", 'd', "", 0755},
         {"usr", 'd', "", 0755},
         {"usr/bin", 'd', "", 0711, 0, 0},
         {"usr/bin/su", 'f', "su binary", 04755},
         {"usr/bin/wall", 'f', "wall", 02755, 0, 5},
         {"usr/bin/ping", 'f', "ping", 0755, 0, 0, 0, 0, {{"security.capability", k_cap}, {"user.note", "hi"}, {"trusted.overlay.redirect", "/etc"}}},
         {"usr/bin/ping6", 'h', "usr/bin/ping"},
         {"home", 'd', "", 0755},
         {"home/u", 'd', "", 0700, 1234, 5678},
         {"home/u/f", 'f', "data", 0640, 1234, 5678},
         {"bin", 'l', "usr/bin"},
         {"dev", 'd', "", 0755},
         {"dev/null", 'c', "", 0666, 0, 0, 1, 3},
         {"dev/loop0", 'b', "", 0660, 0, 6, 7, 0},
         {"run", 'd', "", 0755},
         {"run/fifo", 'p', "", 0600}},
        filter);
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(r->entries, 16u);
    EXPECT_EQ(r->newest_mtime, 1700000000);
    struct stat st {};
    ASSERT_EQ(::lstat((root + "/usr/bin/su").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 04755u);
    ASSERT_EQ(::lstat((root + "/usr/bin/wall").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 02755u);
    EXPECT_EQ(st.st_gid, 5u);
    ASSERT_EQ(::lstat((root + "/usr/bin").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0711u) << "directory modes are applied after their contents";
    EXPECT_EQ(st.st_mtime, 1700000000);
    ASSERT_EQ(::lstat((root + "/home/u/f").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 1234u);
    EXPECT_EQ(st.st_gid, 5678u);
    EXPECT_EQ(st.st_mode & 07777, 0640u);
    EXPECT_EQ(test::read_file(root + "/home/u/f"), "data");
    char cap[64];
    const auto n = ::getxattr((root + "/usr/bin/ping").c_str(), "security.capability", cap, sizeof cap);
    ASSERT_EQ(n, 20) << "security.capability survives the chown";
    EXPECT_EQ(std::string(cap, 20), k_cap);
    ASSERT_EQ(::getxattr((root + "/usr/bin/ping").c_str(), "user.note", cap, sizeof cap), 2);
    EXPECT_LT(::getxattr((root + "/usr/bin/ping").c_str(), "trusted.overlay.redirect", cap, sizeof cap), 0) << "trusted.* is not restored";
    EXPECT_EQ(r->xattrs_skipped, 1u);
    struct stat a {
    }, b{};
    ASSERT_EQ(::lstat((root + "/usr/bin/ping").c_str(), &a), 0);
    ASSERT_EQ(::lstat((root + "/usr/bin/ping6").c_str(), &b), 0);
    EXPECT_EQ(a.st_ino, b.st_ino) << "hard link";
    EXPECT_EQ(a.st_nlink, 2u);
    char target[64] = {};
    ASSERT_EQ(::readlink((root + "/bin").c_str(), target, sizeof target), 7);
    EXPECT_STREQ(target, "usr/bin");
    ASSERT_EQ(::lstat((root + "/dev/null").c_str(), &st), 0);
    EXPECT_TRUE(S_ISCHR(st.st_mode));
    EXPECT_EQ(st.st_rdev, makedev(1, 3));
    EXPECT_EQ(st.st_mode & 07777, 0666u);
    ASSERT_EQ(::lstat((root + "/dev/loop0").c_str(), &st), 0);
    EXPECT_TRUE(S_ISBLK(st.st_mode));
    EXPECT_EQ(st.st_gid, 6u);
    ASSERT_EQ(::lstat((root + "/run/fifo").c_str(), &st), 0);
    EXPECT_TRUE(S_ISFIFO(st.st_mode));
  }
}

TEST_F(BuilderExtract, RefusesAbsoluteNames) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  auto r = extract({{"etc", 'd', "", 0755}, {outside + "/evil", 'f', "owned"}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().what(),
            str("extracting ", path("a.tar"), ": refusing entry '", outside, "/evil': absolute path (entries must stay inside the root)"));
  EXPECT_FALSE(exists(outside + "/evil"));
}

TEST_F(BuilderExtract, RefusesDotDot) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  auto r = extract({{"etc/../../outside/evil", 'f', "owned"}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().what(),
            str("extracting ", path("a.tar"), ": refusing entry 'etc/../../outside/evil': '..' component (entries must stay inside the root)"));
  EXPECT_FALSE(exists(outside + "/evil"));
}

TEST_F(BuilderExtract, RefusesWritingThroughAPlantedSymlink) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  for (const std::string& target : {outside, std::string("../outside")}) {
    SCOPED_TRACE(target);
    test::sh("rm -rf '" + root + "' && mkdir '" + root + "'");
    auto r = extract({{"escape", 'l', target}, {"escape/evil", 'f', "owned"}});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().what(), str("extracting ", path("a.tar"),
                                    ": refusing '/escape/evil': '/escape' is a symlink (nothing is written through a symlink inside the tree)"));
    EXPECT_FALSE(exists(outside + "/evil"));
    // A directory entry below the symlink is refused the same way.
    test::sh("rm -rf '" + root + "' && mkdir '" + root + "'");
    auto d = extract({{"escape", 'l', target}, {"escape/sub/", 'd', "", 0755}});
    ASSERT_FALSE(d);
    EXPECT_FALSE(exists(outside + "/sub"));
  }
}

TEST_F(BuilderExtract, AFileEntryReplacesASymlinkInsteadOfWritingThroughIt) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  test::write_file(outside + "/target", "host file");
  auto r = extract({{"x", 'l', outside + "/target"}, {"x", 'f', "archive contents"}});
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(test::read_file(outside + "/target"), "host file");
  struct stat st {};
  ASSERT_EQ(::lstat((root + "/x").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(test::read_file(root + "/x"), "archive contents");
}

TEST_F(BuilderExtract, RefusesHardLinksThatLeaveTheTree) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  test::write_file(outside + "/secret", "secret");
  auto r = extract({{"h", 'h', "../outside/secret"}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().what(),
            str("extracting ", path("a.tar"), ": refusing entry '../outside/secret': '..' component (entries must stay inside the root)"));
  test::sh("rm -rf '" + root + "' && mkdir '" + root + "'");
  auto through = extract({{"escape", 'l', outside}, {"h", 'h', "escape/secret"}});
  ASSERT_FALSE(through);
  EXPECT_EQ(through.error().what(),
            str("extracting ", path("a.tar"),
                ": refusing '/escape/secret': '/escape' is a symlink (nothing is written through a symlink inside the tree)"));
  struct stat st {};
  ASSERT_EQ(::lstat((outside + "/secret").c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 1u);
}

TEST_F(BuilderExtract, ChecksThePinnedDigestOfWhatItRead) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  const std::string archive = path("b.tar.xz");
  fixtures::write_tar(archive, {{"etc", 'd', "", 0755}, {"etc/hostname", 'f', "x\n"}}, "xz");
  const std::string good = fixtures::file_sha256(archive);
  auto tree = TreeWriter::open(root);
  ASSERT_TRUE(tree);
  auto ok = extract_archive(archive, *tree, good);
  ASSERT_TRUE(ok) << ok.error().what();
  EXPECT_EQ(ok->sha256, good);
  auto bad = extract_archive(archive, *tree, std::string(64, 'a'));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Errc::mismatch);
  EXPECT_EQ(bad.error().what(), str("'", archive, "' has sha256 ", good, " but the recipe pins ", std::string(64, 'a')));
}

std::vector<std::vector<TarEntry>> whiteout_layers() {
  return {{{"etc", 'd', "", 0755},
           {"etc/a", 'f', "a"},
           {"etc/b", 'f', "b"},
           {"opt", 'd', "", 0755},
           {"opt/old", 'd', "", 0755},
           {"opt/old/f", 'f', "old"},
           {"opt/keep-not", 'f', "x"},
           {"usr", 'd', "", 0755},
           {"usr/bin", 'd', "", 0755},
           {"usr/bin/tool", 'f', "v1", 04755}},
          {{"etc/.wh.a", 'f', ""}, {"opt/.wh..wh..opq", 'f', ""}, {"opt/new", 'f', "new"}, {"usr/bin/tool", 'f', "v2", 0755}, {"etc/c", 'f', "c"}}};
}

void expect_merged(const std::string& root) {
  struct stat st {};
  EXPECT_NE(::lstat((root + "/etc/a").c_str(), &st), 0) << ".wh.a removes a lower-layer file";
  EXPECT_EQ(test::read_file(root + "/etc/b"), "b");
  EXPECT_EQ(test::read_file(root + "/etc/c"), "c");
  EXPECT_NE(::lstat((root + "/etc/.wh.a").c_str(), &st), 0) << "whiteout markers are not extracted";
  EXPECT_NE(::lstat((root + "/opt/old").c_str(), &st), 0) << "an opaque directory hides the lower layers";
  EXPECT_NE(::lstat((root + "/opt/keep-not").c_str(), &st), 0);
  EXPECT_NE(::lstat((root + "/opt/.wh..wh..opq").c_str(), &st), 0);
  EXPECT_EQ(test::read_file(root + "/opt/new"), "new");
  ASSERT_EQ(::lstat((root + "/usr/bin/tool").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_EQ(test::read_file(root + "/usr/bin/tool"), "v2");
}

TEST_F(BuilderExtract, DockerSaveLayersInOrderWithWhiteouts) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  const std::string tarball = path("img.docker.tar");
  fixtures::write_docker_save(tarball, m_dir, whiteout_layers(), "centos:5");
  test::mkdirs(path("scratch"));
  auto tree = TreeWriter::open(root);
  ASSERT_TRUE(tree);
  auto r = extract_oci(tarball, fixtures::file_sha256(tarball), "", path("scratch"), *tree);
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(r->image, "centos:5");
  ASSERT_EQ(r->layers.size(), 2u);
  EXPECT_EQ(r->layers[0], "l0aaaa/layer.tar");
  expect_merged(root);
}

TEST_F(BuilderExtract, OciLayoutLayersInOrderWithWhiteoutsAndCheckedDigests) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  const std::string tarball = path("img.oci.tar");
  fixtures::write_oci_layout(tarball, m_dir, whiteout_layers(), "centos5");
  test::mkdirs(path("scratch"));
  auto tree = TreeWriter::open(root);
  ASSERT_TRUE(tree);
  auto wrong = extract_oci(tarball, fixtures::file_sha256(tarball), "centos6", path("scratch"), *tree);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().what(), str("'", tarball, "' has no image 'centos6' (it has: centos5)"));
  test::sh("rm -rf '" + path("scratch") + "' && mkdir '" + path("scratch") + "'");
  auto r = extract_oci(tarball, fixtures::file_sha256(tarball), "centos5", path("scratch"), *tree);
  ASSERT_TRUE(r) << r.error().what();
  ASSERT_EQ(r->layers.size(), 2u);
  EXPECT_EQ(r->layers[0].substr(0, 7), "sha256:");
  expect_merged(root);
}

TEST_F(BuilderExtract, OciLayerEscapesAreRefusedToo) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  const std::string tarball = path("evil.oci.tar");
  fixtures::write_oci_layout(tarball, m_dir, {{{"lib", 'l', outside}}, {{"lib/evil", 'f', "owned"}}}, "evil");
  test::mkdirs(path("scratch"));
  auto tree = TreeWriter::open(root);
  ASSERT_TRUE(tree);
  auto r = extract_oci(tarball, "", "", path("scratch"), *tree);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().what().find("refusing '/lib/evil': '/lib' is a symlink"), std::string::npos) << r.error().what();
  struct stat st {};
  EXPECT_NE(::lstat((outside + "/evil").c_str(), &st), 0);
  // A whiteout cannot reach outside either.
  const std::string t2 = path("evil2.oci.tar");
  test::write_file(outside + "/victim", "v");
  fixtures::write_oci_layout(t2, m_dir, {{{"lib2", 'l', outside}}, {{"lib2/.wh.victim", 'f', ""}}}, "evil2");
  test::sh("rm -rf '" + path("scratch") + "' && mkdir '" + path("scratch") + "'");
  auto w = extract_oci(t2, "", "", path("scratch"), *tree);
  ASSERT_FALSE(w);
  EXPECT_EQ(test::read_file(outside + "/victim"), "v");
  // Nor can a whiteout of "." or "..": it would name the layer's directory or the tree's parent.
  for (const char* name : {".wh..", ".wh..."}) {
    const std::string t3 = path("evil3.oci.tar");
    fixtures::write_oci_layout(t3, m_dir, {{{"keep", 'f', "k"}}, {{name, 'f', ""}}}, "evil3");
    test::sh("rm -rf '" + path("scratch") + "' && mkdir '" + path("scratch") + "'");
    auto d = extract_oci(t3, "", "", path("scratch"), *tree);
    ASSERT_FALSE(d) << name;
    EXPECT_NE(d.error().what().find("names '"), std::string::npos) << d.error().what();
    EXPECT_EQ(test::read_file(root + "/keep"), "k") << name;
  }
}

}  // namespace
}  // namespace chrootctl::builder
