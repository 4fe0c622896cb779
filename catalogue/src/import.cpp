// chrootctl import: judge the signature, unpack into staging, verify every entry, then register.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <map>
#include <set>
#include <vector>

#include "chrootctl/catalogue/export.hpp"
#include "chrootctl/catalogue/safety.hpp"
#include "chrootctl/catalogue/sealed.hpp"
#include "chrootctl/catalogue/sign.hpp"
#include "chrootctl/common/files.hpp"
#include "chrootctl/common/sha256.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/verity/verity.hpp"
#include "export_tree.hpp"
#include "registry_internal.hpp"
#include "sign_internal.hpp"

namespace chrootctl::catalogue {

namespace {

constexpr const char* k_entry_member = "chrootctl-export.toml";
constexpr std::size_t k_manifest_limit = 512u << 20;
constexpr std::size_t k_small_limit = 16u << 20;

struct ReadFree {
  void operator()(struct archive* a) const { archive_read_free(a); }
};

// The members before the tree, read into memory.
struct Header {
  std::string entry;
  std::string manifest;
  std::string lock;
  std::string recipe;
  std::optional<std::string> signature;
  bool sealed = false;  ///< the archive's image is a sealed image file (image.erofs), not root/
};

Result<Header> read_header(const std::string& path) {
  auto fd = TRY(sys::open_path(path, O_RDONLY | O_NOCTTY));
  auto st = TRY(sys::fstat(fd.get()));
  if (!S_ISREG(st.st_mode)) return fail(Errc::invalid_argument, str(quote(path), " is not a regular file"));
  std::unique_ptr<struct archive, ReadFree> a(archive_read_new());
  if (!a) throw std::bad_alloc();
  // Decoded in-process only: support_filter_all would run external programs chosen by the
  // archive's first bytes.
  archive_read_support_filter_zstd(a.get());
  archive_read_support_filter_none(a.get());
  archive_read_support_format_tar(a.get());
  auto bad = [&](const std::string& why) { return fail(Errc::mismatch, str(quote(path), ": ", why)); };
  if (archive_read_open_fd(a.get(), fd.get(), 1u << 20) != ARCHIVE_OK) return bad(archive_error_string(a.get()));
  Header h;
  std::set<std::string> seen;
  archive_entry* e = nullptr;
  bool first = true;
  while (true) {
    const int rc = archive_read_next_header(a.get(), &e);
    if (rc == ARCHIVE_EOF) return bad("it holds no root/ (truncated, or not a chrootctl export)");
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) return bad(archive_error_string(a.get()));
    const char* raw = archive_entry_pathname(e);
    const std::string name = raw ? raw : "";
    if (name == "root" || name.starts_with("root/")) break;
    if (name == manifest::k_sealed_file) {
      h.sealed = true;
      break;
    }
    if (first && name != k_entry_member) return bad(str("not a chrootctl export (its first member is ", quote(name), ", not ", k_entry_member, ")"));
    first = false;
    std::string* dest = nullptr;
    std::optional<std::string> sig_slot;
    std::size_t limit = k_small_limit;
    if (name == k_entry_member) dest = &h.entry;
    else if (name == "manifest") dest = &h.manifest, limit = k_manifest_limit;
    else if (name == "lock") dest = &h.lock;
    else if (name == "recipe.toml") dest = &h.recipe;
    else if (name == "signature") dest = &sig_slot.emplace();
    else return bad(str("unexpected member ", quote(name), " before root/"));
    if (!seen.insert(name).second) return bad(str("it holds ", quote(name), " twice"));
    if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e))
      return bad(str("its member ", quote(name), " is not a regular file"));
    if (archive_entry_size(e) < 0 || static_cast<std::uint64_t>(archive_entry_size(e)) > limit)
      return bad(str("its member ", quote(name), " is larger than ", human_size(limit)));
    dest->resize(static_cast<std::size_t>(archive_entry_size(e)));
    std::size_t got = 0;
    while (got < dest->size()) {
      const la_ssize_t n = archive_read_data(a.get(), dest->data() + got, dest->size() - got);
      if (n < 0) return bad(str("reading ", name, ": ", archive_error_string(a.get())));
      if (n == 0) return bad(str("reading ", name, ": unexpected end of the archive"));
      got += static_cast<std::size_t>(n);
    }
    if (sig_slot) h.signature = std::move(*sig_slot);
  }
  for (const char* need : {k_entry_member, "manifest", "lock", "recipe.toml"})
    if (!seen.count(need)) return bad(str("it has no ", need, " before ", h.sealed ? manifest::k_sealed_file : "root/"));
  return h;
}

