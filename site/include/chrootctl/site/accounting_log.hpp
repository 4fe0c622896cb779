#pragma once
/// Reading the accounting log for `chrootctl log` (the lines launcher/accounting.hpp writes).
/// Root's log and its rotated files are read, oldest first, then the files of launches by other
/// users (DIR/users/UID.jsonl and theirs): those lines are what an unprivileged launcher
/// reported, so each is kept only from a file its own uid owns, with that uid as invoking_uid,
/// and marked "source": "user".

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chrootctl/common/error.hpp"
#include "chrootctl/common/json.hpp"
#include "chrootctl/common/settings.hpp"

namespace chrootctl::site {

struct LogRecord {
  std::string source;  ///< "root" (root's log) or "user" (a file of users/)
  std::string file;    ///< where the line was read
  std::size_t line = 0;
  std::int64_t start_ns = 0;
  FlatObject fields;  ///< the line's fields, as written
};

struct LogQuery {
  std::optional<std::int64_t> since_ns;  ///< only launches that started then or later
  std::optional<std::string> image;      ///< only launches of this name (as asked, or the entry)
};

struct LogRead {
  std::vector<LogRecord> records;     ///< in order of start time
  std::vector<std::string> problems;  ///< lines or files that could not be used, each named
  std::vector<std::string> notes;     ///< what was not read, and why ("only root reads ...")
};

/// Reads every file of the log that this user can read and keeps the records the query
/// selects. A missing log is an empty one.
LogRead read_accounting_log(const AccountingSettings& settings, const LogQuery& query);

/// Parses one line: a flat JSON object with the fields of version 1 (a string "start" in the
/// form accounting_line writes, and "version" 1).
Result<LogRecord> parse_log_line(std::string_view line);

/// "2026-11-23T12:05:30Z" or with milliseconds ("...30.123Z") -> ns since the epoch.
std::optional<std::int64_t> parse_utc_time(std::string_view text);
/// What --since takes: a UTC time as above, a date "2026-11-23" (midnight UTC), "@SECONDS"
/// since the epoch, or an age "90s", "15m", "2h", "7d" before `now_ns`.
std::optional<std::int64_t> parse_since(std::string_view text, std::int64_t now_ns);

/// The records as a table (text) or as a JSON document ({"format": "chrootctl-log", ...}).
std::string log_text(const LogRead& read);
std::string log_json(const LogRead& read);

}  // namespace chrootctl::site
