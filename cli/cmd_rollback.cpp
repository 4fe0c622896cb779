// chrootctl rollback NAME [--to BUILD-ID]
#include "chrootctl/catalogue/registry.hpp"
#include "chrootctl/catalogue/report.hpp"
#include "chrootctl/common/json.hpp"
#include "chrootctl/common/settings.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "cli.hpp"

namespace chrootctl::cli {
namespace {

namespace cat = chrootctl::catalogue;

int rollback_main(std::span<char* const> argv) {
  const Spec spec{"rollback",
                  "NAME [--to BUILD-ID] [--store DIR] [--json]",
                  "Make the previous version of NAME current again.",
                  "The current version (and, with --to, every version newer than BUILD-ID) is dropped from\n"
                  "the catalogue; its build directory stays on disk until 'chrootctl gc'. The version rolled\n"
                  "back to keeps its own verification record: if that is older than max_verify_age, run\n"
                  "'chrootctl verify NAME' before jobs can use it.\n\n"
                  "Exit status: 0 rolled back, 1 NAME is unknown or has no such previous version, 2 error.",
                  {store_option(), json_option(), {"to", 0, true, false, "BUILD-ID", "roll back to this previous build"}},
                  1,
                  1};
  Args a;
  if (auto rc = parse(spec, argv, a)) return *rc;
  auto settings = load_existing_store_settings(a);
  if (!settings) return report(settings.error());
  auto r = cat::rollback(*settings, a.positional[0], a.value("to"));
  if (!r) {
    report(r.error());
    return r.error().code() == Errc::not_found ? k_failed_check : k_error;
  }
  const auto ev = cat::evaluate(*settings, r->name, r->aliases, r->current, sys::now_unix());
  if (a.flag("json")) {
    JsonWriter w;
    w.begin_object();
    w.field("name", r->name);
    w.field("state", ev.state);
    w.field("usable", ev.usable);
    w.field("reason", ev.reason);
    w.key("current");
    cat::write_json(w, r->current);
    w.key("dropped").begin_array();
    for (const auto& v : r->dropped) cat::write_json(w, v);
    w.end_array();
    w.end_object();
    out(w.str());
    return k_ok;
  }
  std::vector<std::string> ids;
  for (const auto& v : r->dropped) ids.push_back(v.build_id);
  out(str(r->name, ": build ", r->current.build_id, " is current again; dropped ", join(ids, ", "),
          " (build directories stay until 'chrootctl gc')\n"));
  if (!ev.usable) out(str(r->name, ": not usable yet: ", ev.reason, "\n"));
  return k_ok;
}

}  // namespace

CHROOTCTL_VERB("rollback", "make the previous version of a name current again", rollback_main);

}  // namespace chrootctl::cli
