// HTCondor file parsing: NAMED_CHROOT values and settings, RequestedChroot in submit files and
// job ClassAds.
#include <gtest/gtest.h>
#include <stdlib.h>

#include "chrootctl/catalogue/condor.hpp"
#include "test_support.hpp"

namespace chrootctl {
namespace {

namespace cat = catalogue;

std::vector<std::string> pairs(const cat::NamedChrootValue& v) {
  std::vector<std::string> out;
  for (const auto& e : v.entries) out.push_back(e.name + "=" + e.path);
  return out;
}

TEST(CondorNamedChroot, SplitsOnCommasAndWhiteSpace) {
  auto v = cat::parse_named_chroot("RHEL5=/srv/rhel5, SL6=/srv/sl6\tEL9=/srv/el9,,DEB=/srv/deb ,  ");
  EXPECT_EQ(pairs(v), (std::vector<std::string>{"RHEL5=/srv/rhel5", "SL6=/srv/sl6", "EL9=/srv/el9", "DEB=/srv/deb"}));
  EXPECT_TRUE(v.warnings.empty());
}

TEST(CondorNamedChroot, TokensWithoutNameOrPathAreSkippedWithAWarningNamingThem) {
  auto v = cat::parse_named_chroot("RHEL5=/srv/rhel5, SL6, EL9=, =/srv/x, A=/a=b");
  EXPECT_EQ(pairs(v), (std::vector<std::string>{"RHEL5=/srv/rhel5", "A=/a=b"}));
  EXPECT_EQ(v.warnings, (std::vector<std::string>{
                            "skipping 'SL6' in NAMED_CHROOT: no '=' (expected NAME=PATH)",
                            "skipping 'EL9=' in NAMED_CHROOT: no path after '='",
                            "skipping '=/srv/x' in NAMED_CHROOT: no name before '='",
                        }));
}

TEST(CondorNamedChroot, SettingLastAssignmentWinsCaseInsensitive) {
  const std::string cfg =
      "# site config\n"
      "NAMED_CHROOT = A=/a\n"
      "  named_chroot=B=/b, \\\n"
      "      C=/c\n"
      "OTHER = NAMED_CHROOT\n"
      "#NAMED_CHROOT = D=/d\n";
  auto s = cat::find_named_chroot(cfg, "50-chroot.conf");
  ASSERT_TRUE(s.found);
  EXPECT_EQ(s.value, "B=/b, C=/c");
  EXPECT_EQ(s.where, "50-chroot.conf:3");
  EXPECT_EQ(pairs(cat::parse_named_chroot(s.value)), (std::vector<std::string>{"B=/b", "C=/c"}));
}

TEST(CondorNamedChroot, StarterSettingOverridesPlainOne) {
  const std::string cfg = "STARTER.NAMED_CHROOT = S=/s\nNAMED_CHROOT = P=/p\n";
  auto s = cat::find_named_chroot(cfg, "f");
  EXPECT_EQ(s.value, "S=/s");
  EXPECT_EQ(s.where, "f:1");
  EXPECT_FALSE(cat::find_named_chroot("FOO = bar\n", "f").found);
}

TEST(CondorLines, ContinuationsCommentsAndLineNumbers) {
  auto lines = cat::logical_lines("a = 1 \\\n  2\\\n# skipped comment\n  3\nb = 4\r\nlast\\");
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].text, "a = 1 23");
  EXPECT_EQ(lines[0].line, 1u);
  EXPECT_EQ(lines[1].text, "b = 4");
  EXPECT_EQ(lines[1].line, 5u);
  // A backslash on the last line continues nothing and is kept.
  EXPECT_EQ(lines[2].text, "last\\");
  EXPECT_EQ(lines[2].line, 6u);
}

cat::ChrootRequest req(const std::string& text) { return cat::find_request(text); }

TEST(CondorRequest, SubmitFileForms) {
  for (const char* attr :
       {"+RequestedChroot", "+requestedchroot", "My.RequestedChroot", "MY.RequestedChroot", "my.REQUESTEDCHROOT", "RequestedChroot"}) {
    auto r = req(std::string("executable = /bin/job\n") + attr + " = \"RHEL5\"\nqueue\n");
    EXPECT_TRUE(r.present) << attr;
    EXPECT_EQ(r.name, "RHEL5") << attr;
    EXPECT_EQ(r.problem, "") << attr;
    EXPECT_EQ(r.attribute, attr);
    EXPECT_EQ(r.line, 2u);
  }
  EXPECT_EQ(req("+RequestedChroot=\"EL9\"\n").name, "EL9");
}

