// chrootctl import FILE [--as NAME] [--allow-unsigned]
#include <cstdio>
#include <optional>

#include "chrootctl/builder/build.hpp"
#include "chrootctl/builder/extract.hpp"
#include "chrootctl/catalogue/report.hpp"
#include "chrootctl/catalogue/resolve.hpp"
#include "chrootctl/common/json.hpp"
#include "chrootctl/common/progress.hpp"
#include "chrootctl/common/settings.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/common/tree_writer.hpp"
#include "chrootctl/distribution/export.hpp"
#include "cli.hpp"
#include "sealed.hpp"

namespace chrootctl::cli {
namespace {

namespace cat = chrootctl::catalogue;
namespace dist = chrootctl::distribution;

// The builder's archive extraction: every entry created dirfd-relative, never through a
// symlink, no absolute names or "..", trusted.* and system.* xattrs never set.
Result<dist::UnpackStats> unpack_with_builder(const std::string& archive, const std::string& dir, UnpackCheck& check) {
  auto tree = TRY(TreeWriter::open(dir));
  auto stats = TRY(builder::extract_archive(archive, tree, {}, {}, &check));
  TRY(tree.finish());
  return dist::UnpackStats{stats.entries, stats.bytes};
}

int import_main(std::span<char* const> argv) {
  const Spec spec{"import",
                  "FILE [--as NAME] [--allow-unsigned] [--allow-downgrade] [--strip] [--trusted DIR] [--store DIR] [--json]",
                  "Unpack an exported image, verify it and register it.",
                  "The archive's entry, manifest, lock, recipe and signature are read first and the signature\n"
                  "is judged against the trusted keys: an archive this host may not use is refused before\n"
                  "anything is written. So is a tree holding setuid or setgid files, file capabilities or\n"
                  "device nodes that the site's [strip] policy (config.toml) does not allow, unless --strip\n"
                  "is given: then they are written defused (bits cleared, capabilities dropped) or not at all,\n"
                  "and the manifest records each change. The archive is unpacked into STORE/.staging (root\n"
                  "only) with the builder's escape protections, every entry checked against the manifest as\n"
                  "it is written (the first mismatch stops the import), then renamed to\n"
                  "STORE/RECIPE/BUILD-ID, reachable by root only unless NAME is in readable_images, and\n"
                  "registered under the name it was exported with (or --as NAME). A truncated or damaged\n"
                  "archive, a tree that does not match, a revoked key or a signature that does not verify is\n"
                  "refused with the reason, leaving nothing behind.\n\n"
                  "An archive without a signature by a trusted key is refused unless --allow-unsigned is\n"
                  "given; with require_signature = true in the config it is always refused.\n\n"
                  "An archive does not replace a NAME's current build by one of another recipe, or by an\n"
                  "older one (the source_date_epoch their locks record), unless --allow-downgrade is given:\n"
                  "the name in an archive is not signed.\n\n"
                  "Exit status: 0 imported, 1 refused, 2 error.",
                  {store_option(),
                   json_option(),
                   {"as", 0, true, false, "NAME", "register under NAME instead of the exported name"},
                   {"allow-unsigned", 0, false, false, "", "accept an archive without a signature by a trusted key"},
                   {"allow-downgrade", 0, false, false, "", "let an older build, or one of another recipe, replace NAME's current one"},
                   {"strip", 0, false, false, "", "defuse or leave out what the site's [strip] policy does not allow, instead of refusing"},
                   trusted_option(),
                   threads_option(),
                   quiet_option()},
                  1,
                  1};
  Args a;
  if (auto rc = parse(spec, argv, a)) return *rc;
  dist::ImportOptions opts;
  if (auto n = a.value("as")) {
    if (auto why = cat::invalid_name(*n)) return usage_error(spec, str("bad name: ", *why));
    opts.as = *n;
  }
  if (auto rc = threads_value(spec, a, opts.threads)) return *rc;
  opts.allow_unsigned = a.flag("allow-unsigned");
  opts.allow_downgrade = a.flag("allow-downgrade");
  opts.strip = a.flag("strip");
  auto settings = load_settings(a.value("store"));
  if (!settings) return report(settings.error());
  if (auto t = a.value("trusted")) settings->trusted_keys = *t;
  opts.sealed_tree = sealed_tree_check(*settings, opts.threads);
  // Imports and builds share STORE/.staging; remove what dead ones left (their flock is free).
  (void)builder::clean_stale_staging(settings->store);
  opts.unpack = unpack_with_builder;
  const bool quiet = a.flag("quiet") || a.flag("json");
  std::optional<ProgressLine> line;
  line.emplace(str("importing ", a.positional[0]), quiet);
  opts.status = [&](const std::string& m) {
    if (!quiet) line->done(m);
  };
  opts.progress = [&line](const manifest::Progress& p) {
    line->update(str(p.entries, " entries, ", p.files_hashed, " files hashed, ", human_size(p.bytes_hashed)));
  };
  auto r = dist::import_image(*settings, a.positional[0], opts);
  line.reset();
  if (!r) {
    report(r.error());
    // Refusals of the archive's contents (including a truncated or undecodable one) are 1;
    // a file that cannot be read, a full disk or a usage problem is 2.
    const auto c = r.error().code();
    return c == Errc::mismatch || c == Errc::permission || c == Errc::exists || c == Errc::parse ? k_failed_check : k_error;
  }
  const auto& v = r->added.entry.current;
  if (a.flag("json")) {
    JsonWriter w;
    w.begin_object();
    w.field("name", r->name);
    w.field("image", escape_bytes(r->image));
    w.field("signature", r->signature_state);
    w.field("signer", r->signer);
    w.field("already_present", r->already_present);
    w.field("entries", static_cast<std::uint64_t>(r->added.entries));
    w.key("stripped").begin_array();
    for (const auto& c : r->stripped) {
      w.begin_object();
      w.field("path", escape_bytes(c.path));
      w.field("action", c.action);
      w.field("was", c.detail);
      w.end_object();
    }
    w.end_array();
    w.key("entry");
    cat::write_json(w, r->added.entry, cat::evaluate(*settings, r->name, r->added.entry.aliases, v, sys::now_unix()));
    w.end_object();
    out(w.str());
    return k_ok;
  }
  out(str(r->name, ": imported build ", v.build_id, " (", r->added.entries, " entries, sha256:", v.digest, ", ",
          r->signer.empty() ? std::string("unsigned") : str("signed by key ", r->signer), r->already_present ? ", already in the store" : "", ")\n"));
  for (const auto& c : r->stripped) out(str(r->name, ": stripped ", escape_bytes(c.path), ": ", c.action, " (was ", c.detail, ")\n"));
  if (r->added.replaced) out(str(r->name, ": build ", r->added.replaced->build_id, " kept for 'chrootctl rollback ", r->name, "'\n"));
  out(str(r->name, " -> ", escape_bytes(v.root), "\n"));
  for (const auto& n : r->added.notes) err(str("chrootctl: note: ", n, "\n"));
  return k_ok;
}

}  // namespace

CHROOTCTL_VERB("import", "unpack an exported image, verify it and register it", import_main);

}  // namespace chrootctl::cli
