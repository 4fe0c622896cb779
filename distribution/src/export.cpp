// chrootctl export: pack a registered image, checked entry by entry, into a tar.zst.
#include "chrootctl/distribution/export.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "chrootctl/catalogue/safety.hpp"
#include "chrootctl/catalogue/sealed.hpp"
#include "chrootctl/catalogue/sign.hpp"
#include "chrootctl/catalogue/store.hpp"
#include "chrootctl/common/sha256.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/common/toml.hpp"
#include "chrootctl/common/tree_path.hpp"
#include "export_tree.hpp"
#include "image_record.hpp"

namespace chrootctl::distribution {

// What this file takes from the catalogue.
using catalogue::catalogue_path;
using catalogue::check_trusted_dir;
using catalogue::check_version_root;
using catalogue::Entry;
using catalogue::invalid_name;
using catalogue::load;
using catalogue::parse_signature;
using catalogue::read_image_signature;
using catalogue::Statement;
using catalogue::valid_word;
using catalogue::Version;
using catalogue::with_sealed;

namespace {

constexpr std::int64_t k_export_format = 1;

struct WriteFree {
  void operator()(struct archive* a) const { archive_write_free(a); }
};
struct EntryFree {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};
using EntryPtr = std::unique_ptr<archive_entry, EntryFree>;

// The temporary archive beside the output, removed unless it was renamed into place.
struct TempOutput {
  std::string path;
  Fd fd;
  ~TempOutput() {
    if (!path.empty()) (void)sys::unlink_at(AT_FDCWD, path);
  }
};

class Writer {
 public:
  Writer(struct archive* a, std::string label) : m_a(a), m_label(std::move(label)) {}

  Status header(archive_entry* e) {
    const int rc = archive_write_header(m_a, e);
    // ARCHIVE_WARN: a name that is not UTF-8 is stored as raw bytes (hdrcharset=BINARY).
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) return error(str("writing the header of ", quote(archive_entry_pathname(e))));
    return {};
  }
  Status data(const char* p, std::size_t n) {
    while (n > 0) {
      const la_ssize_t w = archive_write_data(m_a, p, n);
      if (w <= 0) return error("writing data");
      p += w;
      n -= static_cast<std::size_t>(w);
    }
    return {};
  }
  Status member(const std::string& name, const std::string& content, std::int64_t mtime) {
    EntryPtr e(archive_entry_new());
    archive_entry_set_pathname(e.get(), name.c_str());
    archive_entry_set_filetype(e.get(), AE_IFREG);
    archive_entry_set_perm(e.get(), 0644);
    archive_entry_set_uid(e.get(), 0);
    archive_entry_set_gid(e.get(), 0);
    archive_entry_set_size(e.get(), static_cast<la_int64_t>(content.size()));
    archive_entry_set_mtime(e.get(), mtime, 0);
    TRY(header(e.get()));
    return data(content.data(), content.size());
  }
  tl::unexpected<Error> error(const std::string& what) {
    const int err = archive_errno(m_a);
    return fail(Error(Errc::io, str(what, " to ", quote(m_label), ": ", archive_error_string(m_a) ? archive_error_string(m_a) : "unknown error"),
                      err > 0 ? err : 0));
  }

