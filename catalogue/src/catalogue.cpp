// The catalogue file: parsing with file:line:col diagnostics, canonical serialisation, and the
// locked read-change-replace cycle that every change goes through.
#include "chrootctl/catalogue/catalogue.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>
#include <utility>

#include "chrootctl/catalogue/safety.hpp"
#include "chrootctl/common/files.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/common/toml.hpp"

namespace chrootctl::catalogue {

namespace {

constexpr std::int64_t k_format = 1;
constexpr std::size_t k_max_name = 64;
constexpr const char* k_file = "catalogue.toml";
constexpr const char* k_temp_prefix = ".catalogue.toml.tmp.";

bool ascii_iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::optional<std::uint64_t> non_negative(TableReader& r, const toml::table& t, std::string_view key, bool required, const std::string& ctx) {
  auto v = r.integer(key, required);
  if (!v) return std::nullopt;
  if (*v < 0) {
    r.diagnostics().error(*t.get(key), str(quote(ctx.empty() ? std::string(key) : str(ctx, ".", key)), " must not be negative"));
    return std::nullopt;
  }
  return static_cast<std::uint64_t>(*v);
}

void check_path_field(Diagnostics& diag, const toml::table& t, std::string_view key, const std::string& value) {
  if (value.empty() || value[0] != '/' || value.find('\0') != std::string::npos)
    diag.error(*t.get(key), str(quote(key), " must be an absolute path"));
}

Version parse_version(Diagnostics& diag, TableReader& r, const toml::table& t, const std::string& ctx) {
  Version v;
  if (auto x = r.string("image", true)) {
    v.image = *x;
    check_path_field(diag, t, "image", v.image);
  }
  if (auto x = r.string("root", true)) {
    v.root = *x;
    check_path_field(diag, t, "root", v.root);
  }
  if (auto x = r.string("digest", true)) {
    v.digest = *x;
    if (!is_sha256_hex(v.digest)) diag.error(*t.get("digest"), "'digest' must be 64 lowercase hex digits");
  }
  if (auto x = r.string("signed_digest")) {
    v.signed_digest = *x;
    if (!is_sha256_hex(v.signed_digest)) diag.error(*t.get("signed_digest"), "'signed_digest' must be 64 lowercase hex digits");
  }
  if (auto x = r.string("build_id", true)) v.build_id = *x;
  if (auto x = r.string("recipe")) v.recipe = *x;
  if (auto x = r.string("signer")) v.signer = *x;
  if (auto x = non_negative(r, t, "added_at", true, ctx)) v.added_at = static_cast<std::int64_t>(*x);
  if (auto x = non_negative(r, t, "verified_at", true, ctx)) v.verified_at = static_cast<std::int64_t>(*x);
  if (auto x = non_negative(r, t, "failed_at", false, ctx)) v.failed_at = static_cast<std::int64_t>(*x);
  if (auto x = r.string("failure")) v.failure = *x;
  if (const auto* id = r.table("identity", true)) {
    TableReader ir(diag, *id, "identity");
    if (auto x = non_negative(ir, *id, "dev", true, "identity")) v.identity.dev = *x;
    if (auto x = non_negative(ir, *id, "ino", true, "identity")) v.identity.ino = *x;
    if (auto x = non_negative(ir, *id, "uid", true, "identity")) v.identity.uid = static_cast<std::uint32_t>(*x);
    if (auto x = non_negative(ir, *id, "gid", true, "identity")) v.identity.gid = static_cast<std::uint32_t>(*x);
    if (auto x = ir.string("mode", true)) {
      auto m = parse_u64(*x, 8);
      if (x->size() != 4 || !m || *m > 07777) diag.error(*id->get("mode"), "'identity.mode' must be four octal digits, like \"0755\"");
      else v.identity.mode = static_cast<std::uint32_t>(*m);
    }
    ir.finish();
  }
  if (const auto* sealed = r.table("sealed")) {
    TableReader sr(diag, *sealed, "sealed");
    manifest::Sealed m;
    if (auto x = sr.string("format", true)) m.format = *x;
    if (auto x = non_negative(sr, *sealed, "size", true, "sealed")) m.size = *x;
    if (auto x = sr.string("sha256", true)) m.sha256 = *x;
    if (auto x = non_negative(sr, *sealed, "hash_offset", true, "sealed")) m.hash_offset = *x;
    if (auto x = sr.string("root_hash", true)) m.root_hash = *x;
    if (auto x = sr.string("salt", true)) m.salt = *x;
    sr.finish();
    // The same rules as the manifest's #sealed line, which this records.
    if (!manifest::parse_sealed_line(manifest::sealed_line(m)))
      diag.error(*t.get("sealed"), "'sealed' is not a valid sealed image record (format erofs, sizes, 64-hex-digit digests)");
    else v.sealed = std::move(m);
  }
  if (auto x = r.string("manifest_sha256")) {
    v.manifest_sha256 = *x;
    if (!is_sha256_hex(v.manifest_sha256)) diag.error(*t.get("manifest_sha256"), "'manifest_sha256' must be 64 lowercase hex digits");
    else if (!v.sealed) diag.error(*t.get("manifest_sha256"), "'manifest_sha256' is recorded for sealed images only");
  }
  return v;
}

void write_version(TomlWriter& w, const Version& v) {
  w.string("image", v.image)
      .string("root", v.root)
      .string("digest", v.digest)
      .optional_string("signed_digest", v.signed_digest)
      .string("build_id", v.build_id)
      .string("recipe", v.recipe)
      .optional_string("signer", v.signer)
      .integer("added_at", v.added_at)
      .integer("verified_at", v.verified_at);
  if (v.failed_at != 0 || !v.failure.empty()) w.integer("failed_at", v.failed_at).string("failure", v.failure);
  w.inline_table("identity", {{"dev", str(v.identity.dev)},
                              {"ino", str(v.identity.ino)},
                              {"uid", str(v.identity.uid)},
                              {"gid", str(v.identity.gid)},
                              {"mode", toml_quote(mode_octal(v.identity.mode))}});
  if (v.sealed)
    w.inline_table("sealed", {{"format", toml_quote(v.sealed->format)},
                              {"size", str(v.sealed->size)},
                              {"sha256", toml_quote(v.sealed->sha256)},
                              {"hash_offset", str(v.sealed->hash_offset)},
                              {"root_hash", toml_quote(v.sealed->root_hash)},
                              {"salt", toml_quote(v.sealed->salt)}});
  if (v.sealed) w.optional_string("manifest_sha256", v.manifest_sha256);
}

}  // namespace

std::string describe(const RootIdentity& id) {
  return str("dev ", major(static_cast<dev_t>(id.dev)), ":", minor(static_cast<dev_t>(id.dev)), " ino ", id.ino, " uid ", id.uid, " gid ", id.gid,
             " mode ", mode_octal(id.mode));
}

const Entry* Catalogue::find(std::string_view name) const {
  auto it = std::lower_bound(entries.begin(), entries.end(), name, [](const Entry& e, std::string_view n) { return e.name < n; });
  return it != entries.end() && it->name == name ? &*it : nullptr;
}
Entry* Catalogue::find(std::string_view name) { return const_cast<Entry*>(std::as_const(*this).find(name)); }

const Entry* Catalogue::alias_target(std::string_view alias) const {
  for (const auto& e : entries)
    if (std::find(e.aliases.begin(), e.aliases.end(), alias) != e.aliases.end()) return &e;
  return nullptr;
}

const Entry* Catalogue::find_any(std::string_view name) const {
  if (const Entry* e = find(name)) return e;
  return alias_target(name);
}
Entry* Catalogue::find_any(std::string_view name) { return const_cast<Entry*>(std::as_const(*this).find_any(name)); }

Entry& Catalogue::insert(Entry e) {
  auto it = std::lower_bound(entries.begin(), entries.end(), e.name, [](const Entry& x, const std::string& n) { return x.name < n; });
  return *entries.insert(it, std::move(e));
}

std::vector<std::string> Catalogue::names() const {
  std::vector<std::string> out;
  for (const auto& e : entries) {
    out.push_back(e.name);
    out.insert(out.end(), e.aliases.begin(), e.aliases.end());
  }
  return out;
}

std::optional<std::string> Catalogue::suggest(std::string_view name) const {
  const auto all = names();
  for (const auto& n : all)
    if (ascii_iequals(n, name)) return n;
  return did_you_mean(name, all);
}

Error Catalogue::not_found(std::string_view name, const std::string& file, std::string_view hint) const {
  std::string msg = str(quote(name), " is not in the catalogue ", file);
  if (auto dym = suggest(name)) msg += str(" (did you mean ", quote(*dym), "?", hint.empty() ? "" : " ", hint, ")");
  return Error(Errc::not_found, std::move(msg));
}

std::optional<std::string> invalid_name(std::string_view name) {
  if (name.empty()) return std::string("a name must not be empty");
  if (ascii_iequals(name, "root"))
    return str(quote(name), " is reserved: HTCondor maps 'root' to the host's /, and chrootctl never runs a job there");
  if (name.size() > k_max_name) return str(quote(name), " is longer than ", k_max_name, " bytes");
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); };
  if (!alnum(name[0])) return str(quote(name), " must start with a letter or a digit");
  for (char c : name)
    if (!alnum(c) && c != '_' && c != '-' && c != '.' && c != '+') return str(quote(name), " may hold only letters, digits, '_', '-', '.' and '+'");
  return std::nullopt;
}

