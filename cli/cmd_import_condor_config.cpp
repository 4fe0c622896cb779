// chrootctl import-condor-config FILE
#include <cstdio>

#include <optional>

#include "chrootctl/catalogue/condor.hpp"
#include "chrootctl/common/json.hpp"
#include "chrootctl/common/progress.hpp"
#include "chrootctl/common/settings.hpp"
#include "chrootctl/common/strings.hpp"
#include "cli.hpp"

namespace chrootctl::cli {
namespace {

namespace cat = chrootctl::catalogue;

int import_main(std::span<char* const> argv) {
  const Spec spec{"import-condor-config",
                  "FILE [--dry-run] [--store DIR] [--json]",
                  "Register the roots named by NAMED_CHROOT in an HTCondor configuration file.",
                  "NAMED_CHROOT is read with HTCondor's rules: the last assignment wins (STARTER.NAMED_CHROOT\n"
                  "over NAMED_CHROOT), tokens are split on commas and white space, each is NAME=PATH, and a\n"
                  "token with no '=' or no path is skipped with a warning naming it. 'root' (the host's /)\n"
                  "is skipped. Each root is manifested in place (not copied) into a new build directory\n"
                  "STORE/NAME/import-TIME and registered as by 'chrootctl add', with the same ownership and\n"
                  "permission checks.\n\n"
                  "Exit status: 0 every root was imported, 1 some root was not (or FILE sets no NAMED_CHROOT),\n"
                  "2 error.",
                  {store_option(), json_option(), {"dry-run", 'n', false, false, "", "only show what would be imported"}, quiet_option()},
                  1,
                  1};
  Args a;
  if (auto rc = parse(spec, argv, a)) return *rc;
  auto settings = load_settings(a.value("store"));
  if (!settings) return report(settings.error());
  cat::ImportOptions opts;
  opts.dry_run = a.flag("dry-run");
  std::optional<ProgressLine> line;
  line.emplace("manifesting", a.flag("quiet") || a.flag("json"));
  opts.progress = [&line](const manifest::Progress& p) {
    line->update(str(p.entries, " entries, ", p.files_hashed, " files hashed, ", human_size(p.bytes_hashed)));
  };
  auto r = cat::import_condor_config(*settings, a.positional[0], opts);
  line.reset();
  if (!r) return report(r.error());
  for (const auto& w : r->warnings) err(str("chrootctl: warning: ", w, "\n"));
  bool ok = !r->where.empty();
  for (const auto& i : r->items) ok = ok && (i.imported || opts.dry_run);
  if (a.flag("json")) {
    JsonWriter w;
    w.begin_object();
    w.field("file", a.positional[0]);
    w.field("assignment", r->where);
    w.key("warnings").begin_array();
    for (const auto& x : r->warnings) w.value(x);
    w.end_array();
    w.key("items").begin_array();
    for (const auto& i : r->items) {
      w.begin_object();
      w.field("name", i.name);
      w.field("path", i.path);
      w.field("imported", i.imported);
      w.field("message", i.message);
      w.end_object();
    }
    w.end_array();
    w.end_object();
    out(w.str());
  } else {
    if (r->where.empty()) err(str("chrootctl: ", a.positional[0], " sets no NAMED_CHROOT\n"));
    for (const auto& i : r->items)
      out(str(i.name, "=", i.path, ": ", i.imported ? "imported: " : (opts.dry_run ? "" : "NOT imported: "), i.message, "\n"));
  }
  return ok ? k_ok : k_failed_check;
}

}  // namespace

CHROOTCTL_VERB("import-condor-config", "register the roots of an HTCondor NAMED_CHROOT setting", import_main);

}  // namespace chrootctl::cli
