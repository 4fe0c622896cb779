// chrootctl remove NAME
#include "chrootctl/catalogue/registry.hpp"
#include "chrootctl/common/json.hpp"
#include "chrootctl/common/settings.hpp"
#include "chrootctl/common/strings.hpp"
#include "cli.hpp"

namespace chrootctl::cli {
namespace {

namespace cat = chrootctl::catalogue;

int remove_main(std::span<char* const> argv) {
  const Spec spec{"remove",
                  "NAME [--store DIR] [--json]",
                  "Remove NAME from the catalogue: an entry with its aliases and previous versions, or an alias.",
                  "Nothing is deleted from disk: 'chrootctl gc' removes build directories that no\n"
                  "entry refers to any more.\n\n"
                  "Exit status: 0 removed, 1 NAME is not in the catalogue, 2 error.",
                  {store_option(), json_option()},
                  1,
                  1};
  Args a;
  if (auto rc = parse(spec, argv, a)) return *rc;
  auto settings = load_existing_store_settings(a);
  if (!settings) return report(settings.error());
  auto r = cat::remove(*settings, a.positional[0]);
  if (!r) {
    report(r.error());
    return r.error().code() == Errc::not_found ? k_failed_check : k_error;
  }
  if (a.flag("json")) {
    JsonWriter w;
    w.begin_object();
    w.field("removed", r->removed);
    w.key("alias_of");
    if (r->alias_of.empty()) w.null();
    else w.value(r->alias_of);
    w.key("aliases").begin_array();
    for (const auto& x : r->aliases) w.value(x);
    w.end_array();
    w.key("unreferenced_images").begin_array();
    for (const auto& x : r->images) w.value(escape_bytes(x));
    w.end_array();
    w.end_object();
    out(w.str());
  } else if (!r->alias_of.empty()) {
    out(str("removed alias ", r->removed, " (of ", r->alias_of, ")\n"));
  } else {
    out(str("removed ", r->removed, r->aliases.empty() ? std::string() : str(" and its aliases ", join(r->aliases, ", ")),
            "; its build directories stay on disk until 'chrootctl gc'\n"));
  }
  return k_ok;
}

}  // namespace

CHROOTCTL_VERB("remove", "remove a name (or an alias) from the catalogue", remove_main);

}  // namespace chrootctl::cli