Status check_name(std::string_view name) {
  if (auto why = invalid_name(name)) return fail(Errc::invalid_argument, str("bad name: ", *why));
  return {};
}

Result<Catalogue> parse(std::string text, const std::string& display_name) {
  auto doc = TRY(parse_toml(std::move(text), display_name));
  Diagnostics diag(doc);
  Catalogue cat;
  TableReader top(diag, doc.table);
  if (auto f = top.integer("format", true); f && *f != k_format)
    diag.error(*doc.table.get("format"), str("unsupported catalogue format ", *f, " (this chrootctl reads format ", k_format, ")"));
  if (const auto* entries = top.table("entry")) {
    for (const auto& [key, node] : *entries) {
      const std::string name(key.str());
      const auto& ks = key.source();
      const SourcePos kpos =
          ks.begin.line ? SourcePos{static_cast<std::uint32_t>(ks.begin.line), static_cast<std::uint32_t>(ks.begin.column)} : pos_of(node);
      if (auto why = invalid_name(name)) diag.error(kpos, str("bad entry name: ", *why));
      const auto* t = node.as_table();
      if (!t) {
        diag.error(node, str("entry ", quote(name), " must be a table ([entry.\"", name, "\"])"));
        continue;
      }
      TableReader r(diag, *t, str("entry.", name));
      Entry e;
      e.name = name;
      if (auto a = r.string_array("aliases")) e.aliases = *a;
      if (auto x = r.string("seccomp")) {
        if (*x != "default" && *x != "none" && (x->empty() || (*x)[0] != '/'))
          diag.error(*t->get("seccomp"), "'seccomp' must be \"default\", \"none\" or the absolute path of a policy file");
        else e.seccomp = *x;
      }
      if (const auto* prev = r.table_array("previous")) {
        for (const auto& item : *prev) {
          const auto& pt = *item.as_table();
          TableReader pr(diag, pt, str("entry.", name, ".previous"));
          e.previous.push_back(parse_version(diag, pr, pt, str("entry.", name, ".previous")));
          pr.finish();
        }
      }
      e.current = parse_version(diag, r, *t, str("entry.", name));
      r.finish();
      // Aliases share the entry names' namespace; check them once every entry is known.
      cat.entries.push_back(std::move(e));
    }
    std::sort(cat.entries.begin(), cat.entries.end(), [](const Entry& a, const Entry& b) { return a.name < b.name; });
    std::set<std::string> seen;
    for (const auto& e : cat.entries) seen.insert(e.name);
    for (auto& e : cat.entries) {
      const auto& t = *entries->get(e.name)->as_table();
      const auto* arr = t.get("aliases") ? t.get("aliases")->as_array() : nullptr;
      for (std::size_t i = 0; i < e.aliases.size(); ++i) {
        const auto& alias = e.aliases[i];
        const toml::node& where = arr && i < arr->size() ? *arr->get(i) : static_cast<const toml::node&>(t);
        if (auto why = invalid_name(alias)) diag.error(where, str("bad alias: ", *why));
        else if (!seen.insert(alias).second) diag.error(where, str("alias ", quote(alias), " is already the name of an entry or another alias"));
      }
      std::sort(e.aliases.begin(), e.aliases.end());
    }
  }
  top.finish();
  TRY(diag.result());
  return cat;
}

