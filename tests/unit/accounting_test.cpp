// The accounting line (launcher/accounting.hpp): one flat JSON object per launch.
#include <gtest/gtest.h>

#include "chrootctl/common/json.hpp"
#include "chrootctl/launcher/accounting.hpp"

namespace chrootctl {
namespace {

namespace ln = chrootctl::launcher;

ln::AccountingRecord sample() {
  ln::AccountingRecord r;
  r.via = "condor-wrapper";
  r.start_ns = 1795436557123000000;  // 2026-11-23T12:22:37.123Z
  r.end_ns = r.start_ns + 2500000000;
  r.invoking_uid = 4242424;  // no such user: no name
  r.job_uid = 4242424;
  r.image = "EL9";
  r.entry = "EL9";
  r.build_id = "20261123-1";
  r.tree_digest = std::string(64, 'a');
  r.root = "/srv/images/el9/20261123-1/root";
  r.batch_system = "htcondor";
  r.batch_job_id = "1234.5";
  r.outcome.kind = ln::Outcome::Kind::exited;
  r.outcome.code = 3;
  r.outcome.cgroup = "v2";
  r.outcome.limits_applied = true;
  r.outcome.effective_limits = ln::LimitValues{1ull << 30, std::nullopt, 0, 150, std::nullopt, 100};
  r.outcome.peak_memory_bytes = 123456789;
  r.outcome.max_rss_bytes = 1000;
  r.outcome.cpu_user_seconds = 1.2344;
  r.outcome.cpu_system_seconds = 0.5;
  r.outcome.seccomp_policy = "default";
  r.outcome.seccomp_digest = std::string(64, 'b');
  r.outcome.id_mode = "mapped";
  r.outcome.uid_map = "0 1879048192 65536\n";
  r.outcome.gid_map = "0 1879048192 1000\n1000 1000 1\n";
  r.outcome.id_block = 1879048192u;
  return r;
}

TEST(Accounting, OneLineWithEveryFieldReadsBack) {
  const std::string line = ln::accounting_line(sample());
  ASSERT_FALSE(line.empty());
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << line;
  auto rec = parse_flat_json_object(line, "accounting line");
  ASSERT_TRUE(rec) << rec.error().what() << "\n" << line;
  auto field = [&](const char* k) {
    const FlatValue* v = find_flat(*rec, k);
    return v ? v->text : std::string("<absent>");
  };
  auto kind = [&](const char* k) { return find_flat(*rec, k)->kind; };
  EXPECT_EQ(field("version"), "1");
  EXPECT_EQ(field("via"), "condor-wrapper");
  EXPECT_EQ(field("start"), "2026-11-23T12:22:37.123Z");
  EXPECT_EQ(field("end"), "2026-11-23T12:22:39.623Z");
  EXPECT_EQ(field("wall_ms"), "2500");
  EXPECT_EQ(field("invoking_uid"), "4242424");
  EXPECT_EQ(kind("invoking_user"), FlatValue::Kind::null);
  EXPECT_EQ(field("job_uid"), "4242424");
  EXPECT_EQ(field("image"), "EL9");
  EXPECT_EQ(field("build_id"), "20261123-1");
  EXPECT_EQ(field("tree_digest"), std::string(64, 'a'));
  EXPECT_EQ(kind("signer"), FlatValue::Kind::null);
  EXPECT_EQ(field("batch_system"), "htcondor");
  EXPECT_EQ(field("batch_job_id"), "1234.5");
  EXPECT_EQ(kind("tasks"), FlatValue::Kind::null);
  EXPECT_EQ(field("outcome"), "exited");
  EXPECT_EQ(field("exit_status"), "3");
  EXPECT_EQ(field("exit_code"), "3");
  EXPECT_EQ(kind("signal"), FlatValue::Kind::null);
  EXPECT_EQ(field("cgroup"), "v2");
  EXPECT_EQ(field("limits_applied"), "true");
  EXPECT_EQ(field("memory_max_bytes"), "1073741824");
  EXPECT_EQ(kind("memory_low_bytes"), FlatValue::Kind::null);
  EXPECT_EQ(field("swap_max_bytes"), "0");
  EXPECT_EQ(field("cpu_weight"), "150");
  EXPECT_EQ(field("pids_max"), "100");
  EXPECT_EQ(field("peak_memory_bytes"), "123456789");
  EXPECT_EQ(field("cpu_user_ms"), "1234");
  EXPECT_EQ(field("cpu_system_ms"), "500");
  EXPECT_EQ(field("seccomp_policy"), "default");
  EXPECT_EQ(field("seccomp_digest"), std::string(64, 'b'));
  EXPECT_EQ(field("id_mode"), "mapped");
  EXPECT_EQ(field("uid_map"), "0 1879048192 65536");
  EXPECT_EQ(field("gid_map"), "0 1879048192 1000,1000 1000 1");
  EXPECT_EQ(field("id_block"), "1879048192");
}

TEST(Accounting, AJobKilledByASignalAndARefusal) {
  auto r = sample();
  r.outcome.kind = ln::Outcome::Kind::signaled;
  r.outcome.code = 9;
  auto rec = parse_flat_json_object(ln::accounting_line(r), "accounting line");
  ASSERT_TRUE(rec);
  EXPECT_EQ(find_flat(*rec, "exit_status")->text, "137");
  EXPECT_EQ(find_flat(*rec, "signal")->text, "9");
  EXPECT_EQ(find_flat(*rec, "exit_code")->kind, FlatValue::Kind::null);
  r.outcome = ln::Outcome{};
  r.outcome.error = "'RHEL6' is not in the catalogue";
  rec = parse_flat_json_object(ln::accounting_line(r), "accounting line");
  ASSERT_TRUE(rec);
  EXPECT_EQ(find_flat(*rec, "outcome")->text, "setup_failed");
  EXPECT_EQ(find_flat(*rec, "exit_status")->text, "125");
  EXPECT_EQ(find_flat(*rec, "error")->text, "'RHEL6' is not in the catalogue");
}

TEST(Accounting, RootWritesTheLogOthersTheirOwnFileBesideIt) {
  const ln::AccountingLog log{"/var/log/chrootctl/launches.jsonl", 1 << 20, 4};
  EXPECT_EQ(ln::accounting_file(log, 0), "/var/log/chrootctl/launches.jsonl");
  EXPECT_EQ(ln::accounting_file(log, 1000), "/var/log/chrootctl/users/1000.jsonl");
}

}  // namespace
}  // namespace chrootctl
