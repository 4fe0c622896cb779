// chrootctl sign NAME|BUILD-DIR --key KEY
#include <optional>

#include "chrootctl/catalogue/sign.hpp"
#include "chrootctl/common/json.hpp"
#include "chrootctl/common/progress.hpp"
#include "chrootctl/common/settings.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/distribution/sign.hpp"
#include "cli.hpp"
#include "sealed.hpp"

namespace chrootctl::cli {
namespace {

namespace cat = chrootctl::catalogue;
namespace dist = chrootctl::distribution;

int sign_main(std::span<char* const> argv) {
  const Spec spec{"sign",
                  "NAME|BUILD-DIR --key KEY [--trusted DIR] [--store DIR] [--json]",
                  "Sign an image's tree digest and lock with an Ed25519 key.",
                  "NAME is a catalogue name (its current version is signed); a build directory must be given\n"
                  "with a '/' (./DIR). The whole tree is first checked against its manifest: nothing is\n"
                  "signed that does not match. The signature covers a statement of the recipe name, the\n"
                  "build id, the tree digest and the SHA-256 of the lock (docs/signing.md) and is written to\n"
                  "BUILD-DIR/signature. Catalogue versions of the image record the key as their signer when\n"
                  "this host trusts it (--trusted, or trusted_keys in the config).\n\n"
                  "Exit status: 0 signed, 1 refused (the tree does not match its manifest, or an owner or\n"
                  "permission check failed), 2 error.",
                  {store_option(),
                   json_option(),
                   {"key", 'k', true, false, "KEY", "the private key file (required; mode 0600)"},
                   trusted_option(),
                   threads_option(),
                   quiet_option()},
                  1,
                  1};
  Args a;
  if (auto rc = parse(spec, argv, a)) return *rc;
  auto key = a.value("key");
  if (!key) return usage_error(spec, "--key KEY is required");
  dist::SignOptions opts;
  if (auto rc = threads_value(spec, a, opts.threads)) return *rc;
  auto settings = load_existing_store_settings(a);
  if (!settings) return report(settings.error());
  if (auto t = a.value("trusted")) settings->trusted_keys = *t;
  opts.sealed_tree = sealed_tree_check(*settings, opts.threads);
  std::optional<ProgressLine> line;
  line.emplace(str("checking ", a.positional[0]), a.flag("quiet") || a.flag("json"));
  opts.progress = [&line](const manifest::Progress& p) {
    line->update(str(p.entries, " entries, ", p.files_hashed, " files hashed, ", human_size(p.bytes_hashed)));
  };
  auto r = dist::sign_image(*settings, a.positional[0], *key, opts);
  line.reset();
  if (!r) {
    report(r.error());
    return r.error().code() == Errc::mismatch || r.error().code() == Errc::permission ? k_failed_check : k_error;
  }
  if (a.flag("json")) {
    JsonWriter w;
    w.begin_object();
    w.field("image", escape_bytes(r->image));
    w.field("signature", escape_bytes(r->signature_file));
    w.field("key_id", r->key_id);
    w.field("recipe", r->statement.recipe);
    w.field("build_id", r->statement.build_id);
    w.field("tree_digest", r->statement.tree_digest);
    w.field("lock_digest", r->statement.lock_digest);
    w.field("entries", static_cast<std::uint64_t>(r->entries));
    w.key("recorded").begin_array();
    for (const auto& n : r->recorded) w.value(n);
    w.end_array();
    w.key("notes").begin_array();
    for (const auto& n : r->notes) w.value(n);
    w.end_array();
    w.end_object();
    out(w.str());
    return k_ok;
  }
  out(str("signed ", escape_bytes(r->image), " with key ", r->key_id, " (", r->entries, " entries checked, tree sha256:", r->statement.tree_digest,
          ")\n"));
  for (const auto& n : r->recorded) out(str(n, ": signer ", r->key_id, " recorded\n"));
  for (const auto& n : r->notes) err(str("chrootctl: note: ", n, "\n"));
  return k_ok;
}

}  // namespace

CHROOTCTL_VERB("sign", "sign an image's tree digest and lock with an Ed25519 key", sign_main);

}  // namespace chrootctl::cli