 private:
  struct archive* m_a;
  std::string m_label;
};

// One tree entry as a tar member: metadata from the manifest line, which the tree was just
// compared with.
EntryPtr header_of(const manifest::Entry& e) {
  EntryPtr a(archive_entry_new());
  const std::string name = e.path == "/" ? std::string("root") : "root" + e.path;
  archive_entry_copy_pathname(a.get(), name.c_str());
  archive_entry_set_perm(a.get(), e.mode);
  archive_entry_set_uid(a.get(), e.uid);
  archive_entry_set_gid(a.get(), e.gid);
  archive_entry_set_mtime(a.get(), e.mtime_sec, e.mtime_nsec);
  for (const auto& x : e.xattrs) archive_entry_xattr_add_entry(a.get(), x.name.c_str(), x.value.data(), x.value.size());
  switch (e.type) {
    case manifest::Type::file:
      archive_entry_set_filetype(a.get(), AE_IFREG);
      archive_entry_set_size(a.get(), static_cast<la_int64_t>(e.size));
      break;
    case manifest::Type::dir:
      archive_entry_set_filetype(a.get(), AE_IFDIR);
      break;
    case manifest::Type::symlink:
      archive_entry_set_filetype(a.get(), AE_IFLNK);
      archive_entry_copy_symlink(a.get(), e.target.c_str());
      break;
    case manifest::Type::chardev:
    case manifest::Type::blockdev:
      archive_entry_set_filetype(a.get(), e.type == manifest::Type::chardev ? AE_IFCHR : AE_IFBLK);
      archive_entry_set_rdevmajor(a.get(), e.rdev_major);
      archive_entry_set_rdevminor(a.get(), e.rdev_minor);
      break;
    case manifest::Type::fifo:
      archive_entry_set_filetype(a.get(), AE_IFIFO);
      break;
    case manifest::Type::socket:
      break;  // refused before packing starts
  }
  return a;
}

// The tree of a directory image, entry by entry in manifest order, each compared with its
// manifest line as it is packed.
Status export_tree(Writer& w, const manifest::Manifest& m, const Version& v, const std::string& name, ExportResult& out,
                   const ExportOptions& options) {
  auto reader = TRY(detail::TreeReader::open(v.root));
  std::map<std::string, std::pair<dev_t, ino_t>> leaders;  // hard-link groups: first path -> inode
  for (const auto& e : m.entries) {
    auto hdr = header_of(e);
    auto step = [&]() -> Status {
      if (e.path == "/") {
        TRY(reader.check_root_entry(e));
        return w.header(hdr.get());
      }
      if (e.type != manifest::Type::file) {
        TRY(reader.check_other(e));
        return w.header(hdr.get());
      }
      auto fd = TRY(reader.open_file(e));
      auto st = TRY(sys::fstat(fd.get()));
      if (!e.link.empty() && e.link != e.path) {
        auto it = leaders.find(e.link);
        if (it == leaders.end() || it->second != std::make_pair(st.st_dev, st.st_ino))
          return fail(Errc::mismatch, str(quote(e.path), " changed since it was verified: it is no longer a hard link to ", quote(e.link)));
        archive_entry_copy_hardlink(hdr.get(), ("root" + e.link).c_str());
        archive_entry_set_size(hdr.get(), 0);
        return w.header(hdr.get());
      }
      if (!e.link.empty()) leaders[e.path] = {st.st_dev, st.st_ino};
      TRY(w.header(hdr.get()));
      TRY(detail::stream_checked(fd.get(), e, v.root + e.path, [&](const char* p, std::size_t n) { return w.data(p, n); }));
      out.bytes += e.size;
      return {};
    };
    if (auto r = step(); !r) return fail(std::move(r.error()).add_context(str("exporting ", quote(name), " (run 'chrootctl verify ", name, "')")));
    ++out.entries;
    if (options.progress && out.entries % 256 == 0) options.progress(out.entries, out.bytes);
  }
  return {};
}

}  // namespace

std::string render_export_entry(const ExportEntry& e) {
  return TomlWriter()
      .comment("chrootctl image export (docs/signing.md)")
      .integer("format", k_export_format)
      .string("name", e.name)
      .string("recipe", e.recipe)
      .string("build_id", e.build_id)
      .string("digest", e.digest)
      .optional_string("signer", e.signer)
      .strings("aliases", e.aliases)
      .integer("exported_at", e.exported_at)
      .text();
}

Result<ExportEntry> parse_export_entry(std::string text, const std::string& label) {
  auto doc = TRY(parse_toml(std::move(text), label));
  Diagnostics diag(doc);
  TableReader r(diag, doc.table);
  auto rec = detail::read_image_record(r, doc.table, "export", k_export_format);
  ExportEntry e{std::move(rec.name), std::move(rec.recipe), std::move(rec.build_id), std::move(rec.digest), std::move(rec.signer), {}, 0};
  if (auto v = r.string_array("aliases")) e.aliases = *v;
  if (auto v = r.integer("exported_at", true)) e.exported_at = *v;
  r.finish();
  TRY(diag.result());
  return e;
}

