// Tree paths, removal globs, and the host apt sources a Debian recipe builds from.
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "chrootctl/builder/paths.hpp"
#include "chrootctl/builder/sources.hpp"
#include "chrootctl/builder/strip.hpp"
#include "chrootctl/common/files.hpp"
#include "chrootctl/common/tree_path.hpp"
#include "chrootctl/common/tree_writer.hpp"

namespace chrootctl::builder {
namespace {

TEST(BuilderPaths, TreePathProblems) {
  EXPECT_FALSE(tree_path_problem("/"));
  EXPECT_FALSE(tree_path_problem("/etc/passwd"));
  EXPECT_EQ(*tree_path_problem("etc"), "must be an absolute path inside the tree (starting with '/')");
  EXPECT_EQ(*tree_path_problem("/etc/"), "must not end with '/'");
  EXPECT_EQ(*tree_path_problem("/a//b"), "must not contain '//'");
  EXPECT_EQ(*tree_path_problem("/a/../b"), "must not contain '.' or '..' components");
  EXPECT_EQ(*tree_path_problem("/a/./b"), "must not contain '.' or '..' components");
  EXPECT_EQ(*tree_path_problem(""), "empty path");
}

TEST(TreePaths, SplitComponentsAndManifestPaths) {
  EXPECT_EQ(split_tree_path("/a/b"), std::make_pair(std::string("/a"), std::string("b")));
  EXPECT_EQ(split_tree_path("/a"), std::make_pair(std::string("/"), std::string("a")));
  EXPECT_EQ(path_components("/a/b"), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(path_components("/").empty());
  EXPECT_TRUE(check_manifest_path("/etc/passwd"));
  EXPECT_TRUE(check_manifest_path("/"));
  auto bad = check_manifest_path("/a/../etc");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Errc::parse);
  EXPECT_EQ(bad.error().message(), "manifest path '/a/../etc': must not contain '.' or '..' components");
  EXPECT_FALSE(check_manifest_path("etc"));
}

TEST(TreePaths, HostPathHelpers) {
  EXPECT_EQ(base_name("/srv/store/el9/b1"), "b1");
  EXPECT_EQ(base_name("b1"), "b1");
  EXPECT_EQ(base_name("/b1"), "b1");
  EXPECT_EQ(parent_dir("/srv/store/el9"), "/srv/store");
  EXPECT_EQ(parent_dir("/srv"), "/");
  EXPECT_EQ(parent_dir("out.tar.zst"), ".");
  EXPECT_EQ(parent_dir("dir/out.tar.zst"), "dir");
}

TEST(TreeWriterExclusive, ACopyNeverReplacesAnEntry) {
  auto dir = TempDir::create("/tmp/chrootctl-tree-writer.");
  ASSERT_TRUE(dir) << dir.error().what();
  auto tree = TreeWriter::open(dir->path(), true);
  ASSERT_TRUE(tree) << tree.error().what();
  const EntryMeta meta{0755, ::geteuid(), ::getegid(), 1700000000, 0, {}};
  ASSERT_TRUE(tree->make_dir("/a", meta));
  auto again = tree->make_dir("/a", meta);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), Errc::exists);
  auto f = tree->create_file("/a/f");
  ASSERT_TRUE(f) << f.error().what();
  auto second = tree->create_file("/a/f");
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code(), Errc::exists);
  EXPECT_FALSE(tree->make_symlink("/a/f", "x", meta)) << "nor a symlink over a file";
  // The tree's root itself is never reached through a symlink.
  const std::string link = dir->path() + "/link";
  ASSERT_EQ(::symlink(dir->path().c_str(), link.c_str()), 0);
  EXPECT_FALSE(TreeWriter::open(link));
}

