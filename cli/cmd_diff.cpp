// chrootctl diff OLD NEW [--json]
#include "chrootctl/catalogue/audit_diff.hpp"
#include "chrootctl/catalogue/audit_target.hpp"
#include "chrootctl/common/strings.hpp"
#include "cli.hpp"

namespace chrootctl::cli {
namespace {

int diff_main(std::span<char* const> argv) {
  const Spec spec{
      "diff",
      "OLD NEW [--json]",
      "Show what changed between two images, setuid and capability changes first.",
      "Lists setuid, setgid and capability changes, then entries added, removed and changed by\n"
      "field, then packages added, removed and changed in version.\n"
      "OLD and NEW are each a catalogue name, a build directory or a manifest file. Packages are\n"
      "compared when both sides have an image root (a bare manifest has none).\n"
      "Exit status: 0 no difference (mtime-only changes aside), 1 differences, 2 error.",
      {json_option(), store_option()},
      2,
      2};
  Args a;
  if (auto rc = parse(spec, argv, a)) return *rc;
  auto before = audit::resolve_side(a.positional[0], a.value("store"));
  if (!before) return report(before.error());
  auto after = audit::resolve_side(a.positional[1], a.value("store"));
  if (!after) return report(after.error());
  auto d = audit::diff_images(*before, *after);
  if (!d) return report(d.error());
  out(a.flag("json") ? audit::render_json(*d) : audit::render_text(*d));
  return d->differs() ? k_failed_check : k_ok;
}

}  // namespace

CHROOTCTL_VERB("diff", "compare two images: privilege changes, entries and packages", diff_main);

}  // namespace chrootctl::cli