std::string serialize(const Catalogue& c) {
  TomlWriter w;
  w.comment(
       "chrootctl catalogue: friendly names for verified job roots (see docs/catalogue.md).\n"
       "Change it only with chrootctl: every change is made under a lock and the file is\n"
       "replaced atomically; a hand edit is never merged, and a damaged file is never overwritten.")
      .integer("format", k_format);
  for (const auto& e : c.entries) {
    w.table(str("entry.", toml_quote(e.name)));
    std::vector<std::string> aliases = e.aliases;
    std::sort(aliases.begin(), aliases.end());
    w.strings("aliases", aliases).optional_string("seccomp", e.seccomp);
    write_version(w, e.current);
    for (const auto& p : e.previous) {
      w.table(str("entry.", toml_quote(e.name), ".previous"), true);
      write_version(w, p);
    }
  }
  return w.text();
}

std::string catalogue_path(const Settings& s) { return str(s.store, "/", k_file); }
std::string lock_path(const Settings& s) { return str(s.store, "/catalogue.lock"); }

Result<Catalogue> load(const Settings& s) {
  const std::string path = catalogue_path(s);
  auto text = sys::read_file(path, 64u << 20);
  if (!text) {
    if (text.error().sys_errno() == ENOENT) return Catalogue{};
    return fail(std::move(text.error()).add_context(str("reading the catalogue ", path)));
  }
  return parse(std::move(*text), path);
}

