// add, remove, alias, rollback.
#include "chrootctl/catalogue/registry.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>

#include "chrootctl/catalogue/access.hpp"
#include "chrootctl/catalogue/resolve.hpp"
#include "chrootctl/catalogue/safety.hpp"
#include "chrootctl/catalogue/sealed.hpp"
#include "chrootctl/catalogue/sign.hpp"
#include "chrootctl/catalogue/store.hpp"
#include "chrootctl/common/files.hpp"
#include "chrootctl/common/sha256.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/common/toml.hpp"
#include "chrootctl/common/tree_path.hpp"

namespace chrootctl::catalogue {

Result<ManifestFile> read_trusted_manifest(const std::string& image) {
  ManifestFile f;
  f.path = image + "/manifest";
  f.text = TRY(read_required_file(f.path, manifest::k_manifest_limit));
  Sha256 h;
  h.update(f.text);
  f.sha256 = h.hex_final();
  return f;
}

Result<manifest::Manifest> load_trusted_manifest(const std::string& image, std::string* digest) {
  const std::string path = image + "/manifest";
  const std::string text = TRY(read_required_file(path, manifest::k_manifest_limit));
  return manifest::parse(text, path, digest);
}

Status write_stat_record(const std::string& image, const manifest::Manifest& fresh, const std::string& digest) {
  const std::string path = manifest::stat_path_for(image + "/manifest");
  return with_context(write_file_atomic(path, manifest::serialize_stat(fresh, digest), 0644), str("writing the stat record ", path));
}

std::string count_differences(const manifest::DiffResult& d) {
  std::size_t real = 0;
  for (const auto& x : d.differences) real += x.kind != manifest::Difference::Kind::mtime_only;
  return str(real, real == 1 ? " difference" : " differences");
}

std::string listing(const manifest::DiffResult& d) {
  manifest::DiffResult real;
  for (const auto& x : d.differences)
    if (x.kind != manifest::Difference::Kind::mtime_only) real.differences.push_back(x);
  std::string text = manifest::render_text(real);
  if (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

std::string summarize(const manifest::DiffResult& d, std::size_t max_lines) {
  std::string out = count_differences(d);
  const std::string text = manifest::render_text(d);
  std::size_t pos = 0, lines = 0;
  while (pos < text.size()) {
    auto nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    const std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (starts_with(line, "mtime-only")) continue;
    if (lines == max_lines) {
      out += "; ...";
      break;
    }
    out += (lines ? "; " : ": ") + line;
    ++lines;
  }
  return out;
}

namespace {

// The source_date_epoch a lock records (the time of the build's newest input; signed through
// the lock's digest), if it records one.
std::optional<std::int64_t> lock_epoch(std::string text, const std::string& label) {
  auto doc = parse_toml(std::move(text), label);
  if (!doc) return std::nullopt;
  return doc->table["source_date_epoch"].value<std::int64_t>();
}

std::optional<std::int64_t> lock_epoch_of(const std::string& image) {
  auto text = sys::read_file(image + "/lock", 16u << 20);
  if (!text) return std::nullopt;
  return lock_epoch(std::move(*text), image + "/lock");
}

Status check_not_a_downgrade(const std::string& name, const Version& current, const std::vector<Version>& previous, const std::string& recipe,
                             const std::string& build_id, std::optional<std::int64_t> epoch) {
  if (current.build_id == build_id) return {};
  const std::string remedy = " (give --allow-downgrade to replace it all the same)";
  if (!current.recipe.empty() && current.recipe != recipe)
    return fail(Errc::mismatch, str("refusing to replace ", quote(name), ", a build of recipe ", quote(current.recipe), ", by build ", build_id,
                                    " of recipe ", quote(recipe), remedy));
  const auto was = lock_epoch_of(current.image);
  if (was && epoch) {
    if (*epoch < *was)
      return fail(Errc::mismatch, str("refusing to replace build ", current.build_id, " of ", quote(name), " by the older build ", build_id,
                                      " (its inputs are of ", format_time(*epoch), ", the current build's of ", format_time(*was), ")", remedy));
    // Equal epochs cannot say which build is newer (a recipe that pins source_date_epoch).
    if (*epoch == *was)
      return fail(Errc::mismatch,
                  str("refusing to replace build ", current.build_id, " of ", quote(name), " by build ", build_id,
                      ": their inputs are of the same time (", format_time(*epoch), "), so neither can be shown to be newer", remedy));
    return {};
  }
  // Without the epochs, at least a build the name had before is not taken back silently.
  if (std::any_of(previous.begin(), previous.end(), [&](const Version& p) { return p.build_id == build_id; }))
    return fail(Errc::mismatch, str("refusing to make build ", build_id, ", an earlier build of ", quote(name), ", current again (it is at build ",
                                    current.build_id, "; 'chrootctl rollback' does that on purpose)", remedy));
  return {};
}

}  // namespace

Status check_replacement(const Settings& s, const std::string& name, const std::string& recipe, const std::string& build_id,
                         const std::string& lock_text) {
  const Catalogue c = TRY(load(s));
  const Entry* e = c.find(name);
  if (!e || e->current.build_id == build_id) return {};
  return check_not_a_downgrade(name, e->current, e->previous, recipe, build_id, lock_epoch(lock_text, build_id + "/lock"));
}

Status record_version(const Settings& s, const std::string& name, Version v, AddResult& result, const std::optional<std::string>& seccomp,
                      bool refuse_downgrade) {
  const std::string image = v.image;
  TRY(edit(s, [&](Catalogue& c) -> Status {
    // The tree was verified outside the lock; make sure the directory recorded is the one verified.
    auto now_id = check_version_root(v);
    if (!now_id) return fail(std::move(now_id.error()).add_context(str("refusing to add ", quote(image), " as ", quote(name))));
    if (!(*now_id == v.identity))
      return fail(Errc::mismatch, str("refusing to add ", quote(image), ": its root was replaced while it was being verified"));
    if (const Entry* owner = c.alias_target(name))
      return fail(Errc::exists, str(quote(name), " is an alias of ", quote(owner->name), "; remove the alias first (chrootctl remove ", name, ")"));
    Entry* e = c.find(name);
    if (!e) {
      Entry fresh_entry;
      fresh_entry.name = name;
      fresh_entry.current = v;
      if (seccomp) fresh_entry.seccomp = *seccomp;
      result.entry = c.insert(std::move(fresh_entry));
      return {};
    }
    if (refuse_downgrade && !(e->current.image == v.image && e->current.root == v.root)) {
      if (auto ok = check_not_a_downgrade(name, e->current, e->previous, v.recipe, v.build_id, lock_epoch_of(v.image)); !ok) return ok;
    }
    if (e->current.image == v.image && e->current.root == v.root) {
      if (e->current.digest == v.digest) v.added_at = e->current.added_at;
      e->current = v;
      result.refreshed = true;
    } else {
      std::erase_if(e->previous, [&](const Version& p) { return p.image == v.image && p.root == v.root; });
      result.replaced = e->current;
      e->previous.insert(e->previous.begin(), e->current);
      e->current = v;
    }
    if (seccomp) e->seccomp = *seccomp;
    result.entry = *e;
    return {};
  }));
  return {};
}

namespace {

Result<std::string> recipe_name(const std::string& image) {
  const std::string path = image + "/recipe.toml";
  auto st = sys::lstat_path(path);
  if (!st) {
    if (st.error().sys_errno() == ENOENT) return std::string();
    return fail(st.error());
  }
  auto doc = TRY(load_toml(path));
  if (const auto* n = doc.table.get("name"); n && n->is_string()) return n->as_string()->get();
  return std::string();
}

}  // namespace

Result<AddResult> add(const Settings& s, const std::string& name, const std::string& build_dir, const AddOptions& options) {
  TRY(check_name(name));
  const std::string image = TRY(with_context(canonical_path(build_dir), str("adding ", quote(name))));
  auto ctx = [&](Error e) { return fail(std::move(e).add_context(str("refusing to add ", quote(image), " as ", quote(name)))); };
  if (auto d = check_trusted_dir(image, "build directory"); !d) return ctx(d.error());
  auto file = read_trusted_manifest(image);
  if (!file) return ctx(file.error());
  std::string digest;
  auto m = manifest::parse(file->text, file->path, &digest);
  if (!m) return ctx(m.error());
  // A sealed build's root is its image file (docs/sealed.md).
  std::string root = m->sealed ? str(image, "/", manifest::k_sealed_file) : image + "/root";
  if (!options.root.empty()) {
    auto r = canonical_path(options.root);
    if (!r) return ctx(r.error());
    root = *r;
  }
  if (auto p = check_plain_path(image); !p) return ctx(p.error());
  if (auto p = check_plain_path(root); !p) return ctx(p.error());
  auto identity = m->sealed ? check_sealed_file(root) : check_root(root);
  if (!identity) return ctx(identity.error());
  // A stripped tree's signature covers the manifest it was made from (its parse checked that
  // the strip records lead back to it).
  const std::string signed_digest = m->stripped_from;
  auto recipe = recipe_name(image);
  if (!recipe) return ctx(recipe.error());
  // The signature first: it is cheap, and an image this host may not use is not worth hashing.
  const std::string build_id = options.build_id.empty() ? base_name(image) : options.build_id;
  const auto sig = judge_image(s, image, *recipe, build_id, signed_digest.empty() ? digest : signed_digest, m->sealed, false);
  if (!sig.acceptable) return fail(Errc::permission, str("refusing to add ", quote(image), " as ", quote(name), ": ", sig.reason));

  const std::int64_t started = options.now ? options.now : sys::now_unix();
  if (m->sealed) {
    // One file: its SHA-256 and its dm-verity hash tree, against the manifest's #sealed line.
    if (auto c = check_sealed_contents(root, *m->sealed); !c)
      return fail(Errc::mismatch, str("refusing to add ", quote(image), " as ", quote(name), ": ", c.error().what()));
    if (options.sealed_tree) {
      if (auto c = options.sealed_tree(root, *m->sealed, *m); !c)
        return fail(Errc::mismatch, str("refusing to add ", quote(image), " as ", quote(name), ": ", c.error().what()));
    }
  } else {
    manifest::CreateOptions copts;
    copts.threads = options.threads;
    copts.progress = options.progress;
    manifest::Manifest fresh;
    auto d = manifest::check(root, *m, copts, &fresh);
    if (!d) return ctx(d.error());
    if (d->differs_beyond_mtime())
      return fail(Errc::mismatch, str("refusing to add ", quote(image), " as ", quote(name), ": its root does not match its manifest (",
                                      count_differences(*d), "):\n", listing(*d)));
    TRY(write_stat_record(image, fresh, digest));
  }
  // Who may reach the tree (access.hpp): root only, or nothing privileged in it. A sealed
  // image holds nothing privileged on the host; its directory is opened for a readable name.
  auto access = settle_access(s, name, image, root, *m);
  if (!access) return ctx(access.error());

  Version v;
  v.image = image;
  v.root = root;
  v.digest = digest;
  v.signed_digest = signed_digest;
  v.build_id = build_id;
  v.recipe = *recipe;
  v.signer = sig.signer;
  v.added_at = started;
  v.verified_at = started;
  v.identity = *identity;
  v.sealed = m->sealed;
  if (v.sealed) v.manifest_sha256 = file->sha256;

  AddResult result;
  result.entries = m->entries.size();
  if (sig.state != "signed" && !sig.key_id.empty()) result.notes.push_back(str("registered unsigned: ", sig.reason));
  result.notes.insert(result.notes.end(), access->begin(), access->end());
  TRY(record_version(s, name, v, result, options.seccomp, options.refuse_downgrade));
  return result;
}

Result<RemoveResult> remove(const Settings& s, const std::string& name) {
  RemoveResult result;
  TRY(edit(s, [&](Catalogue& c) -> Status {
    if (Entry* e = c.find(name)) {
      result.removed = name;
      result.aliases = e->aliases;
      result.images.push_back(e->current.image);
      for (const auto& p : e->previous) result.images.push_back(p.image);
      c.entries.erase(c.entries.begin() + (e - c.entries.data()));
      return {};
    }
    for (auto& e : c.entries) {
      auto it = std::find(e.aliases.begin(), e.aliases.end(), name);
      if (it != e.aliases.end()) {
        e.aliases.erase(it);
        result.removed = name;
        result.alias_of = e.name;
        return {};
      }
    }
    return fail(c.not_found(name, catalogue_path(s)));
  }));
  return result;
}

Result<std::string> alias(const Settings& s, const std::string& new_name, const std::string& target, bool force) {
  TRY(check_name(new_name));
  std::string entry_name;
  TRY(edit(s, [&](Catalogue& c) -> Status {
    Entry* e = c.find_any(target);
    if (!e) return fail(c.not_found(target, catalogue_path(s)));
    if (c.find(new_name)) return fail(Errc::exists, str(quote(new_name), " is already the name of an entry"));
    if (Entry* owner = c.find_any(new_name)) {
      if (owner == e) {
        entry_name = e->name;
        return {};
      }
      if (!force) return fail(Errc::exists, str(quote(new_name), " is already an alias of ", quote(owner->name), " (use --force to move it)"));
      std::erase(owner->aliases, new_name);
    }
    e->aliases.push_back(new_name);
    std::sort(e->aliases.begin(), e->aliases.end());
    entry_name = e->name;
    return {};
  }));
  return entry_name;
}

Result<RollbackResult> rollback(const Settings& s, const std::string& name, const std::optional<std::string>& to) {
  RollbackResult result;
  TRY(edit(s, [&](Catalogue& c) -> Status {
    Entry* e = c.find_any(name);
    if (!e) return fail(Errc::not_found, str(quote(name), " is not in the catalogue ", catalogue_path(s)));
    if (e->previous.empty()) return fail(Errc::not_found, str(quote(e->name), " has no previous version to roll back to"));
    std::size_t index = 0;
    if (to) {
      auto it = std::find_if(e->previous.begin(), e->previous.end(), [&](const Version& v) { return v.build_id == *to; });
      if (it == e->previous.end()) {
        std::vector<std::string> ids;
        for (const auto& v : e->previous) ids.push_back(v.build_id);
        return fail(Errc::not_found,
                    str(quote(e->name), " has no previous version with build id ", quote(*to), " (previous: ", join(ids, ", "), ")"));
      }
      index = static_cast<std::size_t>(it - e->previous.begin());
    }
    result.name = e->name;
    result.aliases = e->aliases;
    result.dropped.push_back(e->current);
    for (std::size_t i = 0; i < index; ++i) result.dropped.push_back(e->previous[i]);
    e->current = e->previous[index];
    e->previous.erase(e->previous.begin(), e->previous.begin() + static_cast<std::ptrdiff_t>(index) + 1);
    result.current = e->current;
    return {};
  }));
  return result;
}

}  // namespace chrootctl::catalogue
