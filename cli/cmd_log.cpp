// chrootctl log [--since TIME] [--image NAME] [--json]
#include "chrootctl/common/settings.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/launcher/accounting.hpp"
#include "chrootctl/site/accounting_log.hpp"
#include "cli.hpp"

namespace chrootctl::cli {
namespace {

int log_main(std::span<char* const> argv) {
  const Spec spec{"log",
                  "[--since TIME] [--image NAME] [--json]",
                  "Show the launches recorded in the accounting log.",
                  "Each launch by 'run', 'condor-wrapper' or the Slurm plugin appends one line to the\n"
                  "accounting log ([accounting] path in the configuration, default\n"
                  "/var/log/chrootctl/launches.jsonl): when, who, which image (build id, tree digest,\n"
                  "signer), the batch job, the limits, the outcome, peak memory, CPU time, the system-call\n"
                  "policy and the id mapping. Root's log and its rotated files are read, then the lines of\n"
                  "launches by other users (DIR/users/UID.jsonl, their own reports, marked as such). A user\n"
                  "other than root sees only their own.\n\n"
                  "TIME is a UTC time (2026-11-23T12:00:00Z), a date (2026-11-23), @SECONDS since the epoch,\n"
                  "or an age: 90s, 15m, 2h, 7d. NAME matches the name a job asked for or its catalogue entry.\n\n"
                  "Exit status: 0 printed, 1 printed, but some lines or files could not be read (named on\n"
                  "stderr), 2 error.",
                  {{"since", 0, true, false, "TIME", "only launches that started at TIME or later"},
                   {"image", 0, true, false, "NAME", "only launches of image NAME"},
                   json_option()},
                  0,
                  0};
  Args a;
  if (auto rc = parse(spec, argv, a)) return *rc;
  auto settings = load_settings();
  if (!settings) return report(settings.error());
  site::LogQuery q;
  if (auto since = a.value("since")) {
    q.since_ns = site::parse_since(*since, launcher::wall_clock_ns());
    if (!q.since_ns) return usage_error(spec, str("--since ", quote(*since), ": expected a UTC time, a date, @SECONDS or an age like 2h"));
  }
  q.image = a.value("image");
  const site::LogRead read = site::read_accounting_log(settings->accounting, q);
  out(a.flag("json") ? site::log_json(read) : site::log_text(read));
  if (!a.flag("json"))
    for (const auto& n : read.notes) err(str("chrootctl log: note: ", n, "\n"));
  for (const auto& p : read.problems) err(str("chrootctl log: ", p, "\n"));
  return read.problems.empty() ? k_ok : k_failed_check;
}

}  // namespace

CHROOTCTL_VERB("log", "show the launches recorded in the accounting log", log_main);

}  // namespace chrootctl::cli
