// chrootctl doctor [--sandbox DIR] [--json]
#include <unistd.h>

#include "chrootctl/common/settings.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/site/doctor.hpp"
#include "cli.hpp"

namespace chrootctl::cli {
namespace {

int doctor_main(std::span<char* const> argv) {
  const Spec spec{"doctor",
                  "[--sandbox DIR] [--store DIR] [--json]",
                  "Report what this host offers chrootctl, and whether the configuration can be met.",
                  "Checks the kernel, the cgroup hierarchies and controllers a launch would use, user\n"
                  "namespaces, idmapped mounts on the store's filesystems (and on --sandbox DIR's),\n"
                  "openat2, mount_setattr, clone3 and close_range, the system-call filter and the policy\n"
                  "jobs get, loop devices and dm-verity, who can reach the store and its images, the\n"
                  "trusted keys, the job id range (against the host's users, groups, /etc/subuid and\n"
                  "/etc/subgid), the accounting log, and Slurm's plugstack.conf and HTCondor's job wrapper.\n"
                  "Each check gets a verdict: ok; degraded (it works with less, and the report says what that\n"
                  "means for jobs); missing; or error (present, but misconfigured or unsafe). Run it as\n"
                  "root to see what root's launches do. It changes nothing on the host: namespaces and\n"
                  "filters are tried in short-lived child processes.\n\n"
                  "Exit status: 0 everything the configuration asks for is available, 1 something it asks\n"
                  "for is not (the final line names it), 2 error.",
                  {{"sandbox", 0, true, false, "DIR", "also judge idmapped mounts for a job sandbox in DIR"},
                   store_option(),
                   json_option(),
                   {"slurm-plugstack", 0, true, false, "FILE", "Slurm's plugstack.conf (default /etc/slurm/plugstack.conf)"},
                   {"condor-config", 0, true, false, "DIR", "HTCondor's configuration directory (default /etc/condor)"}},
                  0,
                  0};
  Args a;
  if (auto rc = parse(spec, argv, a)) return *rc;
  std::optional<Error> config_error;
  Settings settings;
  if (auto s = load_settings(a.value("store"))) {
    settings = std::move(*s);
  } else {
    config_error = s.error();
    // The rest is judged with the defaults, as if the file were not there.
    settings = default_settings();
    if (auto store = a.value("store")) settings.store = *store;
  }
  site::DoctorOptions o;
  if (auto d = a.value("sandbox")) {
    if (!sys::access_path(*d, F_OK)) return usage_error(spec, str("--sandbox ", quote(*d), ": no such directory"));
    o.sandbox = *d;
  }
  if (auto f = a.value("slurm-plugstack")) o.slurm_plugstack = *f;
  if (auto d = a.value("condor-config")) o.condor_config_dir = *d;
  const site::Report report = site::run_doctor(settings, config_error, o);
  out(a.flag("json") ? site::report_json(report, CHROOTCTL_VERSION) : site::report_text(report));
  return report.failed_required().empty() ? k_ok : k_failed_check;
}

}  // namespace

CHROOTCTL_VERB("doctor", "report what this host offers chrootctl and whether the configuration can be met", doctor_main);

}  // namespace chrootctl::cli