TEST(CondorRequest, ValueIsExactAndCaseIsKept) {
  EXPECT_EQ(req("+RequestedChroot = \"rhel5\"\n").name, "rhel5");
  EXPECT_EQ(req("+RequestedChroot = \" RHEL5\"\n").name, " RHEL5");
  EXPECT_EQ(req("+RequestedChroot = \"a\\\"b\"\n").name, "a\"b");
}

TEST(CondorRequest, JobAdLastAssignmentWins) {
  const std::string ad =
      "ClusterId = 12\n"
      "RequestedChroot = \"EL9\"\n"
      "Cmd = \"/bin/job\"\n"
      "REQUESTEDCHROOT = \"RHEL5\"\n";
  auto r = req(ad);
  EXPECT_EQ(r.name, "RHEL5");
  EXPECT_EQ(r.line, 4u);
}

TEST(CondorRequest, CommentsBlankLinesAndContinuations) {
  const std::string sub =
      "# +RequestedChroot = \"COMMENTED\"\n"
      "\n"
      "   # indented comment: +RequestedChroot = \"ALSO\"\n"
      "+RequestedChroot = \\\n"
      "    \"EL9\"\n"
      "arguments = +RequestedChroot = \"NOT-AN-ASSIGNMENT\"\n"
      "queue\n";
  auto r = req(sub);
  EXPECT_TRUE(r.present);
  EXPECT_EQ(r.name, "EL9");
  EXPECT_EQ(r.line, 4u);
}

TEST(CondorRequest, NoRequest) {
  EXPECT_FALSE(req("").present);
  EXPECT_FALSE(req("executable = /bin/sh\n# +RequestedChroot = \"X\"\nqueue\n").present);
  EXPECT_FALSE(req("+RequestedChrootX = \"X\"\n").present);
  EXPECT_FALSE(req("TARGET.RequestedChroot = \"X\"\n").present);
}

TEST(CondorRequest, BadValuesAreProblemsNeverNoRequest) {
  struct Case {
    const char* line;
    const char* problem;
  } cases[] = {
      {"+RequestedChroot = RHEL5", "its value 'RHEL5' is not a string literal (HTCondor would evaluate it as an expression, not a name)"},
      {"+RequestedChroot = undefined", "its value 'undefined' is not a string literal (HTCondor would evaluate it as an expression, not a name)"},
      {"+RequestedChroot =", "it has no value"},
      {"+RequestedChroot = \"\"", "it asks for an empty name"},
      {"+RequestedChroot = \"RHEL5", "its value '\"RHEL5' is an unterminated string"},
      {"+RequestedChroot = \"RHEL5\" + \"x\"",
       "its value '\"RHEL5\" + \"x\"' is not a plain string literal (HTCondor would evaluate it as an expression)"},
      {"+RequestedChroot = \"$(chroot)\"", "its value '$(chroot)' uses a submit macro; look up the job ClassAd ($_CONDOR_JOB_AD) instead"},
      {"+RequestedChroot = \"a\\nb\"", "its value '\"a\\x5cnb\"' holds an escape sequence, which no catalogue name has"},
  };
  for (const auto& c : cases) {
    auto r = req(std::string("+RequestedChroot = \"EL9\"\n") + c.line + "\n");
    EXPECT_TRUE(r.present) << c.line;
    EXPECT_EQ(r.name, "") << c.line;
    EXPECT_EQ(r.problem, c.problem) << c.line;
  }
}

TEST(CondorImport, TheHostRootIsNeverImportedWhateverItIsCalled) {
  char tmpl[] = "/tmp/chrootctl-import.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  test::write_file(dir + "/condor_config", "NAMED_CHROOT = HOST=/, root=/\n");
  Settings s;
  s.store = dir + "/store";
  auto r = cat::import_condor_config(s, dir + "/condor_config");
  ASSERT_TRUE(r) << r.error().what();
  ASSERT_EQ(r->items.size(), 1u);
  EXPECT_FALSE(r->items[0].imported);
  EXPECT_EQ(r->items[0].message, "refusing to import '/': the host's root directory '/' is never a job root");
  EXPECT_EQ(r->warnings, (std::vector<std::string>{"skipping 'root=/': 'root' is the host's / and is never registered"}));
  EXPECT_NE(test::sh("test -e '" + s.store + "'").exit_code, 0) << "nothing was written";
  test::sh("rm -rf '" + dir + "'");
}

TEST(CondorRequest, RootIsAPlainRequestThatResolveRefuses) {
  // find_request reports what was asked; refusing 'root' is resolve's job (tested there).
  auto r = req("RequestedChroot = \"root\"\n");
  EXPECT_TRUE(r.present);
  EXPECT_EQ(r.name, "root");
}

}  // namespace
}  // namespace chrootctl
