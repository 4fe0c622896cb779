// chrootctl build NAME|PATH.toml
#include <cstdio>
#include <cstdlib>
#include <optional>

#include "chrootctl/builder/build.hpp"
#include "chrootctl/builder/recipe.hpp"
#include "chrootctl/catalogue/catalogue.hpp"
#include "chrootctl/catalogue/registry.hpp"
#include "chrootctl/catalogue/resolve.hpp"
#include "chrootctl/common/json.hpp"
#include "chrootctl/common/progress.hpp"
#include "chrootctl/common/settings.hpp"
#include "chrootctl/common/strings.hpp"
#include "cli.hpp"
#include "sealed.hpp"

namespace chrootctl::cli {
namespace {

int build_main(std::span<char* const> argv) {
  const Spec spec{"build",
                  "NAME|PATH.toml [--store DIR] [--sealed] [--register CATALOGUE-NAME] [--rebuild] [--json]",
                  "Build the recipe NAME (recipes/NAME.toml) or PATH.toml into a stripped, checksummed image.",
                  "The image goes to STORE/NAME/BUILD-ID/ with root/, manifest, manifest.stat, recipe.toml,\n"
                  "lock, build.log and strip-report (docs/recipes.md); a sealed image (--sealed, or the\n"
                  "recipe's [output] format = \"sealed\") has image.erofs, a read-only EROFS image of the\n"
                  "tree with a dm-verity hash tree, instead of root/ and manifest.stat (docs/sealed.md).\n"
                  "When every input recorded in the lock\n"
                  "is unchanged, the existing image is reused and the same build id printed. SOURCE_DATE_EPOCH\n"
                  "in the environment overrides the recipe's (and the default taken from its inputs).\n"
                  "--register NAME then verifies the image and registers it in the catalogue as 'chrootctl\n"
                  "add NAME BUILD-DIR' does.\n"
                  "Exit status: 0 built or reused (and registered), 1 built but refused by the catalogue's\n"
                  "checks, 2 error (recipe errors name recipes/NAME.toml:LINE:COL).",
                  {store_option(),
                   {"register", 0, true, false, "CATALOGUE-NAME", "register the image in the catalogue under this name"},
                   {"rebuild", 0, false, false, "", "build even if an image with the same inputs exists"},
                   {"sealed", 0, false, false, "", "make a sealed image: one EROFS image file with a dm-verity hash tree"},
                   json_option(),
                   quiet_option()},
                  1,
                  1};
  Args a;
  if (auto rc = parse(spec, argv, a)) return *rc;
  const auto reg = a.value("register");
  if (reg) {
    // Refuse a bad name before any work is done.
    if (auto why = catalogue::invalid_name(*reg)) return usage_error(spec, str("--register: bad name: ", *why));
  }
  builder::BuildOptions opts;
  if (const char* sde = std::getenv("SOURCE_DATE_EPOCH"); sde && *sde) {
    auto v = parse_u64(sde);
    if (!v || *v > 253402300799ULL) return usage_error(spec, str("SOURCE_DATE_EPOCH=", quote(sde), " is not a number of seconds"));
    opts.source_date_epoch = static_cast<std::int64_t>(*v);
  }
  auto settings = load_settings(a.value("store"));
  if (!settings) return report(settings.error());
  auto recipe = builder::find_recipe(a.positional[0], settings->recipe_dirs);
  if (!recipe) return report(recipe.error());
  opts.store = settings->store;
  opts.rebuild = a.flag("rebuild");
  if (a.flag("sealed")) opts.output = builder::Output::Format::sealed;
  // `image = "NAME"` derives from the catalogue's current build of NAME; a name the catalogue
  // does not know falls back to the store's latest build of the recipe NAME.
  opts.resolve_image = [&](const std::string& name) -> Result<std::string> {
    auto dir = catalogue::image_dir(*settings, name);
    if (dir || dir.error().code() != Errc::not_found) return dir;
    return builder::store_latest(settings->store, name);
  };
  const bool quiet = a.flag("quiet") || a.flag("json");
  ProgressLine line(str("build ", recipe->name), quiet);
  opts.status = [&](const std::string& s) {
    if (quiet) return;
    line.done(s);  // one plain line per step, on a terminal too
  };
  opts.progress = [&](const std::string& s) { line.update(s); };
  auto r = builder::build(*recipe, opts);
  if (!r) return report(r.error());
  if (!quiet) {
    char secs[32];
    (void)std::snprintf(secs, sizeof secs, "%.1f", r->seconds);
    line.done(r->cached ? "inputs unchanged: reusing the existing image" : str("done in ", secs, " s"));
  }
  std::optional<catalogue::AddResult> added;
  if (reg) {
    catalogue::AddOptions aopts;
    aopts.sealed_tree = sealed_tree_check(*settings, 0);
    ProgressLine vline(str("verifying ", r->build_dir), quiet);
    aopts.progress = [&vline](const manifest::Progress& p) {
      vline.update(str(p.entries, " entries, ", p.files_hashed, " files hashed, ", human_size(p.bytes_hashed)));
    };
    auto ar = catalogue::add(*settings, *reg, r->build_dir, aopts);
    if (!ar) {
      report(std::move(ar.error()).add_context(str("registering ", r->build_dir, " as ", quote(*reg))));
      return ar.error().code() == Errc::mismatch || ar.error().code() == Errc::permission ? k_failed_check : k_error;
    }
    added = std::move(*ar);
  }
  if (a.flag("json")) {
    JsonWriter w;
    w.begin_object();
    w.field("name", r->name);
    w.key("registered");
    if (added) w.value(*reg);
    else w.null();
    w.field("build_id", r->build_id);
    w.field("tree_digest", "sha256:" + r->tree_digest);
    w.field("path", r->build_dir);
    w.field("root", r->root);
    w.key("sealed");
    if (r->sealed) {
      w.begin_object();
      w.field("format", r->sealed->format);
      w.field("file", r->root);
      w.field("size", r->sealed->size);
      w.field("sha256", r->sealed->sha256);
      w.field("root_hash", r->sealed->root_hash);
      w.end_object();
    } else {
      w.null();
    }
    w.field("input_key", "sha256:" + r->input_key);
    w.field("cached", r->cached);
    w.field("source_date_epoch", r->source_date_epoch);
    w.field("entries", r->entries);
    w.field("strip_actions", r->strip_actions);
    w.field("seconds", r->seconds);
    w.key("step_seconds").begin_object();
    for (const auto& [step, secs] : r->step_seconds) w.field(step, secs);
    w.end_object();
    w.end_object();
    out(w.str());
  } else {
    out(str("build_id ", r->build_id, "\n", "tree_digest sha256:", r->tree_digest, "\n", "path ", r->build_dir, "\n", "cached ",
            r->cached ? "yes" : "no", "\n"));
    if (r->sealed)
      out(str("sealed ", r->root, "\n", "sealed_sha256 sha256:", r->sealed->sha256, "\n", "verity_root_hash ", r->sealed->root_hash, "\n"));
    if (added) out(str("registered ", *reg, " -> ", escape_bytes(added->entry.current.root), "\n"));
  }
  return k_ok;
}

}  // namespace

CHROOTCTL_VERB("build", "build a recipe into a stripped, checksummed image in the store", build_main);

}  // namespace chrootctl::cli
