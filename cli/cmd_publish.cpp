// chrootctl publish NAME DIR
#include <optional>

#include "chrootctl/common/json.hpp"
#include "chrootctl/common/progress.hpp"
#include "chrootctl/common/settings.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/distribution/publish.hpp"
#include "cli.hpp"

namespace chrootctl::cli {
namespace {

namespace cat = chrootctl::catalogue;
namespace dist = chrootctl::distribution;

int publish_main(std::span<char* const> argv) {
  const Spec spec{"publish",
                  "NAME DIR [--copy] [--allow-unsigned] [--store DIR] [--json]",
                  "Publish a registered image to a shared filesystem or a CVMFS repository.",
                  "Writes DIR/NAME/BUILD-ID/{root,manifest,lock,recipe.toml,signature} and the catalogue\n"
                  "fragment DIR/catalogue.d/NAME.toml. The build is written to a temporary directory in DIR,\n"
                  "checked in full against its manifest and renamed into place, so readers see all of it or\n"
                  "nothing. Files identical to those of builds published earlier (same SHA-256, size, mode,\n"
                  "owner and xattrs) are hard-linked to them; --copy copies every file instead (use it for\n"
                  "CVMFS, which stores identical contents once by itself and refuses hard links across\n"
                  "directories). Worker nodes register published images with 'chrootctl add --from DIR'.\n"
                  "An image without a signature is refused unless --allow-unsigned is given.\n\n"
                  "Exit status: 0 published, 1 refused (unsigned, or the tree does not match its manifest),\n"
                  "2 error.",
                  {store_option(),
                   json_option(),
                   {"copy", 0, false, false, "", "copy every file; never hard-link to earlier builds"},
                   {"allow-unsigned", 0, false, false, "", "publish an image that has no signature"},
                   threads_option(),
                   quiet_option()},
                  2,
                  2};
  Args a;
  if (auto rc = parse(spec, argv, a)) return *rc;
  dist::PublishOptions opts;
  opts.link = !a.flag("copy");
  opts.allow_unsigned = a.flag("allow-unsigned");
  if (auto rc = threads_value(spec, a, opts.threads)) return *rc;
  auto settings = load_existing_store_settings(a);
  if (!settings) return report(settings.error());
  const bool quiet = a.flag("quiet") || a.flag("json");
  std::optional<ProgressLine> line;
  line.emplace(str("publishing ", a.positional[0]), quiet);
  opts.status = [&](const std::string& m) {
    if (!quiet) line->done(m);
  };
  opts.progress = [&line](const manifest::Progress& p) {
    line->update(str(p.entries, " entries, ", p.files_hashed, " files hashed, ", human_size(p.bytes_hashed)));
  };
  auto r = dist::publish(*settings, a.positional[0], a.positional[1], opts);
  line.reset();
  if (!r) {
    report(r.error());
    return r.error().code() == Errc::mismatch || r.error().code() == Errc::permission || r.error().code() == Errc::exists ? k_failed_check : k_error;
  }
  if (a.flag("json")) {
    JsonWriter w;
    w.begin_object();
    w.field("name", r->name);
    w.field("build_id", r->build_id);
    w.field("published", escape_bytes(r->published));
    w.field("fragment", escape_bytes(r->fragment));
    w.field("digest", r->digest);
    w.field("signer", r->signer);
    w.field("already_published", r->already_published);
    w.field("entries", static_cast<std::uint64_t>(r->entries));
    w.field("files", r->files);
    w.field("files_linked", r->files_linked);
    w.field("bytes_copied", r->bytes_copied);
    w.field("bytes_linked", r->bytes_linked);
    w.end_object();
    out(w.str());
    return k_ok;
  }
  if (r->already_published) {
    out(str(r->name, ": build ", r->build_id, " was already published at ", escape_bytes(r->published), "; ", escape_bytes(r->fragment),
            " names it\n"));
    return k_ok;
  }
  out(str(r->name, ": published build ", r->build_id, " at ", escape_bytes(r->published), " (", r->entries, " entries; ", r->files_linked, " of ",
          r->files, " files hard-linked to earlier builds, ", human_size(r->bytes_copied), " copied)\n"));
  out(str(r->name, ": ", escape_bytes(r->fragment), " names it\n"));
  return k_ok;
}

}  // namespace

CHROOTCTL_VERB("publish", "publish an image to a shared filesystem or CVMFS repository", publish_main);

}  // namespace chrootctl::cli
