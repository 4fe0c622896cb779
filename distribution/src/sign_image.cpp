// chrootctl sign: check a build against its manifest, sign its statement, record the signer.
#include "chrootctl/distribution/sign.hpp"

#include <sys/stat.h>

#include <algorithm>

#include "chrootctl/catalogue/registry.hpp"
#include "chrootctl/catalogue/safety.hpp"
#include "chrootctl/catalogue/sealed.hpp"
#include "chrootctl/catalogue/sign.hpp"
#include "chrootctl/catalogue/store.hpp"
#include "chrootctl/common/files.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/common/tree_path.hpp"

namespace chrootctl::distribution {

// What this file takes from the catalogue.
using catalogue::canonical_path;
using catalogue::Catalogue;
using catalogue::catalogue_path;
using catalogue::check_root;
using catalogue::check_sealed_contents;
using catalogue::check_sealed_file;
using catalogue::check_trusted_dir;
using catalogue::edit;
using catalogue::Entry;
using catalogue::image_statement;
using catalogue::judge_image;
using catalogue::load;
using catalogue::load_private_key;
using catalogue::render_signature;
using catalogue::render_statement;
using catalogue::Signature;
using catalogue::valid_word;
using catalogue::Version;

Result<SignResult> sign_image(const Settings& s, const std::string& target, const std::string& key_file, const SignOptions& options) {
  SignResult out;
  // The key first: a wrong key file should not cost a walk of the tree.
  auto key = TRY(load_private_key(key_file));

  std::string dir = target;
  if (target.find('/') == std::string::npos) {
    auto c = TRY(load(s));
    const Entry* e = c.find_any(target);
    if (!e) {
      std::string msg =
          str(quote(target), " is not in the catalogue ", catalogue_path(s), " (a build directory must be given with a '/', e.g. ./", target, ")");
      if (auto dym = c.suggest(target)) msg += str("; did you mean ", quote(*dym), "?");
      return fail(Errc::not_found, std::move(msg));
    }
    dir = e->current.image;
  }
  const std::string image = TRY(with_context(canonical_path(dir), str("signing ", quote(target))));
  auto ctx = [&](Error e) { return fail(std::move(e).add_context(str("refusing to sign ", quote(image)))); };
  // Only what nobody but root can change is worth a signature.
  if (auto d = check_trusted_dir(image, "build directory"); !d) return ctx(d.error());
  auto m = catalogue::load_trusted_manifest(image);
  if (!m) return ctx(m.error());
  // A sealed build is its image file (docs/sealed.md).
  const std::string root = m->sealed ? str(image, "/", manifest::k_sealed_file) : image + "/root";
  if (auto r = m->sealed ? check_sealed_file(root) : check_root(root); !r) return ctx(r.error());
  const std::string digest = manifest::digest(*m);
  // A stripped tree is vouched for through the manifest it was made from: its strip records
  // lead back to that digest, and they only ever remove privileges (manifest::original_digest).
  const std::string signed_digest = m->stripped_from.empty() ? digest : m->stripped_from;
  auto recipe_text = catalogue::read_trusted_file(image + "/recipe.toml");
  if (!recipe_text) return ctx(recipe_text.error());
  if (!*recipe_text) return ctx(Error(Errc::not_found, str("it has no recipe.toml (only builds are signed)")));
  auto recipe = catalogue::recipe_name_of(**recipe_text, image + "/recipe.toml");
  if (!recipe) return ctx(recipe.error());
  if (!valid_word(*recipe)) return ctx(Error(Errc::invalid_argument, str(image, "/recipe.toml has no usable 'name' (", quote(*recipe), ")")));
  const std::string build_id = base_name(image);
  if (!valid_word(build_id)) return ctx(Error(Errc::invalid_argument, str("its name ", quote(build_id), " is not a build id")));
  auto statement = image_statement(image, *recipe, signed_digest, m->sealed);
  if (!statement) return ctx(statement.error());

  // Nothing is signed that does not match: the signature vouches for the tree through the digest.
  if (m->sealed) {
    if (auto c = check_sealed_contents(root, *m->sealed); !c)
      return fail(Errc::mismatch, str("refusing to sign ", quote(image), ": ", c.error().what()));
    if (options.sealed_tree) {
      if (auto c = options.sealed_tree(root, *m->sealed, *m); !c)
        return fail(Errc::mismatch, str("refusing to sign ", quote(image), ": ", c.error().what()));
    }
  } else {
    manifest::CreateOptions copts;
    copts.threads = options.threads;
    copts.progress = options.progress;
    auto d = manifest::check(root, *m, copts);
    if (!d) return ctx(d.error());
    if (d->differs_beyond_mtime())
      return fail(Errc::mismatch, str("refusing to sign ", quote(image), ": its root does not match its manifest (", catalogue::count_differences(*d),
                                      "):\n", catalogue::listing(*d)));
  }
  out.entries = m->entries.size();

  Signature sig;
  sig.key_id = key.id();
  sig.statement = *statement;
  sig.statement_text = render_statement(*statement);
  sig.value = TRY(key.sign(sig.statement_text));
  if (!key.verify(sig.statement_text, sig.value)) return fail(Errc::internal, "a fresh signature does not verify");
  out.image = image;
  out.signature_file = image + "/signature";
  out.key_id = key.id();
  out.statement = *statement;
  TRY(with_context(write_file_atomic(out.signature_file, render_signature(sig), 0644), str("writing ", out.signature_file)));

  // Registered versions of this image record the signer if this host trusts the key; the
  // signature they had before is gone, so otherwise they record none.
  auto cat = load(s);
  if (!cat) {
    out.notes.push_back(str("the catalogue could not be read, so no signer was recorded: ", cat.error().what()));
    return out;
  }
  bool registered = false;
  for (const auto& e : cat->entries) {
    registered = registered || e.current.image == image;
    for (const auto& p : e.previous) registered = registered || p.image == image;
  }
  if (!registered) return out;
  auto verdict = judge_image(s, image, *recipe, build_id, signed_digest, m->sealed, false);
  const std::string signer = verdict.state == "signed" ? verdict.signer : std::string();
  if (signer.empty()) out.notes.push_back(str("this host does not accept the signature (", verdict.reason, "), so no signer is recorded"));
  TRY(edit(s, [&](Catalogue& c) -> Status {
    out.recorded.clear();
    for (auto& e : c.entries) {
      auto record = [&](Version& v) {
        if (v.image != image || v.digest != digest) return false;
        v.signer = signer;
        return true;
      };
      bool any = record(e.current);
      for (auto& p : e.previous) any = record(p) || any;
      if (any && !signer.empty()) out.recorded.push_back(e.name);
    }
    return {};
  }));
  return out;
}

}  // namespace chrootctl::distribution
