// chrootctl add NAME BUILD-DIR|RECIPE
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include <optional>

#include "chrootctl/builder/build.hpp"
#include "chrootctl/builder/recipe.hpp"
#include "chrootctl/catalogue/registry.hpp"
#include "chrootctl/catalogue/report.hpp"
#include "chrootctl/catalogue/resolve.hpp"
#include "chrootctl/common/json.hpp"
#include "chrootctl/common/progress.hpp"
#include "chrootctl/common/settings.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/distribution/publish.hpp"
#include "chrootctl/seccomp/compile.hpp"
#include "chrootctl/seccomp/policy.hpp"
#include "chrootctl/seccomp/source.hpp"
#include "cli.hpp"
#include "sealed.hpp"

namespace chrootctl::cli {
namespace {

namespace cat = chrootctl::catalogue;
namespace dist = chrootctl::distribution;

// --seccomp FILE|default|none|site: what to record ("" for site), after checking that a policy
// file parses and compiles, so that no job finds out later.
Result<std::string> seccomp_choice(const std::string& value, const Settings& settings) {
  if (value == "site") return std::string();
  if (value == "default" || value == "none") return value;
  if (value.empty()) return fail(Errc::invalid_argument, "--seccomp: expected FILE, default, none or site");
  std::string path = value;
  if (path[0] != '/') {
    char cwd[4096];
    if (!::getcwd(cwd, sizeof cwd)) return fail_errno("getcwd()", errno);
    path = str(cwd, std::string_view(cwd) == "/" ? "" : "/", path);
  }
  auto source = TRY(seccomp::load_source(path, settings));
  auto policy = TRY(seccomp::parse_policy(*source));
  TRY(seccomp::compile_policy(policy));
  return path;
}

// add --from DIR [NAME...]: every published image named (or all), each verified and judged.
int add_from_main(const Spec& spec, const Args& a, const std::string& dir) {
  for (const auto& n : a.positional)
    if (auto why = cat::invalid_name(n)) return usage_error(spec, str("bad name: ", *why));
  dist::AddFromOptions opts;
  opts.allow_downgrade = a.flag("allow-downgrade");
  if (auto rc = threads_value(spec, a, opts.threads)) return *rc;
  auto settings = load_settings(a.value("store"));
  if (!settings) return report(settings.error());
  if (auto t = a.value("trusted")) settings->trusted_keys = *t;
  opts.sealed_tree = sealed_tree_check(*settings, opts.threads);
  const bool quiet = a.flag("quiet") || a.flag("json");
  std::optional<ProgressLine> line;
  line.emplace(str("registering from ", dir), quiet);
  opts.status = [&](const std::string& m) {
    if (!quiet) line->done(m);
  };
  opts.progress = [&line](const manifest::Progress& p) {
    line->update(str(p.entries, " entries, ", p.files_hashed, " files hashed, ", human_size(p.bytes_hashed)));
  };
  auto items = dist::add_from(*settings, dir, a.positional, opts);
  line.reset();
  if (!items) return report(items.error());
  bool all = true;
  if (a.flag("json")) {
    JsonWriter w;
    w.begin_object();
    w.key("items").begin_array();
    for (const auto& i : *items) {
      all = all && i.added;
      w.begin_object();
      w.field("name", i.name);
      w.field("fragment", escape_bytes(i.fragment));
      w.field("added", i.added);
      w.field("message", i.message);
      if (i.added) {
        w.key("entry");
        cat::write_json(w, i.result.entry, cat::evaluate(*settings, i.name, i.result.entry.aliases, i.result.entry.current, sys::now_unix()));
      }
      w.end_object();
    }
    w.end_array();
    w.end_object();
    out(w.str());
    return all ? k_ok : k_failed_check;
  }
  for (const auto& i : *items) {
    all = all && i.added;
    if (!i.added) {
      err(str("chrootctl: ", i.name, ": ", i.message, "\n"));
      continue;
    }
    const auto& v = i.result.entry.current;
    out(str(i.name, ": ", i.result.refreshed ? "re-verified" : "added", " build ", v.build_id, " (", i.result.entries, " entries, sha256:", v.digest,
            v.signer.empty() ? std::string(", unsigned") : str(", signed by key ", v.signer), ")\n"));
    out(str(i.name, " -> ", escape_bytes(v.root), "\n"));
    for (const auto& n : i.result.notes) err(str("chrootctl: note: ", i.name, ": ", n, "\n"));
  }
  return all ? k_ok : k_failed_check;
}

int add_main(std::span<char* const> argv) {
  const Spec spec{"add",
                  "NAME BUILD-DIR|RECIPE [--seccomp FILE|default|none|site] | --from DIR [NAME...] [--trusted DIR] [--store DIR] [--json]",
                  "Verify a build directory against its manifest and register it under NAME.",
                  "BUILD-DIR is a build directory (STORE/NAME/BUILD-ID, holding root/ and manifest); a\n"
                  "RECIPE (a recipe name or PATH.toml) is first built as 'chrootctl build' does. Before\n"
                  "anything is recorded, the root and every directory above it must be owned by root and not\n"
                  "writable by group or others (a sticky directory such as /tmp is accepted above it), and\n"
                  "the whole tree is re-hashed and compared with the manifest; the stat record for\n"
                  "'resolve --fast' is rewritten from that walk. If NAME exists, the new build becomes\n"
                  "current and the old one is kept for 'chrootctl rollback'. NAME is case-sensitive; 'root'\n"
                  "is reserved.\n\n"
                  "BUILD-DIR/signature is judged first: a valid signature by a trusted key records its key as\n"
                  "the signer; a revoked key or a signature that does not verify refuses the image, and so\n"
                  "does a missing one when require_signature = true.\n\n"
                  "--seccomp records the system-call policy the image's jobs run with (docs/seccomp.md): a\n"
                  "policy file (checked now), the built-in default, none (audit reports it), or site (the\n"
                  "site's policy, as without a recorded one). Without it an entry keeps what it has.\n\n"
                  "--from DIR registers images published with 'chrootctl publish' (every one in\n"
                  "DIR/catalogue.d, or the NAMEs given): their manifest, lock, recipe and signature are kept\n"
                  "in STORE/NAME/from-BUILD-ID and the published root is verified and run in place. A\n"
                  "published build does not replace a NAME's current one of another recipe, or a newer one\n"
                  "(the source_date_epoch their locks record), unless --allow-downgrade is given: a\n"
                  "fragment's name and build are not signed.\n\n"
                  "Exit status: 0 registered, 1 refused (the tree does not match its manifest, or an owner\n"
                  "or permission check failed, or a signature was refused), 2 error.",
                  {store_option(),
                   json_option(),
                   threads_option(),
                   {"from", 0, true, false, "DIR", "register the images published in DIR"},
                   {"allow-downgrade", 0, false, false, "", "with --from: let an older build, or one of another recipe, replace NAME's"},
                   trusted_option(),
                   {"seccomp", 0, true, false, "FILE|default|none|site", "the system-call policy of the image's jobs"},
                   quiet_option()},
                  0,
                  1000};
  Args a;
  if (auto rc = parse(spec, argv, a)) return *rc;
  if (a.flag("allow-downgrade") && !a.value("from")) return usage_error(spec, "--allow-downgrade applies to --from");
  if (auto from = a.value("from")) {
    if (a.value("seccomp")) return usage_error(spec, "--seccomp applies to NAME BUILD-DIR, not to --from");
    return add_from_main(spec, a, *from);
  }
  if (a.positional.size() != 2) return usage_error(spec, "expected NAME and BUILD-DIR or RECIPE (or --from DIR)");
  const std::string name = a.positional[0];
  const std::string source = a.positional[1];
  if (auto why = cat::invalid_name(name)) return usage_error(spec, str("bad name: ", *why));
  cat::AddOptions opts;
  if (auto rc = threads_value(spec, a, opts.threads)) return *rc;
  auto settings = load_settings(a.value("store"));
  if (!settings) return report(settings.error());
  if (auto t = a.value("trusted")) settings->trusted_keys = *t;
  opts.sealed_tree = sealed_tree_check(*settings, opts.threads);
  if (auto sc = a.value("seccomp")) {
    auto choice = seccomp_choice(*sc, *settings);
    if (!choice) return report(std::move(choice.error()).add_context(str("--seccomp ", quote(*sc))));
    opts.seccomp = *choice;
  }
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
    cat::write_json(w, r->entry, cat::evaluate(*settings, name, r->entry.aliases, v, sys::now_unix()));
    w.end_object();
    out(w.str());
    return k_ok;
  }
  if (r->refreshed) out(str(name, ": build ", v.build_id, " re-verified (", r->entries, " entries, sha256:", v.digest, ")\n"));
  else if (r->replaced)
    out(str(name, ": build ", v.build_id, " is now current (", r->entries, " entries, sha256:", v.digest, "); build ", r->replaced->build_id,
            " kept for 'chrootctl rollback ", name, "'\n"));
  else out(str(name, ": added build ", v.build_id, " (", r->entries, " entries, sha256:", v.digest, ")\n"));
  out(str(name, " -> ", escape_bytes(v.root), "\n"));
  for (const auto& n : r->notes) err(str("chrootctl: note: ", n, "\n"));
  return k_ok;
}

}  // namespace

CHROOTCTL_VERB("add", "verify a build directory and register it under a name", add_main);

}  // namespace chrootctl::cli
