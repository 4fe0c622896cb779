// chrootctl unmount NAME [--hold-for PID]
//
// Releases a hold that `chrootctl mount` took on a sealed image's shared mount (docs/sealed.md).
#include <unistd.h>

#include "chrootctl/catalogue/catalogue.hpp"
#include "chrootctl/common/settings.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/launcher/sealed.hpp"
#include "cli.hpp"
#include "sealed.hpp"

namespace chrootctl::cli {
namespace {

namespace cat = chrootctl::catalogue;
namespace sl = chrootctl::launcher::sealed;

int unmount_main(std::span<char* const> argv) {
  const Spec spec{"unmount",
                  "NAME [--hold-for PID] [--store DIR]",
                  "Release the hold 'chrootctl mount' took on the sealed image NAME.",
                  "Without --hold-for, the hold of 'chrootctl mount NAME'; with it, PID's. The image is\n"
                  "unmounted once no launch uses it (unless sealed_keep_mounted is set); a running job keeps\n"
                  "its own copy of the mount until it ends. Needs root.\n\n"
                  "Exit status: 0 released (or nothing was held), 1 NAME is unknown or not a sealed image,\n"
                  "2 error.",
                  {store_option(), {"hold-for", 0, true, false, "PID", "release the hold of the process PID instead of 'mount''s own"}},
                  1,
                  1};
  Args a;
  if (auto rc = parse(spec, argv, a)) return *rc;
  if (::geteuid() != 0) return report("unmounting a sealed image needs root");
  auto settings = load_existing_store_settings(a);
  if (!settings) return report(settings.error());
  auto c = cat::load_trusted(*settings);
  if (!c) return report(c.error());
  const cat::Entry* e = c->find_any(a.positional[0]);
  if (!e) {
    report(c->not_found(a.positional[0], cat::catalogue_path(*settings)));
    return k_failed_check;
  }
  if (!e->current.sealed) {
    report(str(quote(a.positional[0]), " is a directory image; only sealed images are mounted"));
    return k_failed_check;
  }
  std::string holder = sl::k_kept_holder;
  if (auto pid = a.value("hold-for")) {
    auto n = parse_u64(*pid);
    if (!n || *n == 0 || *n > 0x3fffffff) return usage_error(spec, str("--hold-for: ", quote(*pid), " is not a process id"));
    auto h = sl::holder_for(static_cast<pid_t>(*n));
    // A process that has ended holds nothing any more: drop whatever it held.
    holder = h ? *h : std::string();
  }
  if (auto r = sl::release_hold(sealed_image(e->current), sealed_options(*settings), sealed_backend(), holder); !r) return report(r.error());
  return k_ok;
}

}  // namespace

CHROOTCTL_VERB("unmount", "release a sealed image's mount taken with 'mount'", unmount_main);

}  // namespace chrootctl::cli
