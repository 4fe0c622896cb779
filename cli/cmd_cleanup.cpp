// chrootctl cleanup [--json]
#include <unistd.h>

#include "chrootctl/common/json.hpp"
#include "chrootctl/common/settings.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/launcher/cleanup.hpp"
#include "chrootctl/launcher/sealed.hpp"
#include "cli.hpp"
#include "sealed.hpp"

namespace chrootctl::cli {
namespace {

int cleanup_main(std::span<char* const> argv) {
  const Spec spec{"cleanup",
                  "[--json]",
                  "Remove what killed launches left: job cgroups, launch records, sealed image mounts.",
                  "A launch records itself under /run/chrootctl/launches before it creates its cgroup.\n"
                  "Records and job cgroups whose launcher (pid and start time) is gone are removed, after\n"
                  "their processes are killed; those of running launches are left alone. 'chrootctl run'\n"
                  "does the same before every launch. The holds of dead launchers on the shared mounts of\n"
                  "sealed images (/run/chrootctl/sealed) are released, and a mount no launch holds any more\n"
                  "is unmounted, its dm-verity and loop devices removed (unless sealed_keep_mounted is set).\n\n"
                  "Exit status: 0 everything stale was removed, 1 something could not be removed, 2 error.",
                  {json_option()},
                  0,
                  0};
  Args a;
  if (auto rc = parse(spec, argv, a)) return *rc;
  auto rep = launcher::cleanup_stale_here();
  if (!rep) return report(rep.error());
  launcher::sealed::ReclaimReport sealed;
  if (::geteuid() == 0) {
    auto settings = load_settings();
    if (!settings) return report(settings.error());
    sealed = launcher::sealed::reclaim(sealed_options(*settings), sealed_backend());
    rep->errors.insert(rep->errors.end(), sealed.errors.begin(), sealed.errors.end());
  }
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
    list("released_sealed_holds", sealed.released);
    list("unmounted_sealed", sealed.unmounted);
    list("live", rep->live);
    list("errors", rep->errors);
    w.end_object();
    out(w.str());
  } else {
    for (const auto& c : rep->removed_cgroups) out(str("removed cgroup ", c, "\n"));
    for (const auto& r : rep->removed_records) out(str("removed record ", r, "\n"));
    for (const auto& b : rep->freed_id_blocks) out(str("freed id block ", b, "\n"));
    for (const auto& h : sealed.released) out(str("released sealed image hold ", h, "\n"));
    for (const auto& u : sealed.unmounted) out(str("unmounted sealed image ", u, "\n"));
    for (const auto& e : rep->errors) err(str("chrootctl cleanup: ", e, "\n"));
    out(str(rep->removed_cgroups.size(), " cgroups and ", rep->removed_records.size(), " records removed, ", rep->freed_id_blocks.size(),
            " id blocks freed, ", sealed.unmounted.size(), " sealed images unmounted, ", rep->live.size(), " live launches left alone\n"));
  }
  return rep->errors.empty() ? k_ok : k_failed_check;
}

}  // namespace

CHROOTCTL_VERB("cleanup", "remove cgroups and records left by killed launches", cleanup_main);

}  // namespace chrootctl::cli
