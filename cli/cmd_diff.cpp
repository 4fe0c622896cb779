// chrootctl diff OLD NEW [--json]
#include "chrootctl/audit/diff.hpp"
#include "chrootctl/audit/target.hpp"
#include "chrootctl/common/settings.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/launcher/sealed.hpp"
#include "cli.hpp"
#include "sealed.hpp"

namespace chrootctl::cli {
namespace {

int diff_main(std::span<char* const> argv) {
  const Spec spec{"diff",
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
  // Sealed images are read through their mounts, for their packages (docs/sealed.md); without
  // one (no root and not mounted) the manifests alone are compared.
  std::vector<launcher::sealed::Share> mounts;
  for (audit::DiffSide* side : {&*before, &*after}) {
    if (!side->sealed) continue;
    auto settings = load_existing_store_settings(a);
    if (!settings) return report(settings.error());
    if (auto m = mount_for_reading(*settings, side->sealed_file, *side->sealed)) {
      mounts.push_back(std::move(*m));
      side->root = mounts.back().root();
    }
  }
  auto d = audit::diff_images(*before, *after);
  if (!d) return report(d.error());
  out(a.flag("json") ? audit::render_json(*d) : audit::render_text(*d));
  return d->differs() ? k_failed_check : k_ok;
}

}  // namespace

CHROOTCTL_VERB("diff", "compare two images: privilege changes, entries and packages", diff_main);

}  // namespace chrootctl::cli
