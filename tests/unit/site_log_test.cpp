// Reading the accounting log back (site/accounting_log.hpp): lines, times, files.
#include <gtest/gtest.h>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/launcher/accounting.hpp"
#include "chrootctl/site/accounting_log.hpp"
#include "test_support.hpp"

namespace chrootctl {
namespace {

namespace ln = chrootctl::launcher;

TEST(AccountingLog, WhatTheLauncherWritesReadsBack) {
  ln::AccountingRecord r;
  r.via = "run";
  r.start_ns = 1795436557123000000;
  r.end_ns = r.start_ns + 1000000;
  const std::string line = ln::accounting_line(r);
  auto rec = site::parse_log_line(line.substr(0, line.size() - 1));
  ASSERT_TRUE(rec) << rec.error().what() << "\n" << line;
  EXPECT_EQ(rec->start_ns, 1795436557123000000);
  EXPECT_EQ(find_flat(rec->fields, "via")->text, "run");
}

TEST(AccountingLog, LinesThatAreNotAccountingLinesAreRefused) {
  EXPECT_EQ(site::parse_log_line("{\"version\": 2, \"start\": \"2026-11-23T13:02:37Z\"}").error().message(), "not an accounting line of version 1");
  EXPECT_EQ(site::parse_log_line("{\"version\": 1, \"start\": \"yesterday\"}").error().message(), "the line has no readable \"start\" time");
  EXPECT_EQ(site::parse_log_line("{\"version\": 1,").error().message(), "unreadable accounting line at byte 14: expected a string");
}

TEST(AccountingLog, TimesAndAges) {
  EXPECT_EQ(site::parse_utc_time("1970-01-01T00:00:01Z"), 1000000000);
  EXPECT_EQ(site::parse_utc_time("2026-11-23T12:22:37.123Z"), 1795436557123000000);
  EXPECT_FALSE(site::parse_utc_time("2026-02-30T00:00:00Z"));
  EXPECT_FALSE(site::parse_utc_time("2026-11-23 13:02:37Z"));
  EXPECT_FALSE(site::parse_utc_time("2026-11-23T13:02:37+01:00"));
  const std::int64_t now = 1795436557000000000;
  EXPECT_EQ(site::parse_since("2026-11-23", now), 1795392000000000000);
  EXPECT_EQ(site::parse_since("@1795436557", now), 1795436557000000000);
  EXPECT_EQ(site::parse_since("90s", now), now - 90000000000);
  EXPECT_EQ(site::parse_since("2h", now), now - 7200000000000);
  EXPECT_EQ(site::parse_since("7d", now), now - 604800000000000);
  EXPECT_FALSE(site::parse_since("2w", now));
  EXPECT_FALSE(site::parse_since("h", now));
  EXPECT_FALSE(site::parse_since("yesterday", now));
}

class AccountingLogFiles : public test::TempDirTest {};

TEST_F(AccountingLogFiles, RotatedFilesAreReadOldestFirstAndTheQuerySelects) {
  auto line = [](const char* start, const char* image) {
    return str("{\"version\": 1, \"start\": \"", start, "\", \"image\": \"", image, "\", \"entry\": \"E-", image, "\"}\n");
  };
  test::write_file(path("log.jsonl.2"), line("2026-11-20T00:00:00Z", "A"));
  test::write_file(path("log.jsonl.1"), line("2026-11-21T00:00:00Z", "B") + "not json\n");
  test::write_file(path("log.jsonl"), line("2026-11-23T00:00:00Z", "A") + "\n" + line("2026-11-22T00:00:00Z", "C"));
  AccountingSettings a;
  a.path = path("log.jsonl");
  a.keep = 4;
  auto all = site::read_accounting_log(a, {});
  ASSERT_EQ(all.records.size(), 4u);
  std::vector<std::string> images;
  for (const auto& r : all.records) images.push_back(find_flat(r.fields, "image")->text);
  EXPECT_EQ(images, (std::vector<std::string>{"A", "B", "C", "A"}));  // by start time
  EXPECT_EQ(all.records[1].file, path("log.jsonl.1"));
  EXPECT_EQ(all.records[1].source, "root");
  ASSERT_EQ(all.problems.size(), 1u);
  EXPECT_EQ(all.problems[0], path("log.jsonl.1") + ":2: unreadable accounting line at byte 0: expected '{'");
  site::LogQuery q;
  q.image = "E-A";  // the entry matches as well as the name asked for
  q.since_ns = *site::parse_utc_time("2026-11-21T00:00:00Z");
  auto some = site::read_accounting_log(a, q);
  ASSERT_EQ(some.records.size(), 1u);
  EXPECT_EQ(find_flat(some.records[0].fields, "start")->text, "2026-11-23T00:00:00Z");
  // keep = 1: the second rotated file is no longer the log's.
  a.keep = 1;
  EXPECT_EQ(site::read_accounting_log(a, {}).records.size(), 3u);
  const std::string table = site::log_text(some);
  EXPECT_NE(table.find("START"), std::string::npos) << table;
  EXPECT_NE(table.find("2026-11-23T00:00:00Z"), std::string::npos) << table;
  EXPECT_NE(table.find("1 launch\n"), std::string::npos) << table;
}

// A user's own records are theirs to write: a newline in a field must not print as a row of the
// table of its own, one that does not say it is that user's report (a hostile review forged a
// root launch that way), nor a tab or an escape sequence reach the terminal.
TEST_F(AccountingLogFiles, EveryFieldIsOneCellOfTheTable) {
  test::write_file(path("log.jsonl"),
                   "{\"version\": 1, \"start\": \"2026-11-23T00:00:00Z\", \"via\": \"run\", \"image\": \"A\\tB\", "
                   "\"batch_job_id\": \"-\\n2026-12-07T23:40:00Z  run  root  SECRET\\u001b[2J\"}\n");
  AccountingSettings a;
  a.path = path("log.jsonl");
  const std::string table = site::log_text(site::read_accounting_log(a, {}));
  const auto lines = split(table, '\n');
  ASSERT_EQ(lines.size(), 4u) << table;  // the header, the record, the count, and the end
  EXPECT_EQ(lines[2], "1 launch");
  EXPECT_NE(lines[1].find("A\\x09B"), std::string::npos) << table;
  EXPECT_NE(lines[1].find("-\\x0a2026-12-07T23:40:00Z  run  root  SECRET\\x1b[2J"), std::string::npos) << table;
}

}  // namespace
}  // namespace chrootctl
