// chrootctl add NAME BUILD-DIR|RECIPE
#include <sys/stat.h>

#include <cstdlib>

#include <optional>

#include "chrootctl/builder/build.hpp"
#include "chrootctl/builder/recipe.hpp"
#include "chrootctl/catalogue/registry.hpp"
#include "chrootctl/catalogue/resolve.hpp"
#include "chrootctl/catalogue/report.hpp"
#include "chrootctl/common/json.hpp"
#include "chrootctl/common/progress.hpp"
#include "chrootctl/common/settings.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "cli.hpp"

namespace chrootctl::cli {
namespace {

namespace cat = chrootctl::catalogue;

int add_main(std::span<char* const> argv) {
  const Spec spec{
      "add",
      "NAME BUILD-DIR|RECIPE [--store DIR] [--json]",
      "Verify a build directory against its manifest and register it under NAME.",
      "BUILD-DIR is a build directory (STORE/NAME/BUILD-ID, holding root/ and manifest); a\n"
      "RECIPE (a recipe name or PATH.toml) is first built as 'chrootctl build' does. Before\n"
      "anything is recorded, the root and every directory above it must be owned by root and not\n"
      "writable by group or others (a sticky directory such as /tmp is accepted above it), and\n"
      "the whole tree is re-hashed and compared with the manifest; the stat record for\n"
      "'resolve --fast' is rewritten from that walk. If NAME exists, the new build becomes\n"
      "current and the old one is kept for 'chrootctl rollback'. NAME is case-sensitive; 'root'\n"
      "is reserved.\n\n"
      "Exit status: 0 registered, 1 refused (the tree does not match its manifest, or an owner\n"
      "or permission check failed), 2 error.",
      {store_option(), json_option(), {"threads", 0, true, false, "N", "hashing threads (default: one per CPU)"},
       {"quiet", 'q', false, false, "", "no progress display"}},
      2, 2};
  Args a;
  if (auto rc = parse(spec, argv, a)) return *rc;
  const std::string name = a.positional[0];
  const std::string source = a.positional[1];
  if (auto why = cat::invalid_name(name)) return usage_error(spec, str("bad name: ", *why));
  cat::AddOptions opts;
  if (auto t = a.value("threads")) {
    auto n = parse_u64(*t);
    if (!n || *n == 0 || *n > 64) return usage_error(spec, str("bad --threads ", quote(*t)));
    opts.threads = static_cast<unsigned>(*n);
  }
  auto settings = load_settings(a.value("store"));
  if (!settings) return report(settings.error());
  std::string build_dir = source;
  auto st = sys::stat_path(source);
  if (!st || !S_ISDIR(st->st_mode)) {
    // Not a directory: a recipe (recipes/NAME.toml or a path), built first as 'chrootctl build' does.
    auto recipe = builder::find_recipe(source, settings->recipe_dirs);
    if (!recipe)
      return report(std::move(recipe.error())
                        .add_context(str("adding ", quote(name), ": ", quote(source), " is not a directory, so it was taken for a recipe")));
    builder::BuildOptions bopts;
    bopts.store = settings->store;
    bopts.threads = opts.threads;
    if (const char* sde = std::getenv("SOURCE_DATE_EPOCH"); sde && *sde) {
      auto v = parse_u64(sde);
      if (!v || *v > 253402300799ULL) return usage_error(spec, str("SOURCE_DATE_EPOCH=", quote(sde), " is not a number of seconds"));
      bopts.source_date_epoch = static_cast<std::int64_t>(*v);
    }
    // A recipe deriving from `image = "NAME"` starts from that name's verified root.
    bopts.resolve_image = [&](const std::string& base) -> Result<std::string> {
      auto r = cat::resolve(*settings, base);
      if (!r) return fail(std::move(r.error()));
      return r->image;
    };
    const bool quiet = a.flag("quiet") || a.flag("json");
    ProgressLine bline(str("build ", recipe->name), quiet);
    bopts.status = [&](const std::string& m) {
      if (!quiet) bline.done(m);
    };
    bopts.progress = [&](const std::string& m) { bline.update(m); };
    auto b = builder::build(*recipe, bopts);
    if (!b) return report(b.error());
    if (!quiet) bline.done(b->cached ? str("inputs unchanged: reusing ", b->build_dir) : str("built ", b->build_dir));
    build_dir = b->build_dir;
  }
  std::optional<ProgressLine> line;
  line.emplace(str("verifying ", build_dir), a.flag("quiet") || a.flag("json"));
  opts.progress = [&line](const manifest::Progress& p) {
    line->update(str(p.entries, " entries, ", p.files_hashed, " files hashed, ", human_size(p.bytes_hashed)));
  };
  auto r = cat::add(*settings, name, build_dir, opts);
  if (!r) {
    line.reset();
    report(r.error());
    return r.error().code() == Errc::mismatch || r.error().code() == Errc::permission ? k_failed_check : k_error;
  }
  line.reset();
  const auto& v = r->entry.current;
  if (a.flag("json")) {
    JsonWriter w;
    w.begin_object();
    w.field("name", name);
    w.field("refreshed", r->refreshed);
    w.key("replaced");
    if (r->replaced) w.value(r->replaced->build_id);
    else w.null();
    w.field("entries", static_cast<std::uint64_t>(r->entries));
    w.key("entry");
    cat::write_json(w, r->entry, cat::evaluate(*settings, name, v, sys::now_unix()));
    w.end_object();
    out(w.str());
    return k_ok;
  }
  if (r->refreshed)
    out(str(name, ": build ", v.build_id, " re-verified (", r->entries, " entries, sha256:", v.digest, ")\n"));
  else if (r->replaced)
    out(str(name, ": build ", v.build_id, " is now current (", r->entries, " entries, sha256:", v.digest, "); build ",
            r->replaced->build_id, " kept for 'chrootctl rollback ", name, "'\n"));
  else
    out(str(name, ": added build ", v.build_id, " (", r->entries, " entries, sha256:", v.digest, ")\n"));
  out(str(name, " -> ", escape_bytes(v.root), "\n"));
  return k_ok;
}

}  // namespace

CHROOTCTL_VERB("add", "verify a build directory and register it under a name", add_main);

}  // namespace chrootctl::cli
