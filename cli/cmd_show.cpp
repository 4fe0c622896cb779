// chrootctl show NAME
#include "chrootctl/catalogue/report.hpp"
#include "chrootctl/common/json.hpp"
#include "chrootctl/common/settings.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "cli.hpp"

namespace chrootctl::cli {
namespace {

namespace cat = chrootctl::catalogue;

int show_main(std::span<char* const> argv) {
  const Spec spec{"show",
                  "NAME [--store DIR] [--json]",
                  "Show everything the catalogue records about NAME (an entry or an alias).",
                  "Exit status: 0, 1 NAME is not in the catalogue, 2 error.",
                  {store_option(), json_option()},
                  1,
                  1};
  Args a;
  if (auto rc = parse(spec, argv, a)) return *rc;
  auto settings = load_existing_store_settings(a);
  if (!settings) return report(settings.error());
  auto c = cat::load(*settings);
  if (!c) return report(c.error());
  const std::string& name = a.positional[0];
  const cat::Entry* e = c->find_any(name);
  if (!e) {
    report(c->not_found(name, cat::catalogue_path(*settings)).message());
    return k_failed_check;
  }
  const auto ev = cat::evaluate(*settings, e->name, e->aliases, e->current, sys::now_unix());
  if (a.flag("json")) {
    JsonWriter w;
    cat::write_json(w, *e, ev);
    out(w.str());
  } else {
    if (e->name != name) out(str(name, " is an alias of ", e->name, "\n"));
    out(cat::render_show(*e, ev, sys::now_unix()));
  }
  return k_ok;
}

}  // namespace

CHROOTCTL_VERB("show", "show what the catalogue records about a name", show_main);

}  // namespace chrootctl::cli
