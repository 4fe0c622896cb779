// chrootctl export NAME -o FILE.tar.zst
#include <optional>

#include "chrootctl/common/json.hpp"
#include "chrootctl/common/progress.hpp"
#include "chrootctl/common/settings.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/distribution/export.hpp"
#include "cli.hpp"

namespace chrootctl::cli {
namespace {

namespace cat = chrootctl::catalogue;
namespace dist = chrootctl::distribution;

int export_main(std::span<char* const> argv) {
  const Spec spec{"export",
                  "NAME -o FILE.tar.zst [--level N] [--store DIR] [--json]",
                  "Pack a registered image into one file for another host.",
                  "Writes a tar archive (pax, zstd) holding the catalogue entry, the manifest, the lock, the\n"
                  "recipe, the signature (when the image is signed) and root/ with its owners, modes, hard\n"
                  "links, devices, FIFOs and xattrs (docs/signing.md). The tree is read in manifest order and\n"
                  "every entry is compared with the manifest as it is packed, contents by SHA-256: a tree that\n"
                  "changed since it was verified is refused. The archive is written beside FILE and renamed\n"
                  "into place when complete. 'chrootctl import FILE' unpacks it on another host.\n\n"
                  "Exit status: 0 written, 1 refused (the tree does not match its manifest, or an owner or\n"
                  "permission check failed), 2 error.",
                  {store_option(),
                   json_option(),
                   {"output", 'o', true, false, "FILE", "the archive to write (required)"},
                   {"level", 0, true, false, "N", "zstd compression level, 1-19 (default 3)"},
                   quiet_option()},
                  1,
                  1};
  Args a;
  if (auto rc = parse(spec, argv, a)) return *rc;
  auto output = a.value("output");
  if (!output) return usage_error(spec, "-o FILE is required");
  dist::ExportOptions opts;
  if (auto l = a.value("level")) {
    auto n = parse_u64(*l);
    if (!n || *n < 1 || *n > 19) return usage_error(spec, str("bad --level ", quote(*l), " (1 to 19)"));
    opts.level = static_cast<int>(*n);
  }
  auto settings = load_existing_store_settings(a);
  if (!settings) return report(settings.error());
  std::optional<ProgressLine> line;
  line.emplace(str("exporting ", a.positional[0]), a.flag("quiet") || a.flag("json"));
  opts.progress = [&line](std::uint64_t entries, std::uint64_t bytes) { line->update(str(entries, " entries, ", human_size(bytes))); };
  auto r = dist::export_image(*settings, a.positional[0], *output, opts);
  line.reset();
  if (!r) {
    report(r.error());
    return r.error().code() == Errc::mismatch || r.error().code() == Errc::permission ? k_failed_check : k_error;
  }
  if (a.flag("json")) {
    JsonWriter w;
    w.begin_object();
    w.field("name", r->name);
    w.field("image", escape_bytes(r->image));
    w.field("output", escape_bytes(r->output));
    w.field("digest", r->digest);
    w.field("signer", r->signer);
    w.field("entries", static_cast<std::uint64_t>(r->entries));
    w.field("bytes", r->bytes);
    w.field("archive_size", r->archive_size);
    w.end_object();
    out(w.str());
    return k_ok;
  }
  out(str(r->name, ": exported ", r->entries, " entries (", human_size(r->bytes), ", sha256:", r->digest, ") to ", escape_bytes(r->output), " (",
          human_size(r->archive_size), ", ", r->signer.empty() ? std::string("unsigned") : str("signed by key ", r->signer), ")\n"));
  return k_ok;
}

}  // namespace

CHROOTCTL_VERB("export", "pack a registered image into a .tar.zst for another host", export_main);

}  // namespace chrootctl::cli
