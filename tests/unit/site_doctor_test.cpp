// The pure parts of `chrootctl doctor`: who already has ids of the job range, the Slurm
// plugin's line, and the report's text.
#include <gtest/gtest.h>

#include "chrootctl/site/doctor.hpp"

namespace chrootctl::site {
namespace {

TEST(DoctorIds, AccountsAndSubordinateRangesThatOverlapTheJobRangeAreNamed) {
  const auto users = account_ids(
      "root:x:0:0::/root:/bin/sh\n# comment:x:5\nalice:x:1879048200:100::/home/alice:/bin/sh\n"
      "bad:x:notanumber:1\nbob:x:1000:1000::/home/bob:/bin/sh\n",
      "/etc/passwd", "user");
  ASSERT_EQ(users.size(), 3u);
  EXPECT_EQ(users[1].what, "user alice (uid 1879048200), /etc/passwd:3");
  const auto groups = account_ids("jobs:x:1946157055:\n", "/etc/group", "group");
  const auto subuid = subordinate_ids("alice:100000:65536\ncarol:1879000000:100000\nbad:1:0\n#x:1:2\n", "/etc/subuid");
  ASSERT_EQ(subuid.size(), 2u);
  EXPECT_EQ(subuid[1].what, "/etc/subuid:2: carol:1879000000:100000");
  const std::uint64_t first = 1879048192, count = 1024ull * 65536;
  EXPECT_EQ(id_overlaps(first, count, users), std::vector<std::string>{"user alice (uid 1879048200), /etc/passwd:3"});
  // The last id of the range is in it; the one after is not.
  EXPECT_EQ(id_overlaps(first, count, groups).size(), 1u);
  EXPECT_TRUE(id_overlaps(first, count - 1, groups).empty());
  // carol's range ends 51,808 ids into the job range.
  EXPECT_EQ(id_overlaps(first, count, subuid), std::vector<std::string>{"/etc/subuid:2: carol:1879000000:100000"});
  EXPECT_TRUE(id_overlaps(first + 100000, count, subuid).empty());
}

TEST(DoctorSlurm, ThePluginLineIsFoundWithItsKindAndArguments) {
  const auto lines = find_plugstack_lines(
      "# required /old/chrootctl_spank.so chrootctl=/x\n"
      "optional /usr/lib/other.so\n"
      "include /etc/slurm/plugstack.conf.d/*.conf\n"
      "required\t/usr/lib/chrootctl/chrootctl_spank.so  chrootctl=/usr/bin/chrootctl store=/srv # the site's\n",
      "/etc/slurm/plugstack.conf");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].where, "/etc/slurm/plugstack.conf:4");
  EXPECT_EQ(lines[0].kind, "required");
  EXPECT_EQ(lines[0].plugin, "/usr/lib/chrootctl/chrootctl_spank.so");
  EXPECT_EQ(lines[0].arguments, (std::vector<std::string>{"chrootctl=/usr/bin/chrootctl", "store=/srv"}));
}

TEST(DoctorReport, EachCheckOnALineWithItsMeaningAndAFinalVerdict) {
  Report r;
  r.checks.push_back({"kernel", Verdict::ok, false, "Linux 6.1.0 (x86_64)", "", Fact::object({})});
  r.checks.push_back({"cgroups", Verdict::degraded, true, "v2: memory, cpu", "--pids is not enforced", Fact::object({})});
  r.checks.push_back({"slurm", Verdict::missing, false, "no chrootctl_spank.so line", "Slurm jobs cannot ask for a root", Fact::object({})});
  EXPECT_EQ(r.failed_required(), std::vector<std::string>{"cgroups"});
  EXPECT_EQ(report_text(r),
            "ok        kernel           Linux 6.1.0 (x86_64)\n"
            "degraded  cgroups          v2: memory, cpu\n"
            "                           required: --pids is not enforced\n"
            "missing   slurm            no chrootctl_spank.so line\n"
            "                           Slurm jobs cannot ask for a root\n"
            "doctor: 1 ok, 1 degraded, 1 missing, 0 error; not available as the configuration asks: cgroups\n");
  r.checks[1].verdict = Verdict::ok;
  EXPECT_TRUE(r.failed_required().empty());
  const std::string json = report_json(r, "0.1.0");
  EXPECT_NE(json.find("\"exit_status\": 0"), std::string::npos) << json;
  EXPECT_NE(json.find("\"summary\": \"2 ok, 0 degraded, 1 missing, 0 error; everything the configuration asks for is available\""), std::string::npos)
      << json;
}

TEST(DoctorReport, FactsNestAndKeepTheirTypes) {
  Report r;
  r.checks.push_back(
      {"x", Verdict::ok, false, "s", "",
       Fact::object({{"n", 5}, {"b", true}, {"none", std::optional<int>()}, {"list", Fact::list({Fact("a"), Fact(std::uint64_t{7})})}})});
  EXPECT_EQ(r.checks[0].facts.get("n")->integer(), 5);
  EXPECT_EQ(r.checks[0].facts.get("none")->kind(), Fact::Kind::null);
  const std::string json = report_json(r, "0.1.0");
  EXPECT_NE(json.find("\"facts\": {\n        \"n\": 5,\n        \"b\": true,\n        \"none\": null,\n        \"list\": [\n          \"a\",\n       "
                      "   7\n        ]\n      }"),
            std::string::npos)
      << json;
}

}  // namespace
}  // namespace chrootctl::site
