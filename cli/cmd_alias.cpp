// chrootctl alias NEW NAME
#include "chrootctl/catalogue/registry.hpp"
#include "chrootctl/common/settings.hpp"
#include "chrootctl/common/strings.hpp"
#include "cli.hpp"

namespace chrootctl::cli {
namespace {

namespace cat = chrootctl::catalogue;

int alias_main(std::span<char* const> argv) {
  const Spec spec{"alias",
                  "NEW NAME [--force] [--store DIR]",
                  "Make NEW another name for the entry NAME (e.g. SL6 for RHEL6).",
                  "A job asking for NEW gets NAME's verified root. An alias follows its entry through\n"
                  "new versions and rollbacks; 'chrootctl remove NEW' removes just the alias.\n\n"
                  "Exit status: 0 done, 1 NAME is unknown or NEW is taken, 2 error.",
                  {store_option(), {"force", 0, false, false, "", "move NEW if it is an alias of another entry"}},
                  2,
                  2};
  Args a;
  if (auto rc = parse(spec, argv, a)) return *rc;
  if (auto why = cat::invalid_name(a.positional[0])) return usage_error(spec, str("bad name: ", *why));
  auto settings = load_existing_store_settings(a);
  if (!settings) return report(settings.error());
  auto r = cat::alias(*settings, a.positional[0], a.positional[1], a.flag("force"));
  if (!r) {
    report(r.error());
    return r.error().code() == Errc::not_found || r.error().code() == Errc::exists ? k_failed_check : k_error;
  }
  out(str(a.positional[0], " -> ", *r, "\n"));
  return k_ok;
}

}  // namespace

CHROOTCTL_VERB("alias", "give a catalogue entry another name", alias_main);

}  // namespace chrootctl::cli
