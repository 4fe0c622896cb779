// [run] commands inside the tree being built (through the launcher's run_build_command): a
// private /proc and /dev, nothing left mounted on the host, failures reported, and the strip
// step still applied to what the commands made.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "chrootctl/builder/build.hpp"
#include "chrootctl/builder/recipe.hpp"
#include "chrootctl/common/strings.hpp"
#include "test_support.hpp"

namespace chrootctl::builder {
namespace {

class BuilderInTree : public test::TempDirTest {
 protected:
  Result<BuildResult> build_named(const std::string& name, const std::string& body) {
    const std::string file = path(name + ".toml");
    test::write_file(file, "name = \"" + name + "\"\n" + body);
    auto r = load_recipe(file, "recipes/" + name + ".toml");
    if (!r) return fail(r.error());
    BuildOptions o;
    o.store = path("store");
    return build(*r, o);
  }
};

TEST_F(BuilderInTree, RunCommandsInsideTheTreeWithProcAndDev) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  CHROOTCTL_REQUIRE_PRIVILEGE("mount-ns");
  CHROOTCTL_REQUIRE_PRIVILEGE("pid-ns");
  CHROOTCTL_REQUIRE_TOOL("busybox");
  auto minimal = find_recipe("minimal", {test::source_dir() + "/recipes"});
  ASSERT_TRUE(minimal) << minimal.error().what();
  BuildOptions o;
  o.store = path("store");
  ASSERT_TRUE(build(*minimal, o));
  auto b = build_named("runner",
                       "[base]\nimage = \"minimal\"\n[strip]\nsetuid = \"remove\"\n[run]\ncommands = [\n"
                       "  \"echo made-inside > /etc/made && id -u > /etc/uid\",\n"
                       "  \"test -r /proc/self/status && test -c /dev/null && echo $$ > /etc/pid\",\n"
                       "  \"cp /bin/busybox /bin/sneaky && chmod 4755 /bin/sneaky\",\n"
                       "]\n");
  ASSERT_TRUE(b) << b.error().what();
  EXPECT_EQ(test::read_file(b->root + "/etc/made"), "made-inside\n");
  EXPECT_EQ(test::read_file(b->root + "/etc/uid"), "0\n");
  EXPECT_LE(std::stoi(test::read_file(b->root + "/etc/pid")), 2) << "a PID namespace of its own";
  struct stat st {};
  EXPECT_NE(::lstat((b->root + "/bin/sneaky").c_str(), &st), 0) << "the strip step runs after the commands";
  EXPECT_NE(test::read_file(b->build_dir + "/strip-report").find("\"path\": \"/bin/sneaky\""), std::string::npos);
  EXPECT_EQ(::lstat((b->root + "/proc/self").c_str(), &st), -1) << "/proc was mounted in the command's namespace only";
  EXPECT_EQ(test::read_file("/proc/self/mountinfo").find(path("store")), std::string::npos) << "nothing left mounted on the host";
  const std::string log = test::read_file(b->build_dir + "/build.log");
  EXPECT_NE(log.find("run 3/3: cp /bin/busybox /bin/sneaky && chmod 4755 /bin/sneaky\n"), std::string::npos) << log;
  EXPECT_NE(log.find("strip: setuid-removed /bin/sneaky (mode 4755)"), std::string::npos) << log;
}

TEST_F(BuilderInTree, AFailingCommandFailsTheBuildAndLeavesNoImage) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  CHROOTCTL_REQUIRE_PRIVILEGE("mount-ns");
  CHROOTCTL_REQUIRE_TOOL("busybox");
  auto minimal = find_recipe("minimal", {test::source_dir() + "/recipes"});
  ASSERT_TRUE(minimal);
  BuildOptions o;
  o.store = path("store");
  ASSERT_TRUE(build(*minimal, o));
  auto b = build_named("failing", "[base]\nimage = \"minimal\"\n[run]\ncommands = [\"true\", \"echo oops >&2; exit 3\"]\n");
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().what(), "[run] command 2 'echo oops >&2; exit 3' failed inside the tree (exit status 3); see the output above in build.log");
  EXPECT_EQ(test::sh("ls -A " + path("store") + "/failing " + path("store") + "/.staging 2>/dev/null").out, path("store") + "/.staging:\n");
  EXPECT_NE(test::read_file(path("store") + "/.locks/failing.failed.log").find("oops\n"), std::string::npos);
}

}  // namespace
}  // namespace chrootctl::builder
