// chrootctl log: reading the accounting log (accounting_log.hpp).
#include "chrootctl/site/accounting_log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"

namespace chrootctl::site {

namespace {

constexpr std::int64_t k_ns = 1000000000;

// Digits at s[i, i+n) as a number, or -1.
long digits(std::string_view s, std::size_t i, std::size_t n) {
  if (i + n > s.size()) return -1;
  long v = 0;
  for (std::size_t k = i; k < i + n; ++k) {
    if (s[k] < '0' || s[k] > '9') return -1;
    v = v * 10 + (s[k] - '0');
  }
  return v;
}

std::optional<std::int64_t> utc(long year, long month, long day, long hour, long minute, long second) {
  if (year < 1970 || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return std::nullopt;
  struct tm tm {};
  tm.tm_year = static_cast<int>(year - 1900);
  tm.tm_mon = static_cast<int>(month - 1);
  tm.tm_mday = static_cast<int>(day);
  tm.tm_hour = static_cast<int>(hour);
  tm.tm_min = static_cast<int>(minute);
  tm.tm_sec = static_cast<int>(second);
  const time_t t = ::timegm(&tm);
  if (t == static_cast<time_t>(-1) || tm.tm_mday != day) return std::nullopt;  // 2026-02-30 is refused
  return static_cast<std::int64_t>(t) * k_ns;
}

const std::string* text_field(const FlatObject& o, std::string_view key) {
  const FlatValue* v = find_flat(o, key);
  return v && v->kind == FlatValue::Kind::string ? &v->text : nullptr;
}

// The files of one log, oldest first: PATH.KEEP ... PATH.1, PATH (those that exist).
std::vector<std::string> rotations(const std::string& path, unsigned keep) {
  std::vector<std::string> out;
  for (unsigned k = keep; k >= 1; --k) out.push_back(str(path, ".", k));
  out.push_back(path);
  return out;
}

// Reads one file into `out`. `uid`: for a file of users/, the uid it must belong to and that
// its lines must name as invoking_uid.
void read_file_into(const std::string& file, std::optional<std::uint64_t> uid, const LogQuery& q, LogRead& out) {
  auto fd = sys::open_path(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  if (!fd) {
    if (fd.error().sys_errno() != ENOENT) out.problems.push_back(fd.error().what());
    return;
  }
  auto st = sys::fstat(fd->get());
  if (!st) {
    out.problems.push_back(st.error().what());
    return;
  }
  if (!S_ISREG(st->st_mode)) {
    out.problems.push_back(str(file, " is not a regular file: skipped"));
    return;
  }
  if (uid && st->st_uid != *uid) {
    out.problems.push_back(str(file, " belongs to uid ", st->st_uid, ", not ", *uid, ": skipped"));
    return;
  }
  auto text = sys::read_fd(fd->get(), 1ull << 30);
  if (!text) {
    out.problems.push_back(str(file, ": ", text.error().what()));
    return;
  }
  std::size_t number = 0;
  for (const auto& line : split(*text, '\n')) {
    ++number;
    if (trim(line).empty()) continue;
    auto r = parse_log_line(line);
    if (!r) {
      out.problems.push_back(str(file, ":", number, ": ", r.error().message()));
      continue;
    }
    if (uid) {
      const FlatValue* who = find_flat(r->fields, "invoking_uid");
      if (!who || who->kind != FlatValue::Kind::number || parse_u64(who->text) != uid) {
        out.problems.push_back(str(file, ":", number, ": the line names another invoking_uid than the file's owner ", *uid, ": skipped"));
        continue;
      }
    }
    r->source = uid ? "user" : "root";
    r->file = file;
    r->line = number;
    if (q.since_ns && r->start_ns < *q.since_ns) continue;
    if (q.image) {
      const std::string* image = text_field(r->fields, "image");
      const std::string* entry = text_field(r->fields, "entry");
      if (!(image && *image == *q.image) && !(entry && *entry == *q.image)) continue;
    }
    out.records.push_back(std::move(*r));
  }
}

// A field as one cell of the table: on one line, whatever it holds. A user's own records are
// theirs to write, and a newline or tab in one would otherwise print as a row of the table
// that is not marked as their report.
std::string cell(const FlatObject& o, std::string_view key) {
  const FlatValue* v = find_flat(o, key);
  if (!v || v->kind == FlatValue::Kind::null) return "-";
  std::string out;
  for (char c : terminal_safe(v->text)) {
    if (c == '\t') out += "\\x09";
    else out += c;
  }
  return out;
}

std::string ms_cell(const FlatObject& o, std::string_view key) {
  const FlatValue* v = find_flat(o, key);
  auto n = v && v->kind == FlatValue::Kind::number ? parse_u64(v->text) : std::nullopt;
  if (!n) return "-";
  char buf[32];
  (void)std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(*n) / 1000.0);
  return buf;
}

}  // namespace

std::optional<std::int64_t> parse_utc_time(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS[.mmm]Z
  if (s.size() != 20 && s.size() != 24) return std::nullopt;
  if (s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s.back() != 'Z') return std::nullopt;
  long ms = 0;
  if (s.size() == 24) {
    if (s[19] != '.') return std::nullopt;
    ms = digits(s, 20, 3);
    if (ms < 0) return std::nullopt;
  }
  const long f[] = {digits(s, 0, 4), digits(s, 5, 2), digits(s, 8, 2), digits(s, 11, 2), digits(s, 14, 2), digits(s, 17, 2)};
  for (long v : f)
    if (v < 0) return std::nullopt;
  auto t = utc(f[0], f[1], f[2], f[3], f[4], f[5]);
  if (!t) return std::nullopt;
  return *t + static_cast<std::int64_t>(ms) * 1000000;
}

std::optional<std::int64_t> parse_since(std::string_view text, std::int64_t now_ns) {
  const std::string_view t = trim(text);
  if (t.empty()) return std::nullopt;
  if (t[0] == '@') {
    auto n = parse_u64(t.substr(1));
    if (!n || *n > 1ull << 40) return std::nullopt;
    return static_cast<std::int64_t>(*n) * k_ns;
  }
  if (t.size() == 10 && t[4] == '-' && t[7] == '-') {
    const long y = digits(t, 0, 4), m = digits(t, 5, 2), d = digits(t, 8, 2);
    if (y < 0 || m < 0 || d < 0) return std::nullopt;
    return utc(y, m, d, 0, 0, 0);
  }
  if (auto exact = parse_utc_time(t)) return exact;
  const char unit = t.back();
  std::int64_t scale = 0;
  switch (unit) {
    case 's':
      scale = 1;
      break;
    case 'm':
      scale = 60;
      break;
    case 'h':
      scale = 3600;
      break;
    case 'd':
      scale = 86400;
      break;
    default:
      return std::nullopt;
  }
  auto n = parse_u64(t.substr(0, t.size() - 1));
  if (!n || *n > 100ull * 365 * 86400) return std::nullopt;
  return now_ns - static_cast<std::int64_t>(*n) * scale * k_ns;
}

Result<LogRecord> parse_log_line(std::string_view line) {
  LogRecord r;
  r.fields = TRY(parse_flat_json_object(line, "accounting line"));
  const FlatValue* version = find_flat(r.fields, "version");
  if (!version || version->kind != FlatValue::Kind::number || version->text != "1") return fail(Errc::parse, "not an accounting line of version 1");
  const std::string* start = text_field(r.fields, "start");
  auto t = start ? parse_utc_time(*start) : std::nullopt;
  if (!t) return fail(Errc::parse, "the line has no readable \"start\" time");
  r.start_ns = *t;
  return r;
}

LogRead read_accounting_log(const AccountingSettings& a, const LogQuery& q) {
  LogRead out;
  const bool root = ::geteuid() == 0;
  for (const auto& f : rotations(a.path, a.keep)) {
    if (auto readable = root ? Status{} : sys::access_path(f, R_OK); !readable && readable.error().sys_errno() == EACCES) {
      out.notes.push_back(str("only root reads ", f));
      continue;
    }
    read_file_into(f, std::nullopt, q, out);
  }
  const std::string users = a.path.substr(0, std::max<std::size_t>(1, a.path.find_last_of('/'))) + "/users";
  std::vector<std::uint64_t> uids;
  if (root) {
    if (auto d = sys::open_dir(users)) {
      if (auto entries = sys::read_dir(d->get())) {
        for (const auto& e : *entries) {
          const auto dot = e.name.find(".jsonl");
          if (dot != std::string::npos && e.name.size() == dot + 6)
            if (auto uid = parse_u64(e.name.substr(0, dot))) uids.push_back(*uid);
        }
      }
    }
  } else {
    uids.push_back(::geteuid());
    out.notes.push_back(str("the launches of other users are read by root only; yours are in ", users, "/", ::geteuid(), ".jsonl"));
  }
  std::sort(uids.begin(), uids.end());
  for (auto uid : uids)
    for (const auto& f : rotations(str(users, "/", uid, ".jsonl"), a.keep)) read_file_into(f, uid, q, out);
  std::stable_sort(out.records.begin(), out.records.end(), [](const LogRecord& x, const LogRecord& y) { return x.start_ns < y.start_ns; });
  return out;
}

std::string log_text(const LogRead& read) {
  std::vector<std::vector<std::string>> rows{{"START", "VIA", "USER", "IMAGE", "BATCH JOB", "EXIT", "WALL", "CPU", "PEAK MEMORY"}};
  for (const auto& r : read.records) {
    const auto& o = r.fields;
    std::string start = cell(o, "start");
    if (start.size() == 24) start = start.substr(0, 19) + "Z";
    std::string image = cell(o, "image");
    if (image == "-") image = cell(o, "root");
    const std::string outcome = cell(o, "outcome");
    std::string exit = cell(o, "exit_status");
    if (outcome == "signaled") exit = str("signal ", cell(o, "signal"));
    else if (outcome != "exited") exit = str(exit, " (", outcome, ")");
    std::string cpu = "-";
    auto user_ms = parse_u64(cell(o, "cpu_user_ms")), sys_ms = parse_u64(cell(o, "cpu_system_ms"));
    if (user_ms && sys_ms) {
      char buf[32];
      (void)std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(*user_ms + *sys_ms) / 1000.0);
      cpu = buf;
    }
    const auto peak = parse_u64(cell(o, "peak_memory_bytes"));
    std::string user = cell(o, "job_user");
    if (user == "-") user = cell(o, "job_uid");
    if (r.source == "user") user += " (own report)";
    rows.push_back(
        {start, cell(o, "via"), user, image, cell(o, "batch_job_id"), exit, ms_cell(o, "wall_ms"), cpu, peak ? human_size(*peak) : std::string("-")});
  }
  std::vector<std::size_t> width(rows[0].size(), 0);
  for (const auto& row : rows)
    for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) line += i + 1 < row.size() ? row[i] + std::string(width[i] - row[i].size() + 2, ' ') : row[i];
    out += line + "\n";
  }
  out += str(read.records.size(), read.records.size() == 1 ? " launch" : " launches", "\n");
  return out;
}