TEST(BuilderPaths, Globs) {
  EXPECT_TRUE(glob_match("/usr/share/doc/**", "/usr/share/doc/bash/copyright"));
  EXPECT_TRUE(glob_match("/usr/share/doc/**", "/usr/share/doc/bash"));
  EXPECT_FALSE(glob_match("/usr/share/doc/**", "/usr/share/doc")) << "a trailing ** keeps the directory itself";
  EXPECT_FALSE(glob_match("/usr/share/doc/**", "/usr/share/docs/x"));
  EXPECT_TRUE(glob_match("/etc/ssh/ssh_host_*", "/etc/ssh/ssh_host_ed25519_key"));
  EXPECT_FALSE(glob_match("/etc/ssh/ssh_host_*", "/etc/ssh/sshd_config"));
  EXPECT_FALSE(glob_match("/etc/*", "/etc/ssh/ssh_config")) << "* does not cross '/'";
  EXPECT_TRUE(glob_match("/**/*.pyc", "/usr/lib/python3/x.pyc"));
  EXPECT_TRUE(glob_match("/**/*.pyc", "/x.pyc"));
  EXPECT_TRUE(glob_match("/var/lib/dpkg/*-old", "/var/lib/dpkg/status-old"));
  EXPECT_TRUE(glob_match("/etc/machine-id", "/etc/machine-id"));
  EXPECT_FALSE(glob_match("/etc/machine-id", "/etc/machine-id2"));
  EXPECT_TRUE(glob_match("/lib/[a-c]*", "/lib/bar"));
  EXPECT_FALSE(glob_match("/lib/[!a-c]*", "/lib/bar"));
  EXPECT_EQ(*glob_problem("/"), "'/' would remove the whole tree");
  EXPECT_EQ(*glob_problem("/usr/**doc"), "'**' must be a whole path component (like /usr/share/doc/**)");
}

TEST(BuilderPaths, ArchiveEntryNames) {
  EXPECT_EQ(*normalize_entry_path("./etc/passwd"), "/etc/passwd");
  EXPECT_EQ(*normalize_entry_path("etc//x/"), "/etc/x");
  EXPECT_EQ(*normalize_entry_path("."), "/");
  EXPECT_EQ(*normalize_entry_path("./"), "/");
  EXPECT_EQ(normalize_entry_path("/etc/passwd").error().what(), "refusing entry '/etc/passwd': absolute path (entries must stay inside the root)");
  EXPECT_EQ(normalize_entry_path("a/../../etc/passwd").error().what(),
            "refusing entry 'a/../../etc/passwd': '..' component (entries must stay inside the root)");
  EXPECT_EQ(normalize_entry_path("..").error().what(), "refusing entry '..': '..' component (entries must stay inside the root)");
}

TEST(BuilderPaths, ShadowRule) {
  EXPECT_EQ(locked_password("$y$j9T$abc$def"), "*");
  EXPECT_EQ(locked_password(""), "*") << "an empty field means login without a password";
  EXPECT_EQ(locked_password("!$6$salt$hash"), "!");
  EXPECT_EQ(locked_password("*"), std::nullopt);
  EXPECT_EQ(locked_password("!"), std::nullopt);
  EXPECT_EQ(locked_password("!*"), std::nullopt);
  EXPECT_EQ(locked_password("*LK*"), std::nullopt);
}

TEST(BuilderSources, HostAptSourcesForASuite) {
  const std::vector<std::pair<std::string, std::string>> files = {
      {"sources.list",
       "# comment\n"
       "deb [signed-by=/usr/share/keyrings/k.gpg arch=amd64] http://deb.example.org/debian bookworm main contrib\n"
       "deb-src http://deb.example.org/debian bookworm main\n"
       "deb http://other.example.org/debian trixie main\n"},
      {"debian.sources",
       "Types: deb\nURIs: http://deb.example.org/debian\nSuites: bookworm-updates trixie-updates\nComponents: main\n"
       "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
       "Types: deb\nURIs: http://security.example.org/debian-security\nSuites: bookworm-security\nComponents: main\n\n"
       "Enabled: no\nTypes: deb\nURIs: http://off.example.org/debian\nSuites: bookworm\n"},
      {"nodesource.sources", "Types: deb\nURIs: https://n.example.org/node_20.x\nSuites: nodistro\nComponents: main\n"}};
  const std::string got = apt_sources_for_suite(files, "bookworm");
  EXPECT_EQ(got,
            "Types: deb\nURIs: http://deb.example.org/debian\nSuites: bookworm\nComponents: main contrib\n"
            "Signed-By: /usr/share/keyrings/k.gpg\nArchitectures: amd64\n"
            "\n"
            "Types: deb\nURIs: http://deb.example.org/debian\nSuites: bookworm-updates\nComponents: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
            "\n"
            "Types: deb\nURIs: http://security.example.org/debian-security\nSuites: bookworm-security\nComponents: main\n");
  EXPECT_EQ(first_mirror_for_suite(got, "bookworm"), "http://deb.example.org/debian");
  EXPECT_EQ(apt_sources_for_suite(files, "sid"), "");
}

}  // namespace
}  // namespace chrootctl::builder