// A sealed image's file: read from the archive again (the members before it must be the ones
// judged) into STAGING/image.erofs, its size and SHA-256 checked as it is written, then its
// dm-verity hash tree checked against the root hash (libcryptsetup, in userspace). Nothing else
// is written before that.
Status unpack_sealed(const std::string& path, const Header& h, const manifest::Sealed& sealed, int staging_fd, const std::string& staging) {
  auto fd = TRY(sys::open_path(path, O_RDONLY | O_NOCTTY));
  std::unique_ptr<struct archive, ReadFree> a(archive_read_new());
  if (!a) throw std::bad_alloc();
  archive_read_support_filter_zstd(a.get());
  archive_read_support_filter_none(a.get());
  archive_read_support_format_tar(a.get());
  auto bad = [&](const std::string& why) { return fail(Errc::mismatch, str(quote(path), ": ", why)); };
  if (archive_read_open_fd(a.get(), fd.get(), 1u << 20) != ARCHIVE_OK) return bad(archive_error_string(a.get()));
  const std::map<std::string, std::string> judged{{k_entry_member, h.entry}, {"manifest", h.manifest}, {"lock", h.lock},
                                                  {"recipe.toml", h.recipe}, {"signature", h.signature.value_or("")}};
  archive_entry* e = nullptr;
  Sha256 sha;
  bool image_done = false;
  while (true) {
    const int rc = archive_read_next_header(a.get(), &e);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) return bad(archive_error_string(a.get()));
    const char* raw = archive_entry_pathname(e);
    const std::string name = raw ? raw : "";
    if (image_done) return bad(str("unexpected member ", quote(name), " after ", manifest::k_sealed_file));
    if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e)) return bad(str("its member ", quote(name), " is not a regular file"));
    if (name != manifest::k_sealed_file) {
      auto it = judged.find(name);
      if (it == judged.end() || (name == "signature" && !h.signature)) return bad(str("unexpected member ", quote(name)));
      if (static_cast<std::uint64_t>(archive_entry_size(e)) != it->second.size())
        return bad(str("it holds two different ", quote(name), " members"));
      std::string text(it->second.size(), '\0');
      std::size_t got = 0;
      while (got < text.size()) {
        const la_ssize_t n = archive_read_data(a.get(), text.data() + got, text.size() - got);
        if (n <= 0) return bad(str("reading ", name, ": ", n < 0 ? archive_error_string(a.get()) : "unexpected end of the archive"));
        got += static_cast<std::size_t>(n);
      }
      if (text != it->second) return bad(str("it holds two different ", quote(name), " members"));
      continue;
    }
    if (archive_entry_size(e) < 0 || static_cast<std::uint64_t>(archive_entry_size(e)) != sealed.size)
      return bad(str("its ", manifest::k_sealed_file, " has ", archive_entry_size(e), " bytes, not the ", sealed.size, " its manifest records"));
    Fd out = TRY(sys::open_at(staging_fd, manifest::k_sealed_file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
    std::vector<char> buf(1u << 20);
    std::uint64_t done = 0;
    while (true) {
      const la_ssize_t n = archive_read_data(a.get(), buf.data(), buf.size());
      if (n < 0) return bad(str("reading ", manifest::k_sealed_file, ": ", archive_error_string(a.get())));
      if (n == 0) break;
      sha.update(buf.data(), static_cast<std::size_t>(n));
      TRY(sys::write_all(out.get(), std::string_view(buf.data(), static_cast<std::size_t>(n))));
      done += static_cast<std::uint64_t>(n);
    }
    if (done != sealed.size) return bad(str("its ", manifest::k_sealed_file, " ended after ", done, " bytes (truncated)"));
    if (const std::string got = sha.hex_final(); got != sealed.sha256)
      return fail(Errc::mismatch, str("its ", manifest::k_sealed_file, " has SHA-256 ", got, ", not the ", sealed.sha256, " its manifest records"));
    TRY(sys::fsync(out.get()));
    image_done = true;
  }
  if (!image_done) return bad(str("it holds no ", manifest::k_sealed_file, " (truncated)"));
  const std::string file = staging + "/" + manifest::k_sealed_file;
  TRY(with_context(verity::verify(file, sealed), str("checking ", manifest::k_sealed_file, " from ", path)));
  return {};
}

