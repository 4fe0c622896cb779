// Recipe parsing: the shipped recipes, every kind of base, and exact error messages.
#include <gtest/gtest.h>

#include "chrootctl/builder/recipe.hpp"
#include "chrootctl/builder/sources.hpp"
#include "test_support.hpp"

namespace chrootctl::builder {
namespace {

Result<Recipe> parse(const std::string& text) { return parse_recipe(text, "recipes/x.toml", "/srv/recipes"); }

std::string errors(const std::string& text) {
  auto r = parse(text);
  EXPECT_FALSE(r) << "parsed: " << text;
  return r ? std::string() : r.error().what();
}

TEST(BuilderRecipe, ShippedRecipesParse) {
  const std::vector<std::string> dirs = {test::source_dir() + "/recipes"};
  for (const char* name : {"minimal", "debian12", "el9", "rhel5"}) {
    auto r = find_recipe(name, dirs);
    ASSERT_TRUE(r) << name << ": " << r.error().what();
    EXPECT_EQ(r->name, name);
    EXPECT_EQ(r->display_name, std::string("recipes/") + name + ".toml");
  }
  auto minimal = find_recipe("minimal", dirs);
  EXPECT_EQ(base_kind(minimal->base), "scratch");
  ASSERT_FALSE(minimal->files.empty());
  EXPECT_EQ(*minimal->files[0].src, "/bin/busybox");
  EXPECT_EQ(minimal->files[0].mode, 0755u);

  auto deb = find_recipe("debian12", dirs);
  const auto& mm = std::get<DebootstrapBase>(deb->base);
  EXPECT_EQ(mm.suite, "bookworm");
  EXPECT_EQ(mm.variant, "minbase");
  EXPECT_TRUE(mm.mirror.empty()) << "debian12 must use the host's apt sources";
  EXPECT_EQ(deb->strip.setuid, SetuidPolicy::remove);

  auto rhel5 = find_recipe("rhel5", dirs);
  const auto& ar = std::get<ArchiveBase>(rhel5->base);
  EXPECT_EQ(ar.path, "/var/lib/chrootctl/sources/centos-5.11-x86_64-rootfs.tar.xz");
}

TEST(BuilderRecipe, El9ProducesThisDnfCommandLine) {
  auto r = find_recipe("el9", {test::source_dir() + "/recipes"});
  ASSERT_TRUE(r) << r.error().what();
  const auto& d = std::get<DnfBase>(r->base);
  EXPECT_EQ(d.releasever, "9");
  EXPECT_EQ(d.reposdir, "/etc/chrootctl/repos/el9");
  EXPECT_TRUE(d.gpgcheck);
  const auto argv = dnf_argv(d, "/store/.staging/el9.X/root", "/store/.staging/el9.X/dnf/dnf.conf", "install", d.packages);
  const std::vector<std::string> expected = {"dnf",
                                             "-y",
                                             "--noplugins",
                                             "--config=/store/.staging/el9.X/dnf/dnf.conf",
                                             "--installroot=/store/.staging/el9.X/root",
                                             "--releasever=9",
                                             "install",
                                             "bash",
                                             "coreutils-single",
                                             "glibc-minimal-langpack",
                                             "rocky-release",
                                             "findutils",
                                             "tar",
                                             "gzip",
                                             "which"};
  EXPECT_EQ(argv, expected);
  EXPECT_EQ(rpm_macros(), "%_dbpath /var/lib/rpm\n");
  EXPECT_EQ(dnf_config(d, d.reposdir),
            "[main]\ngpgcheck=1\ninstall_weak_deps=False\nbest=True\nskip_if_unavailable=False\nkeepcache=False\n"
            "reposdir=/etc/chrootctl/repos/el9\n");
  // How the builder runs it: contained in private mount and PID namespaces.
  const auto wrapped = contained({"dnf", "-y"});
  const std::vector<std::string> w = {"unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child", "--", "dnf", "-y"};
  EXPECT_EQ(wrapped, w);
}

TEST(BuilderRecipe, DnfReposOnTheCommandLine) {
  auto r = parse(
      "name = \"t\"\n[base]\ndnf = { releasever = \"9\", packages = [\"bash\"], gpgkeys = [\"keys/RPM-GPG-KEY\"], "
      "repos = { baseos = \"file:///srv/repo/baseos\", appstream = \"https://mirror.example.org/9/AppStream/x86_64/os/\" } }\n");
  ASSERT_TRUE(r) << r.error().what();
  const auto& d = std::get<DnfBase>(r->base);
  const auto argv = dnf_argv(d, "/r", "/c", "install", {"bash"});
  const std::vector<std::string> expected = {"dnf",
                                             "-y",
                                             "--noplugins",
                                             "--config=/c",
                                             "--installroot=/r",
                                             "--releasever=9",
                                             "--repofrompath=appstream,https://mirror.example.org/9/AppStream/x86_64/os/",
                                             "--setopt=appstream.gpgcheck=1",
                                             "--setopt=appstream.gpgkey=file:///srv/recipes/keys/RPM-GPG-KEY",
                                             "--repofrompath=baseos,file:///srv/repo/baseos",
                                             "--setopt=baseos.gpgcheck=1",
                                             "--setopt=baseos.gpgkey=file:///srv/recipes/keys/RPM-GPG-KEY",
                                             "install",
                                             "bash"};
  EXPECT_EQ(argv, expected);
}

TEST(BuilderRecipe, EveryBaseKind) {
  auto a = parse("name = \"a\"\n[base]\narchive = { path = \"c5.tar.xz\", sha256 = \"" + std::string(64, 'a') + "\" }\n");
  ASSERT_TRUE(a) << a.error().what();
  EXPECT_EQ(std::get<ArchiveBase>(a->base).path, "/srv/recipes/c5.tar.xz");
  auto o = parse("name = \"o\"\n[base]\noci = { path = \"/x/img.tar\", sha256 = \"" + std::string(64, 'b') + "\", image = \"c:5\" }\n");
  ASSERT_TRUE(o) << o.error().what();
  EXPECT_EQ(std::get<OciBase>(o->base).image, "c:5");
  auto i = parse("name = \"i\"\n[base]\nimage = \"rhel5\"\n");
  ASSERT_TRUE(i);
  EXPECT_EQ(std::get<ImageBase>(i->base).name, "rhel5");
  auto d = parse("name = \"d\"\n[base]\ndirectory = \"/srv/tree\"\n");
  ASSERT_TRUE(d);
  EXPECT_EQ(std::get<DirectoryBase>(d->base).path, "/srv/tree");
  auto db =
      parse("name = \"db\"\n[base]\ndebootstrap = { suite = \"bookworm\", mirror = \"http://deb.example.org/debian\", packages = [\"less\"] }\n");
  ASSERT_TRUE(db) << db.error().what();
  const auto& dd = std::get<DebootstrapBase>(db->base);
  EXPECT_EQ(dd.tool, DebootstrapBase::Tool::debootstrap);
  const std::vector<std::string> argv = {"debootstrap", "--variant=minbase", "--include=less", "bookworm", "/t", "http://deb.example.org/debian"};
  EXPECT_EQ(debootstrap_argv(dd, "/t", dd.mirror), argv);
}

TEST(BuilderRecipe, MmdebstrapCommandLine) {
  auto r = parse(
      "name = \"d\"\n[base]\nmmdebstrap = { suite = \"bookworm\", variant = \"minbase\", packages = [\"python3\", \"less\"], components = [\"main\", "
      "\"contrib\"] }\n");
  ASSERT_TRUE(r) << r.error().what();
  const std::vector<std::string> expected = {
      "mmdebstrap", "--mode=root", "--format=directory", "--variant=minbase", "--include=python3,less", "--components=main,contrib", "--",
      "bookworm",   "/s/root",     "/s/apt.sources"};
  EXPECT_EQ(mmdebstrap_argv(std::get<DebootstrapBase>(r->base), "/s/root", "/s/apt.sources"), expected);
}

TEST(BuilderRecipe, UnknownKeysWithSuggestionsAllReportedTogether) {
  EXPECT_EQ(errors("name = \"x\"\npakages = 1\n[base]\nscratch = true\n[strip]\nsetiud = \"remove\"\n"),
            "recipes/x.toml:2:1: error: unknown key 'pakages' (did you mean 'packages'?)\n"
            " 2 | pakages = 1\n"
            "   | ^\n"
            "recipes/x.toml:6:1: error: unknown key 'strip.setiud' (did you mean 'setuid'?)\n"
            " 6 | setiud = \"remove\"\n"
            "   | ^\n"
            "2 errors in recipes/x.toml");
}

TEST(BuilderRecipe, BadValuesNameTheirLineAndColumn) {
  const auto e = errors(
      "name = \"Bad Name\"\n"
      "[base]\n"
      "archive = { path = \"x.tar\", sha256 = \"abc\" }\n"
      "[strip]\n"
      "setuid = \"clearbit\"\n"
      "remove = [\"usr/share/doc\", \"/a/b**\"]\n"
      "[[files]]\n"
      "dst = \"/etc/../shadow\"\n"
      "mode = \"0999\"\n");
  EXPECT_NE(e.find("recipes/x.toml:1:8: error: recipe name 'Bad Name' must be 1-64 characters"), std::string::npos) << e;
  EXPECT_NE(e.find("recipes/x.toml:3:38: error: 'base.archive.sha256' must be 64 lowercase hex digits (the output of sha256sum)"), std::string::npos)
      << e;
  EXPECT_NE(
      e.find("recipes/x.toml:5:10: error: 'strip.setuid' must be \"remove\", \"clear-bit\" or \"keep\", not 'clearbit' (did you mean 'clear-bit'?)"),
      std::string::npos)
      << e;
  EXPECT_NE(
      e.find("recipes/x.toml:6:11: error: 'strip.remove' pattern 'usr/share/doc': must be an absolute path inside the tree (starting with '/')"),
      std::string::npos)
      << e;
  EXPECT_NE(e.find("recipes/x.toml:6:28: error: 'strip.remove' pattern '/a/b**': '**' must be a whole path component"), std::string::npos) << e;
  EXPECT_NE(e.find("recipes/x.toml:8:7: error: 'files.dst': must not contain '.' or '..' components"), std::string::npos) << e;
  EXPECT_NE(e.find("recipes/x.toml:9:8: error: 'files.mode' must be octal like \"0644\", not '0999'"), std::string::npos) << e;
  EXPECT_NE(e.find("recipes/x.toml:7:1: error: a [[files]] entry needs 'src' (a host file) or 'content'"), std::string::npos) << e;
  EXPECT_NE(e.find("8 errors in recipes/x.toml"), std::string::npos) << e;
  EXPECT_NE(e.find(" 5 | setuid = \"clearbit\"\n   |          ^\n"), std::string::npos) << e;
}

TEST(BuilderRecipe, OutputIsADirectoryOrSealed) {
  auto d = parse("name = \"x\"\n[base]\nscratch = true\n");
  ASSERT_TRUE(d) << d.error().what();
  EXPECT_EQ(d->output.format, Output::Format::directory);
  auto s = parse("name = \"x\"\n[base]\nscratch = true\n[output]\nformat = \"sealed\"\n");
  ASSERT_TRUE(s) << s.error().what();
  EXPECT_EQ(s->output.format, Output::Format::sealed);
  auto bad = parse("name = \"x\"\n[base]\nscratch = true\n[output]\nformat = \"squashfs\"\n");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().what().find("recipes/x.toml:5:10: error: 'output.format' must be \"directory\" or \"sealed\", not 'squashfs'"),
            std::string::npos)
      << bad.error().what();
}

TEST(BuilderRecipe, ExactlyOneBase) {
  EXPECT_EQ(errors("name = \"x\"\n[base]\nimage = \"a\"\nscratch = true\n"),
            "recipes/x.toml:4:1: error: [base] has more than one source ('image' and 'scratch'); a recipe has exactly one\n"
            " 4 | scratch = true\n"
            "   | ^");
  const auto none = errors("name = \"x\"\n[base]\nmirror = \"http://x\"\n");
  EXPECT_NE(none.find("error: [base] needs exactly one source: archive, oci, mmdebstrap, debootstrap, dnf, image, directory or scratch"),
            std::string::npos)
      << none;
  EXPECT_NE(none.find("recipes/x.toml:3:1: error: unknown key 'base.mirror'"), std::string::npos) << none;
  const auto missing = errors("name = \"x\"\n");
  EXPECT_NE(missing.find("error: missing required key 'base' (a table)"), std::string::npos) << missing;
}

TEST(BuilderRecipe, CommandLineValuesCannotInjectOptions) {
  const auto e = errors("name = \"x\"\n[base]\nmmdebstrap = { suite = \"--hook-dir=/tmp\", packages = [\"a b\", \"-x\"] }\n");
  EXPECT_NE(e.find("'base.mmdebstrap.suite' '--hook-dir=/tmp' is not a suite name"), std::string::npos) << e;
  EXPECT_NE(e.find("'base.mmdebstrap.packages' item 'a b' is not a plain name"), std::string::npos) << e;
  EXPECT_NE(e.find("'base.mmdebstrap.packages' item '-x' is not a plain name"), std::string::npos) << e;
}

TEST(BuilderRecipe, RecipeFoundByNameMustCarryThatName) {
  char tmpl[] = "/tmp/chrootctl-recipe.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  test::write_file(dir + "/foo.toml", "name = \"bar\"\n[base]\nscratch = true\n");
  auto r = find_recipe("foo", {dir});
  ASSERT_FALSE(r);
  const std::string shown = dir.substr(5) + "/foo.toml";  // the recipe directory's own name and the file
  const std::string first = shown + ":1:8: error: recipe '" + shown + "' is named 'bar'; a recipe found by name must say name = \"foo\"\n";
  EXPECT_EQ(r.error().what().substr(0, first.size()), first) << r.error().what();
  auto missing = find_recipe("nope", {dir});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().what(), "no recipe named 'nope' in " + dir);
  auto bad = find_recipe("../etc/passwd", {dir});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().what(), "'../etc/passwd' is neither a recipe name nor a path ending in .toml");
  test::sh("rm -rf " + dir);
}

}  // namespace
}  // namespace chrootctl::builder