Result<Catalogue> load_trusted(const Settings& s) {
  auto store = canonical_path(s.store);
  if (!store) {
    if (store.error().sys_errno() == ENOENT) return Catalogue{};  // no store yet: nothing registered
    return fail(std::move(store.error()).add_context("reading the catalogue"));
  }
  TRY(with_context(check_trusted_dir(*store, "the store"), "refusing to trust the catalogue"));
  // From here on only the checked path is used: a symlink on the way to the store could be
  // re-pointed by whoever owns the directory it is in.
  const std::string path = str(*store, "/", k_file);
  auto fd = sys::open_path(path, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
  if (!fd) {
    if (fd.error().sys_errno() == ENOENT) return Catalogue{};
    return fail(std::move(fd.error()).add_context(str("reading the catalogue ", path)));
  }
  auto st = TRY(sys::fstat(fd->get()));
  TRY(with_context(check_trusted_file(st, path), "refusing to trust the catalogue"));
  auto text = TRY(with_context(sys::read_fd(fd->get(), 64u << 20), str("reading the catalogue ", path)));
  return parse(std::move(text), path);
}

Status edit(const Settings& given, const std::function<Status(Catalogue&)>& change) {
  TRY(with_context(sys::mkdir_p(given.store, 0755), str("creating the store ", given.store)));
  // Only a catalogue that nobody but this user (or root) can have written is carried forward:
  // root must never re-sign, by rewriting it, a file another user planted. From here on only
  // the checked, canonical store path is used (a symlink on the way could be re-pointed).
  const uid_t me = ::geteuid();
  Settings s = given;
  s.store = TRY(canonical_path(given.store));
  TRY(with_context(check_owned_dir(s.store, me), "refusing to edit the catalogue"));
  auto lock = TRY(LockFile::acquire(lock_path(s)));
  // A writer killed between mkostemp and rename leaves its temporary file behind; only the lock
  // holder creates them, so any that exist now are stale.
  {
    auto dir = TRY(sys::open_dir(s.store));
    auto names = TRY(sys::read_dir(dir.get(), false));
    for (const auto& d : names)
      if (starts_with(d.name, k_temp_prefix)) (void)sys::unlink_at(dir.get(), d.name);
  }
  if (auto st = sys::lstat_path(catalogue_path(s)); st) {
    if (!S_ISREG(st->st_mode) || (st->st_uid != 0 && st->st_uid != me) || (st->st_mode & (S_IWGRP | S_IWOTH)))
      return fail(Errc::permission, str("refusing to edit the catalogue: ", quote(catalogue_path(s)), " is not a regular file owned by ",
                                        me == 0 ? std::string("root") : str("root or uid ", me), " and unwritable by group and others"));
  } else if (st.error().sys_errno() != ENOENT) {
    return fail(st.error());
  }
  auto cat = TRY(load(s));
  TRY(change(cat));
  std::sort(cat.entries.begin(), cat.entries.end(), [](const Entry& a, const Entry& b) { return a.name < b.name; });
  for (auto& e : cat.entries) std::sort(e.aliases.begin(), e.aliases.end());
  const std::string text = serialize(cat);
  // Never write what the next reader could not parse.
  if (auto again = parse(text, catalogue_path(s)); !again || !(again->entries == cat.entries))
    return fail(Errc::internal, str("the catalogue would not read back as written", again ? std::string() : str(": ", again.error().what())));
  return with_context(write_file_atomic(catalogue_path(s), text, 0644), str("writing the catalogue ", catalogue_path(s)));
}

}  // namespace chrootctl::catalogue
