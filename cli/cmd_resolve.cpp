// chrootctl resolve NAME [--fast]
#include "chrootctl/catalogue/resolve.hpp"
#include "chrootctl/common/json.hpp"
#include "chrootctl/common/settings.hpp"
#include "chrootctl/common/strings.hpp"
#include "cli.hpp"

namespace chrootctl::cli {
namespace {

namespace cat = chrootctl::catalogue;

int resolve_main(std::span<char* const> argv) {
  const Spec spec{"resolve",
                  "NAME [--fast] [--store DIR] [--json]",
                  "Print the verified root directory of NAME, or refuse and say why.",
                  "The root is printed only if the image's last full verification passed within\n"
                  "max_verify_age (default 24 h), no verification failed since, and the root is still the\n"
                  "directory that was verified (device, inode, owner, mode), owned by root and unwritable\n"
                  "by anyone else along its whole path. --fast also compares the metadata of every entry\n"
                  "with the stat record (manifest check --fast). Names are case-sensitive; 'root' never\n"
                  "resolves. A sealed image's root is its image file (docs/sealed.md), checked as a whole:\n"
                  "--fast adds nothing for it.\n\n"
                  "Exit status: 0 verified (the root is printed), 1 unknown or not verified, 2 error.",
                  {store_option(), json_option(), {"fast", 0, false, false, "", "also run the metadata check of every entry"}},
                  1,
                  1};
  Args a;
  if (auto rc = parse(spec, argv, a)) return *rc;
  auto settings = load_settings(a.value("store"));
  if (!settings) return report(settings.error());
  cat::ResolveOptions opts;
  opts.fast = a.flag("fast");
  auto r = cat::resolve(*settings, a.positional[0], opts);
  if (!r) {
    report(r.error());
    return cat::is_refusal(r.error()) ? k_failed_check : k_error;
  }
  if (a.flag("json")) {
    JsonWriter w;
    w.begin_object();
    w.field("name", r->requested);
    w.field("entry", r->name);
    w.field("root", escape_bytes(r->root));
    w.field("image", escape_bytes(r->image));
    w.field("digest", r->version.digest);
    w.field("build_id", r->version.build_id);
    w.field("verified_at", r->version.verified_at);
    w.key("signer");
    if (r->version.signer.empty()) w.null();
    else w.value(r->version.signer);
    // Where a launch of this image is recorded, for launchers that read no configuration (the
    // Slurm plugin): null when accounting is off.
    w.key("accounting_log");
    if (settings->accounting.enabled) w.value(settings->accounting.path);
    else w.null();
    w.field("accounting_max_bytes", settings->accounting.max_bytes);
    w.field("accounting_keep", settings->accounting.keep);
    // A sealed image's root is its image file; launches mount it ('chrootctl mount').
    w.field("sealed", r->version.sealed.has_value());
    w.end_object();
    out(w.str());
  } else {
    out(r->root + "\n");
  }
  return k_ok;
}

}  // namespace

CHROOTCTL_VERB("resolve", "print the verified root of a name, or refuse", resolve_main);

}  // namespace chrootctl::cli