std::string log_json(const LogRead& read) {
  JsonWriter w;
  w.begin_object();
  w.field("format", "chrootctl-log");
  w.field("version", 1);
  w.key("records");
  w.begin_array();
  for (const auto& r : read.records) {
    w.begin_object();
    w.field("source", r.source);
    w.field("file", r.file);
    w.field("line", static_cast<std::uint64_t>(r.line));
    w.key("fields");
    w.begin_object();
    for (const auto& [k, v] : r.fields) {
      w.key(k);
      switch (v.kind) {
        case FlatValue::Kind::string:
          w.value(v.text);
          break;
        case FlatValue::Kind::boolean:
          w.value(v.text == "true");
          break;
        case FlatValue::Kind::null:
        case FlatValue::Kind::array:  // never in a flat object
        case FlatValue::Kind::object:
          w.null();
          break;
        case FlatValue::Kind::number: {
          // Numbers are written back as they were read: integers as integers, others as text.
          if (auto n = parse_u64(v.text)) w.value(*n);
          else if (v.text[0] == '-' && parse_u64(v.text.substr(1))) w.value(-static_cast<std::int64_t>(*parse_u64(v.text.substr(1))));
          else w.value(std::strtod(v.text.c_str(), nullptr));
          break;
        }
      }
    }
    w.end_object();
    w.end_object();
  }
  w.end_array();
  w.key("problems");
  w.begin_array();
  for (const auto& p : read.problems) w.value(p);
  w.end_array();
  w.key("notes");
  w.begin_array();
  for (const auto& n : read.notes) w.value(n);
  w.end_array();
  w.end_object();
  return w.str();
}

}  // namespace chrootctl::site