// A staging directory STORE/.staging/import.XXXXXX, made and flock-held the way the builder
// makes its own (docs/recipes.md), so the builder's cleaner never removes a live import and
// removes one that was killed. Removed on destruction unless released.
struct Staging {
  std::string path;
  Fd fd;
  Staging() = default;
  Staging(Staging&&) = default;
  ~Staging() {
    if (!path.empty()) (void)sys::remove_tree(path);
  }
};

Status ensure_private_dir(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) return fail_errno(str("mkdir(", quote(path), ", 0700)"), errno);
  auto st = TRY(sys::lstat_path(path));
  if (!S_ISDIR(st.st_mode)) return fail(Errc::exists, str(quote(path), " exists and is not a directory"));
  return {};
}

Result<Staging> make_staging(const std::string& store) {
  TRY(ensure_private_dir(store + "/.staging"));
  TRY(ensure_private_dir(store + "/.locks"));
  auto guard = TRY(LockFile::acquire(store + "/.locks/staging.lock"));
  std::string tmpl = str(store, "/.staging/import.XXXXXX");
  if (::mkdtemp(tmpl.data()) == nullptr) return fail_errno(str("mkdtemp(", quote(tmpl), ")"), errno);
  Staging s;
  s.path = tmpl;
  s.fd = TRY(sys::open_path(tmpl, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  TRY(sys::flock(s.fd.get(), true, true));
  return s;
}

// What the unpacking produced at the top of the staging directory must be exactly the members
// read before, plus root/; the small files are then made root's and read-only to others.
Status check_top_level(const Staging& st, const Header& h) {
  std::set<std::string> expected{k_entry_member, "manifest", "lock", "recipe.toml", "root"};
  if (h.signature) expected.insert("signature");
  auto names = TRY(sys::read_dir(st.fd.get()));
  for (const auto& d : names)
    if (!expected.count(d.name)) return fail(Errc::mismatch, str("the archive unpacked an unexpected ", quote(d.name), " beside root/"));
  if (names.size() != expected.size()) return fail(Errc::mismatch, "the archive did not unpack all of its members");
  auto root = TRY(sys::lstat_at(st.fd.get(), "root"));
  if (!S_ISDIR(root.st_mode)) return fail(Errc::mismatch, "root/ in the archive is not a directory");
  auto same = [&](const char* name, const std::string& content) -> Status {
    auto fd = TRY(sys::open_at(st.fd.get(), name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY));
    auto fst = TRY(sys::fstat(fd.get()));
    if (!S_ISREG(fst.st_mode)) return fail(Errc::mismatch, str(quote(name), " in the archive is not a regular file"));
    auto text = TRY(sys::read_fd(fd.get(), k_manifest_limit));
    if (text != content) return fail(Errc::mismatch, str("the archive holds two different ", quote(name), " members"));
    if (::fchown(fd.get(), 0, 0) != 0) return fail_errno(str("fchown(", quote(st.path + "/" + name), ", 0, 0)"), errno);
    if (::fchmod(fd.get(), 0644) != 0) return fail_errno(str("fchmod(", quote(st.path + "/" + name), ", 0644)"), errno);
    return {};
  };
  TRY(same("manifest", h.manifest));
  TRY(same("lock", h.lock));
  TRY(same("recipe.toml", h.recipe));
  if (h.signature) TRY(same("signature", *h.signature));
  TRY(same(k_entry_member, h.entry));
  TRY(sys::unlink_at(st.fd.get(), k_entry_member));
  if (::fchmod(st.fd.get(), 0755) != 0) return fail_errno(str("fchmod(", quote(st.path), ", 0755)"), errno);
  return {};
}

}  // namespace

Result<ImportResult> import_image(const Settings& given, const std::string& archive, const ImportOptions& o) {
  if (!o.unpack) return fail(Errc::internal, "import_image needs an unpacker");
  auto status = [&](const std::string& m) {
    if (o.status) o.status(m);
  };
  auto refuse = [&](Error e) { return fail(std::move(e).add_context(str("refusing to import ", quote(archive)))); };
  ImportResult out;

  // 1. What the archive claims, and whether this host may use it, before anything is written.
  auto h = read_header(archive);
  if (!h) return refuse(h.error());
  auto entry = parse_export_entry(h->entry, archive + ":" + k_entry_member);
  if (!entry) return refuse(entry.error());
  auto m = manifest::parse(h->manifest, archive + ":manifest");
  if (!m) return refuse(m.error());
  if (m->sealed.has_value() != h->sealed)
    return refuse(Error(Errc::mismatch, h->sealed ? str("it holds ", manifest::k_sealed_file, " but its manifest describes a directory image")
                                                  : "its manifest describes a sealed image but it holds root/"));
  const std::string digest = manifest::digest(*m);
  if (digest != entry->digest)
    return refuse(Error(Errc::mismatch, str("its manifest has tree digest ", digest, ", not the ", entry->digest, " its entry names")));
  for (const auto& e : m->entries)
    if (auto p = detail::check_entry_path(e.path); !p) return refuse(p.error());
  auto recipe = detail::recipe_name_of(h->recipe, archive + ":recipe.toml");
  if (!recipe) return refuse(recipe.error());
  if (*recipe != entry->recipe)
    return refuse(Error(Errc::mismatch, str("its recipe.toml names ", quote(*recipe), ", not the ", quote(entry->recipe), " its entry names")));
  JudgeInput in;
  in.settings = &given;
  in.signature_text = h->signature;
  in.signature_label = archive + ":signature";
  in.unsigned_ok = o.allow_unsigned && !given.require_signature;
  const Statement expected = with_sealed(Statement{entry->recipe, entry->build_id, digest, Sha256::hex(h->lock), {}, {}}, m->sealed);
  in.expected = [&]() -> Result<Statement> { return expected; };
  const auto verdict = judge_signature(in);
  if (!verdict.acceptable) {
    std::string why = verdict.reason;
    if (verdict.state == "unsigned") {
      if (given.require_signature)
        why += str(verdict.key_id.empty() ? " and" : ";", " require_signature is set", given.config_file.empty() ? std::string() : str(" in ", given.config_file));
      else
        why += " (import it with --allow-unsigned to accept it unsigned)";
    }
    return refuse(Error(Errc::permission, why));
  }
  out.signature_state = verdict.state;
  out.signer = verdict.signer;
  if (verdict.state != "signed") out.signature_note = verdict.reason;
  out.name = o.as.empty() ? entry->name : o.as;
  if (auto n = check_name(out.name); !n) return refuse(n.error());
  status(str(verdict.state == "signed" ? str("signed by key ", verdict.signer) : str("unsigned: ", verdict.reason), "; build ", entry->build_id,
             " of ", entry->recipe, ", ", m->entries.size(), " entries"));

  // 2. Where it goes. The same build already in the store is verified and registered as is.
  TRY(with_context(sys::mkdir_p(given.store, 0755), str("creating the store ", given.store)));
  Settings s = given;
  s.store = TRY(canonical_path(given.store));
  TRY(with_context(check_owned_dir(s.store, ::geteuid()), "refusing to import into the store"));
  {
    auto c = TRY(load(s));
    if (const Entry* owner = c.alias_target(out.name))
      return refuse(Error(Errc::exists, str(quote(out.name), " is an alias of ", quote(owner->name), "; remove the alias first (chrootctl remove ",
                                            out.name, ")")));
  }
  const std::string parent = str(s.store, "/", entry->recipe);
  const std::string dest = str(parent, "/", entry->build_id);
  auto register_existing = [&]() -> Result<ImportResult> {
    auto existing = manifest::read_digest(dest + "/manifest");
    if (!existing) return refuse(std::move(existing.error()).add_context(str(quote(dest), " is already in the store")));
    if (*existing != digest)
      return refuse(Error(Errc::exists, str(quote(dest), " is already in the store with tree digest ", *existing, ", not ", digest)));
    status(str("build ", entry->build_id, " is already in the store: verifying ", dest));
    AddOptions ao;
    ao.threads = o.threads;
    ao.progress = o.progress;
    ao.now = o.now;
    out.added = TRY(add(s, out.name, dest, ao));
    out.image = out.added.entry.current.image;
    out.signer = out.added.entry.current.signer;
    out.signature_state = out.signer.empty() ? "unsigned" : "signed";
    out.already_present = true;
    return out;
  };
  if (sys::lstat_path(dest)) return register_existing();

  if (m->sealed) {
    // 3. The image file alone first, checked (SHA-256 and root hash) before anything else is
    //    written; then the small files beside it; then into place and registered.
    auto staging = TRY(make_staging(s.store));
    status(str("unpacking and checking ", manifest::k_sealed_file, " (", human_size(m->sealed->size), ")"));
    const std::int64_t started = o.now ? o.now : sys::now_unix();
    if (auto u = unpack_sealed(archive, *h, *m->sealed, staging.fd.get(), staging.path); !u) return refuse(u.error());
    const auto staged = TRY(sys::lstat_at(staging.fd.get(), manifest::k_sealed_file));
    for (const auto& [name, text] : std::vector<std::pair<std::string, std::optional<std::string>>>{
             {"manifest", h->manifest}, {"lock", h->lock}, {"recipe.toml", h->recipe}, {"signature", h->signature}}) {
      if (!text) continue;
      Fd f = TRY(sys::open_at(staging.fd.get(), name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
      TRY(sys::write_all(f.get(), *text));
    }
    if (::fchmod(staging.fd.get(), 0755) != 0) return fail_errno(str("fchmod(", quote(staging.path), ", 0755)"), errno);
    if (::mkdir(parent.c_str(), 0755) != 0 && errno != EEXIST) return fail_errno(str("mkdir(", quote(parent), ", 0755)"), errno);
    auto pfd = TRY(sys::open_path(parent, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
    if (::syncfs(staging.fd.get()) != 0) return fail_errno(str("syncfs(", quote(staging.path), ")"), errno);
    auto moved = sys::rename_at(AT_FDCWD, staging.path, pfd.get(), entry->build_id, RENAME_NOREPLACE);
    if (!moved) {
      if (moved.error().sys_errno() == EEXIST) return register_existing();
      return fail(moved.error());
    }
    staging.path = dest;
    TRY(sys::fsync(pfd.get()));
    const std::string file = str(dest, "/", manifest::k_sealed_file);
    auto identity = check_sealed_file(file);
    if (!identity) return refuse(identity.error());
    if (identity->dev != static_cast<std::uint64_t>(staged.st_dev) || identity->ino != static_cast<std::uint64_t>(staged.st_ino))
      return refuse(Error(Errc::mismatch, str(quote(file), " is not the file that was checked")));
    Version v;
    v.image = dest;
    v.root = file;
    v.digest = digest;
    v.build_id = entry->build_id;
    v.recipe = entry->recipe;
    v.signer = verdict.signer;
    v.added_at = started;
    v.verified_at = started;
    v.identity = *identity;
    v.sealed = m->sealed;
    out.added.entries = m->entries.size();
    if (verdict.state != "signed") out.added.notes.push_back(str("registered unsigned: ", verdict.reason));
    TRY(detail::record_version(s, out.name, v, out.added));
    staging.path.clear();
    out.image = dest;
    return out;
  }

  // 3. Unpack into a staging directory, with the builder's protections.
  auto staging = TRY(make_staging(s.store));
  status(str("unpacking into ", staging.path));
  auto unpacked = o.unpack(archive, staging.path);
  if (!unpacked) return refuse(unpacked.error());
  out.unpacked = *unpacked;
  if (auto t = check_top_level(staging, *h); !t) return refuse(t.error());

  // 4. Every entry against the manifest the signature covers.
  const std::string root = staging.path + "/root";
  auto before = TRY(sys::lstat_path(root));
  status(str("verifying ", m->entries.size(), " entries"));
  manifest::CreateOptions copts;
  copts.threads = o.threads;
  copts.progress = o.progress;
  manifest::Manifest fresh;
  const std::int64_t started = o.now ? o.now : sys::now_unix();
  auto d = manifest::check(root, *m, copts, &fresh);
  if (!d) return refuse(d.error());
  if (d->failed())
    return refuse(Error(Errc::mismatch, str("its tree does not match its manifest (", detail::count_differences(*d), "):\n", detail::listing(*d))));
  TRY(detail::write_stat_record(staging.path, fresh, digest));

  // 5. Into place, never over anything, then registered.
  if (::mkdir(parent.c_str(), 0755) != 0 && errno != EEXIST) return fail_errno(str("mkdir(", quote(parent), ", 0755)"), errno);
  auto pfd = TRY(sys::open_path(parent, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  if (::syncfs(staging.fd.get()) != 0) return fail_errno(str("syncfs(", quote(staging.path), ")"), errno);
  auto moved = sys::rename_at(AT_FDCWD, staging.path, pfd.get(), entry->build_id, RENAME_NOREPLACE);
  if (!moved) {
    if (moved.error().sys_errno() == EEXIST) return register_existing();  // imported by someone else meanwhile
    return fail(moved.error());
  }
  staging.path = dest;  // removed again if registering fails
  TRY(sys::fsync(pfd.get()));
  auto identity = check_root(dest + "/root");
  if (!identity) return refuse(identity.error());
  if (identity->dev != static_cast<std::uint64_t>(before.st_dev) || identity->ino != static_cast<std::uint64_t>(before.st_ino))
    return refuse(Error(Errc::mismatch, str(quote(dest + "/root"), " is not the directory that was verified")));

  Version v;
  v.image = dest;
  v.root = dest + "/root";
  v.digest = digest;
  v.build_id = entry->build_id;
  v.recipe = entry->recipe;
  v.signer = verdict.signer;
  v.added_at = started;
  v.verified_at = started;
  v.identity = *identity;
  out.added.entries = m->entries.size();
  if (verdict.state != "signed") out.added.notes.push_back(str("registered unsigned: ", verdict.reason));
  TRY(detail::record_version(s, out.name, v, out.added));
  staging.path.clear();
  out.image = dest;
  return out;
}

}  // namespace chrootctl::catalogue