Result<ExportResult> export_image(const Settings& s, const std::string& name, const std::string& output, const ExportOptions& options) {
  auto c = TRY(load(s));
  const Entry* entry = c.find_any(name);
  if (!entry) return fail(c.not_found(name, catalogue_path(s)));
  const Version& v = entry->current;
  ExportResult out;
  out.name = entry->name;
  out.image = v.image;
  out.digest = v.digest;
  auto ctx = [&](Error e) { return fail(std::move(e).add_context(str("refusing to export ", quote(name)))); };
  if (v.root != (v.sealed ? str(v.image, "/", manifest::k_sealed_file) : v.image + "/root"))
    return ctx(Error(Errc::invalid_argument, str("its root ", quote(v.root), " is not inside its build directory (only builds are exported)")));
  if (auto d = check_trusted_dir(v.image, "build directory"); !d) return ctx(d.error());
  if (auto r = check_version_root(v); !r) return ctx(r.error());
  auto m = catalogue::load_trusted_manifest(v.image);
  if (!m) return ctx(m.error());
  const std::string manifest_text = manifest::serialize(*m);
  if (manifest::digest(*m) != v.digest)
    return ctx(Error(Errc::mismatch,
                     str(v.image, "/manifest has tree digest ", manifest::digest(*m), ", not the ", v.digest, " recorded in the catalogue")));
  auto lock = catalogue::read_required_file(v.image + "/lock");
  if (!lock) return ctx(lock.error());
  auto recipe_text = catalogue::read_required_file(v.image + "/recipe.toml");
  if (!recipe_text) return ctx(recipe_text.error());
  auto recipe = catalogue::recipe_name_of(*recipe_text, v.image + "/recipe.toml");
  if (!recipe) return ctx(recipe.error());
  if (!valid_word(*recipe) || !valid_word(v.build_id))
    return ctx(Error(Errc::invalid_argument, str("its recipe name ", quote(*recipe), " or build id ", quote(v.build_id), " cannot be exported")));
  auto sig_text = read_image_signature(v.image);
  if (!sig_text) return ctx(sig_text.error());
  if (*sig_text) {
    // The signature travels with the image; make sure it is the one for this build.
    auto sig = parse_signature(**sig_text, v.image + "/signature");
    if (!sig) return ctx(sig.error());
    const Statement expected =
        with_sealed(Statement{*recipe, v.build_id, m->stripped_from.empty() ? v.digest : m->stripped_from, Sha256::hex(*lock), {}, {}}, m->sealed);
    if (!(sig->statement == expected))
      return ctx(Error(Errc::mismatch, str(v.image, "/signature is not for this build (it names build ", sig->statement.build_id, ", tree digest ",
                                           sig->statement.tree_digest, ")")));
    out.signer = sig->key_id;
  }
  if (m->sealed != v.sealed) return ctx(Error(Errc::mismatch, str(v.image, "/manifest does not describe the image file recorded in the catalogue")));
  for (const auto& e : m->entries) {
    if (v.sealed) break;  // the image file travels as is, whatever its tree holds
    if (auto p = check_manifest_path(e.path); !p) return ctx(p.error());
    if (e.type == manifest::Type::socket) return ctx(Error(Errc::unsupported, str(quote(e.path), " is a socket, which an archive cannot hold")));
    for (const auto& x : e.xattrs)
      if (detail::unrestorable_xattr(x.name))
        return ctx(Error(Errc::unsupported, str(quote(e.path), " has the extended attribute ", quote(x.name),
                                                ", which import does not restore (trusted.* and system.* are never unpacked)")));
  }
  if (m->entries.empty() || m->entries.front().path != "/") return ctx(Error(Errc::parse, "the manifest has no root entry"));

  const std::int64_t now = options.now ? options.now : sys::now_unix();
  ExportEntry ee{entry->name, *recipe, v.build_id, v.digest, out.signer, entry->aliases, now};

  // Written beside the output and renamed over it when complete: a failed or killed export
  // leaves no partial archive under the name.
  const std::string dir = parent_dir(output);
  const std::string base = base_name(output);
  TempOutput tmp;
  {
    std::string tmpl = str(dir, "/.", base, ".XXXXXX");
    const int fd = ::mkostemp(tmpl.data(), O_CLOEXEC);
    if (fd < 0) return fail_errno(str("mkostemp(", quote(tmpl), ")"), errno);
    tmp.path = tmpl;
    tmp.fd.reset(fd);
    if (::fchmod(fd, 0644) != 0) return fail_errno(str("fchmod(", quote(tmpl), ", 0644)"), errno);
  }
  std::unique_ptr<struct archive, WriteFree> a(archive_write_new());
  if (!a) throw std::bad_alloc();
  Writer w(a.get(), output);
  if (archive_write_set_format_pax_restricted(a.get()) != ARCHIVE_OK || archive_write_add_filter_zstd(a.get()) != ARCHIVE_OK)
    return w.error("setting up pax and zstd");
  if (archive_write_set_filter_option(a.get(), "zstd", "compression-level", std::to_string(options.level).c_str()) != ARCHIVE_OK)
    return w.error("setting the zstd level");
  const unsigned threads = options.threads ? options.threads : std::max(1u, std::thread::hardware_concurrency());
  (void)archive_write_set_filter_option(a.get(), "zstd", "threads", std::to_string(threads).c_str());  // older libarchive: one thread
  archive_write_set_bytes_in_last_block(a.get(), 1);
  if (archive_write_open_fd(a.get(), tmp.fd.get()) != ARCHIVE_OK) return w.error("opening");

  TRY(w.member("chrootctl-export.toml", render_export_entry(ee), now));
  TRY(w.member("manifest", manifest_text, now));
  TRY(w.member("lock", *lock, now));
  TRY(w.member("recipe.toml", *recipe_text, now));
  if (*sig_text) TRY(w.member("signature", **sig_text, now));

  if (v.sealed) {
    // The image file as is, its SHA-256 checked as it is read: a file changed since it was
    // verified is refused, never exported.
    auto fd = TRY(with_context(sys::open_path(v.root, O_RDONLY | O_NOFOLLOW | O_NOCTTY), str("exporting ", quote(name))));
    auto st = TRY(sys::fstat(fd.get()));
    if (static_cast<std::uint64_t>(st.st_size) != v.sealed->size)
      return ctx(Error(Errc::mismatch,
                       str(v.root, " has ", st.st_size, " bytes, not the recorded ", v.sealed->size, " (run 'chrootctl verify ", entry->name, "')")));
    EntryPtr e(archive_entry_new());
    archive_entry_set_pathname(e.get(), manifest::k_sealed_file);
    archive_entry_set_filetype(e.get(), AE_IFREG);
    archive_entry_set_perm(e.get(), 0644);
    archive_entry_set_uid(e.get(), 0);
    archive_entry_set_gid(e.get(), 0);
    archive_entry_set_size(e.get(), static_cast<la_int64_t>(v.sealed->size));
    archive_entry_set_mtime(e.get(), now, 0);
    TRY(w.header(e.get()));
    Sha256 h;
    std::vector<char> buf(1u << 20);
    std::uint64_t done = 0;
    while (done < v.sealed->size) {
      const ssize_t n = sys::retry_eintr([&] { return ::read(fd.get(), buf.data(), buf.size()); });
      if (n < 0) return fail_errno(str("read(", quote(v.root), ")"), errno);
      if (n == 0) return ctx(Error(Errc::mismatch, str(v.root, " ended after ", done, " bytes")));
      const auto len = std::min<std::uint64_t>(static_cast<std::uint64_t>(n), v.sealed->size - done);
      h.update(buf.data(), len);
      TRY(w.data(buf.data(), len));
      done += len;
      if (options.progress) options.progress(1, done);
    }
    if (const std::string got = h.hex_final(); got != v.sealed->sha256)
      return ctx(Error(Errc::mismatch,
                       str(v.root, " has SHA-256 ", got, ", not the recorded ", v.sealed->sha256, " (run 'chrootctl verify ", entry->name, "')")));
    out.entries = m->entries.size();
    out.bytes = done;
  } else {
    TRY(export_tree(w, *m, v, entry->name, out, options));
  }
  if (archive_write_close(a.get()) != ARCHIVE_OK) return w.error("finishing");
  a.reset();
  TRY(sys::fsync(tmp.fd.get()));
  auto st = TRY(sys::fstat(tmp.fd.get()));
  out.archive_size = static_cast<std::uint64_t>(st.st_size);
  TRY(sys::rename_at(AT_FDCWD, tmp.path, AT_FDCWD, output));
  tmp.path.clear();
  (void)sys::fsync_path(dir);
  out.output = output;
  if (options.progress) options.progress(out.entries, out.bytes);
  return out;
}

}  // namespace chrootctl::distribution
