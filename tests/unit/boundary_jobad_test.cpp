// The job-ad parser the HTCondor wrapper relies on (issue 18): ClassAd file rules, failing
// closed, with a fuzz-style test (random ads, a request put anywhere and broken in random
// ways; the job may run on the host only when no request was present).
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <random>

#include "chrootctl/catalogue/condor.hpp"

namespace chrootctl {
namespace {

namespace cat = catalogue;

// ---- job ads: the HTCondor wrapper's fail-closed reading ----

TEST(JobAd, ClassAdFileRulesNoContinuationLines) {
  // The attack: a line ending in a backslash would hide the next one from a reader that
  // joins lines. In a job ad, every line is its own attribute.
  auto r = cat::find_request_in_ad("Cmd = \"/bin/job\" \\\nRequestedChroot = \"EL9\"\nOwner = \"u\"\n");
  EXPECT_TRUE(r.present);
  EXPECT_EQ(r.problem, "");
  EXPECT_EQ(r.name, "EL9");
  EXPECT_EQ(r.line, 2u);
  r = cat::find_request_in_ad("# RequestedChroot = \"X\"\n\nCmd = \"/bin/job\"\n");
  EXPECT_FALSE(r.present) << "comments and blank lines are no request";
  r = cat::find_request_in_ad("requestedchroot   =\t\"EL9\"  \r\nREQUESTEDCHROOT = \"EL9\"\n");
  EXPECT_EQ(r.name, "EL9") << "names in any case; the same value twice is one request";
}

// HTCondor's ads name attributes in the values of others (AutoClusterAttrs lists those that
// matchmaking used): such a value is no request, and the job has none.
TEST(JobAd, AnotherAttributesValueNamingRequestedChrootIsNoRequest) {
  auto r = cat::find_request_in_ad("AutoClusterAttrs = \"JobUniverse,RequestedChroot,RequestMemory\"\nArgs = \"--requested-chroot x\"\n");
  EXPECT_FALSE(r.present) << r.problem;
  r = cat::find_request_in_ad("AutoClusterAttrs = \"JobUniverse,RequestedChroot\"\nRequestedChroot = \"EL9\"\n");
  EXPECT_EQ(r.name, "EL9");
  EXPECT_EQ(r.line, 2u);
}

TEST(JobAd, UnreadableOrConflictingRequestsAreRefused) {
  auto problem = [](const std::string& ad) {
    auto r = cat::find_request_in_ad(ad);
    EXPECT_TRUE(r.present) << ad;
    EXPECT_NE(r.problem, "") << ad;
    return r.problem;
  };
  EXPECT_EQ(problem("RequestedChroot = \"A\"\nRequestedChroot = \"B\"\n"), "RequestedChroot is set twice, to 'A' on line 1 and to 'B' on line 2");
  EXPECT_EQ(problem("+RequestedChroot = \"A\"\n"),
            "the line '+RequestedChroot = \"A\"' mentions RequestedChroot but is not a ClassAd attribute line ('Name = value')");
  EXPECT_NE(problem("My.RequestedChroot = \"A\"\n").find("is not a ClassAd attribute line"), std::string::npos);
  EXPECT_NE(problem("RequestedChroot \"A\"\n").find("is not a ClassAd attribute line"), std::string::npos);
  EXPECT_NE(problem(std::string("Requested\0Chroot = \"A\"\n", 23)).find("\\x00"), std::string::npos);
  EXPECT_NE(problem("Requested Chroot = \"A\"\n").find("is not a ClassAd attribute line"), std::string::npos);
  EXPECT_NE(problem("RequestedChroot = \"A\" \\\n").find("not a plain string literal"), std::string::npos);
  EXPECT_NE(problem("RequestedChroot = A\n").find("not a string literal"), std::string::npos);
  EXPECT_NE(problem("RequestedChroot = \"A\nB\"\n").find("unterminated"), std::string::npos);
  // A problem anywhere wins over a good request elsewhere.
  EXPECT_NE(problem("RequestedChroot = \"A\"\n'RequestedChroot' = \"A\"\n").find("is not a ClassAd attribute line"), std::string::npos);
}

// Random ads, a request inserted at a random place and broken (or not) in random ways: the
// wrapper runs the job unchanged (on the host) only when the ad holds no request at all.
TEST(JobAd, FuzzTheJobRunsOnTheHostOnlyWithoutARequest) {
  std::mt19937 rng(20261123);
  auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  const std::vector<std::string> names = {"Cmd", "Owner", "Iwd", "JobUniverse", "RequestMemory", "Environment", "Requirements", "x_1"};
  const std::vector<std::string> values = {"\"/bin/job\"", "5",        "true",    "\"a b\\\" c\"", "(Target.Memory > 2048) && (Arch == \"X86_64\")",
                                           "undefined",    "{ 1, 2 }", "\"\\\\\""};
  auto noise_line = [&]() -> std::string {
    switch (pick(8)) {
      case 0:
        return "";
      case 1:
        return "# a comment \\";
      case 2:
        return names[pick(names.size())] + " = " + values[pick(values.size())] + " \\";  // a continuation that is none
      case 3:
        return std::string(1, static_cast<char>(1 + pick(31))) + "junk";
      case 4:
        return "\xff\xfe not utf-8";
      default:
        return names[pick(names.size())] + (pick(2) ? " = " : "=") + values[pick(values.size())];
    }
  };
  auto casing = [&](std::string s) {
    for (auto& c : s)
      if (pick(3) == 0) c = static_cast<char>(std::isupper(static_cast<unsigned char>(c)) ? std::tolower(c) : std::toupper(c));
    return s;
  };
  auto request_line = [&](bool& broken) -> std::string {
    const std::string attr = casing("RequestedChroot");
    broken = true;
    switch (pick(16)) {
      case 0:
        return "+" + attr + " = \"EL9\"";
      case 1:
        return "My." + attr + " = \"EL9\"";
      case 2:
        return attr + " = EL9";
      case 3:
        return attr + " \"EL9\"";
      case 4:
        return attr + " = \"EL9\" \\";
      case 5:
        return attr + " = \"EL9";
      case 6:
        return attr + " == \"EL9\"";
      case 7:
        return "Requested Chroot = \"EL9\"";
      case 8:
        return std::string("Requested\0Chroot = \"EL9\"", 24);
      case 9:
        return "'" + attr + "' = \"EL9\"";
      case 10:
        return attr + " = \"\"";
      case 11:
        return attr + " = \"EL9\" || true";
      case 12:
        return "\t" + attr + "\t=\t\"E\\L9\"";
      default:
        broken = false;
        return (pick(2) ? "  " : "") + attr + (pick(2) ? " = " : "=") + "\"EL9\"" + (pick(2) ? " \r" : "");
    }
  };
  int host_runs = 0, refused = 0, rooted = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::vector<std::string> lines;
    const std::size_t n = pick(12);
    for (std::size_t i = 0; i < n; ++i) lines.push_back(noise_line());
    const int requests = static_cast<int>(pick(4)) == 0 ? 0 : 1 + static_cast<int>(pick(2));
    bool any_broken = false;
    std::vector<std::string> wanted;
    for (int k = 0; k < requests; ++k) {
      bool broken = false;
      std::string l = request_line(broken);
      any_broken = any_broken || broken;
      if (!broken && pick(5) == 0) {  // a second request with another name
        l.replace(l.find("EL9"), 3, "RHEL5");
        wanted.push_back("RHEL5");
      } else if (!broken) {
        wanted.push_back("EL9");
      }
      lines.insert(lines.begin() + static_cast<std::ptrdiff_t>(pick(lines.size() + 1)), l);
    }
    std::string ad;
    for (const auto& l : lines) ad += l + "\n";
    const auto r = cat::find_request_in_ad(ad);
    if (requests == 0) {
      EXPECT_FALSE(r.present) << ad;
      ++host_runs;
      continue;
    }
    ASSERT_TRUE(r.present) << "the job would run on the host:\n" << ad;
    const bool conflicting =
        std::find(wanted.begin(), wanted.end(), "RHEL5") != wanted.end() && std::find(wanted.begin(), wanted.end(), "EL9") != wanted.end();
    if (any_broken || conflicting) {
      EXPECT_NE(r.problem, "") << ad;
      ++refused;
    } else {
      EXPECT_EQ(r.problem, "") << ad;
      EXPECT_EQ(r.name, wanted.front()) << ad;
      ++rooted;
    }
  }
  // Every kind of outcome came up many times.
  EXPECT_GT(host_runs, 1000);
  EXPECT_GT(refused, 1000);
  EXPECT_GT(rooted, 1000);
}

TEST(JobAdId, ClusterAndProcFromTheAdForTheAccountingLog) {
  EXPECT_EQ(cat::job_id_in_ad("ClusterId = 1234\nProcId = 5\nRequestedChroot = \"EL9\"\n"), "1234.5");
  EXPECT_EQ(cat::job_id_in_ad("clusterid=77\r\n  PROCID =  0 \n"), "77.0");
  EXPECT_EQ(cat::job_id_in_ad("ClusterId = 1234\n"), "");                          // no ProcId
  EXPECT_EQ(cat::job_id_in_ad("ClusterId = 1234\nProcId = 5\nProcId = 6\n"), "");  // twice: which one?
  EXPECT_EQ(cat::job_id_in_ad("ClusterId = \"1234\"\nProcId = 5\n"), "");          // not a plain integer
  EXPECT_EQ(cat::job_id_in_ad("ClusterId = -1\nProcId = 5\n"), "");
  EXPECT_EQ(cat::job_id_in_ad("# ClusterId = 1\nProcId = 5\n"), "");
}

}  // namespace
}  // namespace chrootctl
