// chrootctl cleanup [--json]
#include "chrootctl/common/json.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/launcher/cleanup.hpp"
#include "cli.hpp"

namespace chrootctl::cli {
namespace {

int cleanup_main(std::span<char* const> argv) {
  const Spec spec{
      "cleanup",
      "[--json]",
      "Remove what killed launches left: job cgroups and launch records.",
      "A launch records itself under /run/chrootctl/launches before it creates its cgroup.\n"
      "Records and job cgroups whose launcher (pid and start time) is gone are removed, after\n"
      "their processes are killed; those of running launches are left alone. 'chrootctl run'\n"
      "does the same before every launch.\n\n"
      "Exit status: 0 everything stale was removed, 1 something could not be removed, 2 error.",
      {json_option()},
      0,
      0};
  Args a;
  if (auto rc = parse(spec, argv, a)) return *rc;
  auto rep = launcher::cleanup_stale_here();
  if (!rep) return report(rep.error());
  if (a.flag("json")) {
    JsonWriter w;
    w.begin_object();
    auto list = [&](const char* key, const std::vector<std::string>& items) {
      w.key(key);
      w.begin_array();
      for (const auto& i : items) w.value(i);
      w.end_array();
    };
    list("removed_cgroups", rep->removed_cgroups);
    list("removed_records", rep->removed_records);
    list("freed_id_blocks", rep->freed_id_blocks);
    list("live", rep->live);
    list("errors", rep->errors);
    w.end_object();
    out(w.str());
  } else {
    for (const auto& c : rep->removed_cgroups) out(str("removed cgroup ", c, "\n"));
    for (const auto& r : rep->removed_records) out(str("removed record ", r, "\n"));
    for (const auto& b : rep->freed_id_blocks) out(str("freed id block ", b, "\n"));
    for (const auto& e : rep->errors) err(str("chrootctl cleanup: ", e, "\n"));
    out(str(rep->removed_cgroups.size(), " cgroups and ", rep->removed_records.size(), " records removed, ",
            rep->freed_id_blocks.size(), " id blocks freed, ", rep->live.size(), " live launches left alone\n"));
  }
  return rep->errors.empty() ? k_ok : k_failed_check;
}

}  // namespace

CHROOTCTL_VERB("cleanup", "remove cgroups and records left by killed launches", cleanup_main);

}  // namespace chrootctl::cli
