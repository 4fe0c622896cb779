// chrootctl list
#include "chrootctl/catalogue/report.hpp"
#include "chrootctl/common/json.hpp"
#include "chrootctl/common/settings.hpp"
#include "chrootctl/common/sys.hpp"
#include "cli.hpp"

namespace chrootctl::cli {
namespace {

namespace cat = chrootctl::catalogue;

int list_main(std::span<char* const> argv) {
  const Spec spec{"list",
                  "[--store DIR] [--json]",
                  "List the catalogue: every name, its state, when it was last verified, and its root.",
                  "STATE is verified (resolve hands it out), unverified, failed (a verification failed\n"
                  "since the last one that passed), expired (the last full verification is older than\n"
                  "max_verify_age), changed (the root is not the directory that was verified),\n"
                  "untrusted (the root or a directory above it is no longer root-owned and unwritable\n"
                  "by others) or unsigned (require_signature is set).\n\n"
                  "Exit status: 0, or 2 if the catalogue cannot be read.",
                  {store_option(), json_option()},
                  0,
                  0};
  Args a;
  if (auto rc = parse(spec, argv, a)) return *rc;
  auto settings = load_existing_store_settings(a);
  if (!settings) return report(settings.error());
  auto c = cat::load(*settings);
  if (!c) return report(c.error());
  const auto now = sys::now_unix();
  if (a.flag("json")) {
    JsonWriter w;
    w.begin_object();
    w.field("catalogue", cat::catalogue_path(*settings));
    w.key("entries").begin_array();
    for (const auto& e : c->entries) cat::write_json(w, e, cat::evaluate(*settings, e.name, e.aliases, e.current, now));
    w.end_array();
    w.end_object();
    out(w.str());
  } else {
    out(cat::render_list(*settings, *c, now));
  }
  return k_ok;
}

}  // namespace

CHROOTCTL_VERB("list", "list catalogue names with their state and root", list_main);

}  // namespace chrootctl::cli
