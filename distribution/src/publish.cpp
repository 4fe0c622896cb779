// chrootctl publish: a registered image as DIR/NAME/BUILD-ID plus DIR/catalogue.d/NAME.toml,
// sharing identical files with earlier published builds through hard links.
#include "chrootctl/distribution/publish.hpp"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "chrootctl/catalogue/access.hpp"
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
#include "chrootctl/common/tree_writer.hpp"
#include "export_tree.hpp"
#include "image_record.hpp"

namespace chrootctl::distribution {

// What this file takes from the catalogue.
using catalogue::canonical_path;
using catalogue::catalogue_path;
using catalogue::check_owned_dir;
using catalogue::check_trusted_dir;
using catalogue::check_version_root;
using catalogue::Entry;
using catalogue::invalid_name;
using catalogue::list_privileged;
using catalogue::load;
using catalogue::parse_signature;
using catalogue::privileged_entries;
using catalogue::read_image_signature;
using catalogue::Statement;
using catalogue::valid_word;
using catalogue::Version;
using catalogue::with_sealed;

namespace {

constexpr std::int64_t k_fragment_format = 1;
constexpr const char* k_fragments = "catalogue.d";

// What TreeWriter applies to the copy of a manifest entry.
EntryMeta meta_of(const manifest::Entry& e) { return {e.mode, e.uid, e.gid, e.mtime_sec, e.mtime_nsec, e.xattrs}; }

Status make_node(TreeWriter& tree, const manifest::Entry& e) {
  switch (e.type) {
    case manifest::Type::chardev:
      return tree.make_node(e.path, S_IFCHR, makedev(e.rdev_major, e.rdev_minor), meta_of(e));
    case manifest::Type::blockdev:
      return tree.make_node(e.path, S_IFBLK, makedev(e.rdev_major, e.rdev_minor), meta_of(e));
    case manifest::Type::fifo:
      return tree.make_node(e.path, S_IFIFO, 0, meta_of(e));
    default:
      return fail(Errc::unsupported, str(quote(e.path), " is a ", manifest::type_name(e.type), ", which cannot be copied"));
  }
}

// Files that may share one inode: same contents, size, mode, owner and xattrs.
std::string share_key(const manifest::Entry& e) {
  std::string k = str(e.sha256, " ", e.size, " ", e.mode, " ", e.uid, " ", e.gid);
  for (const auto& x : e.xattrs) k += str(" ", escape_bytes(x.name), "=", base64_encode(x.value));
  return k;
}

// The regular files of the builds published in DIR so far, by share_key.
struct Published {
  struct Build {
    std::string root;
    manifest::Manifest m;
    std::unique_ptr<detail::TreeReader> reader;  // opened on first use
  };
  std::vector<Build> builds;
  std::map<std::string, std::vector<std::pair<std::size_t, std::size_t>>> files;  // key -> (build, entry)
};

Result<Published> index_published(const std::string& dir) {
  Published p;
  auto dfd = TRY(sys::open_dir(dir));
  for (const auto& n : TRY(sys::read_dir(dfd.get(), false))) {
    if (n.name.empty() || n.name[0] == '.' || n.name == k_fragments) continue;
    auto nfd = sys::open_dir_at(dfd.get(), n.name);
    if (!nfd) continue;
    auto builds = sys::read_dir(nfd->get(), false);
    if (!builds) continue;
    for (const auto& b : *builds) {
      if (b.name.empty() || b.name[0] == '.') continue;
      const std::string bdir = str(dir, "/", n.name, "/", b.name);
      auto text = catalogue::read_trusted_file(bdir + "/manifest", 512u << 20);
      if (!text || !*text) continue;  // not a published build, or not one to trust: never linked to
      auto m = manifest::parse(**text, bdir + "/manifest");
      if (!m || m->sealed) continue;  // a sealed build has no tree to link to
      Published::Build build{bdir + "/root", std::move(*m), nullptr};
      const std::size_t index = p.builds.size();
      for (std::size_t i = 0; i < build.m.entries.size(); ++i) {
        const auto& e = build.m.entries[i];
        if (e.type == manifest::Type::file && check_manifest_path(e.path)) p.files[share_key(e)].emplace_back(index, i);
      }
      p.builds.push_back(std::move(build));
    }
  }
  return p;
}

std::string published_dir_name(const std::string& name) { return str(".publish-", name, "."); }

}  // namespace

std::string render_fragment(const Fragment& f) {
  return TomlWriter()
      .comment(str("chrootctl published image (docs/signing.md): chrootctl add --from DIR ", f.name))
      .integer("format", k_fragment_format)
      .string("name", f.name)
      .string("image", f.image)
      .string("build_id", f.build_id)
      .string("recipe", f.recipe)
      .string("digest", f.digest)
      .optional_string("signer", f.signer)
      .integer("published_at", f.published_at)
      .text();
}

Result<Fragment> parse_fragment(std::string text, const std::string& label) {
  auto doc = TRY(parse_toml(std::move(text), label));
  Diagnostics diag(doc);
  TableReader r(diag, doc.table);
  auto rec = detail::read_image_record(r, doc.table, "fragment", k_fragment_format);
  Fragment f{std::move(rec.name), {}, std::move(rec.build_id), std::move(rec.recipe), std::move(rec.digest), std::move(rec.signer), 0};
  if (auto v = r.string("image", true)) {
    f.image = *v;
    // Only DIR/NAME/BUILD-ID: a fragment cannot point anywhere else.
    if (f.image != str(f.name, "/", f.build_id)) diag.error(*doc.table.get("image"), str("'image' must be \"", f.name, "/", f.build_id, "\""));
  }
  if (auto v = r.integer("published_at", true)) f.published_at = *v;
  r.finish();
  TRY(diag.result());
  return f;
}

namespace {

// The publish directory, made where it is missing one component at a time, each opened with
// O_NOFOLLOW: a symlink anywhere on the way is refused, not followed. A user could plant one in
// a directory everyone may write (/tmp, a scratch area) and send root's writes elsewhere, and
// what check_owned_dir judges afterwards is the place the writes went. A relative path starts
// at the real working directory. Returns the directory's path, which has no symlink in it.
Result<std::string> make_publish_dir(const std::string& dir) {
  if (dir.empty()) return fail(Errc::invalid_argument, "empty publish directory");
  std::string base = dir[0] == '/' ? std::string() : TRY(sys::realpath("."));
  if (base == "/") base.clear();
  Fd root = TRY(sys::open_path(base.empty() ? "/" : base, O_RDONLY | O_DIRECTORY));
  const auto make = [](int parent, const std::string& name, const std::string& label, bool) {
    return with_context(sys::mkdir_at(parent, name, 0755, true), str("creating ", quote(label)));
  };
  TRY(sys::open_dirs_below(root.get(), base, dir, make, "publish to the real directory, with no symlink on the way"));
  std::string canon = base;
  for (const auto& part : split(dir, '/'))
    if (!part.empty() && part != ".") canon += "/" + part;
  return canon.empty() ? std::string("/") : canon;
}

}  // namespace

Result<PublishResult> publish(const Settings& s, const std::string& name, const std::string& dir, const PublishOptions& o) {
  auto status = [&](const std::string& msg) {
    if (o.status) o.status(msg);
  };
  auto c = TRY(load(s));
  const Entry* entry = c.find_any(name);
  if (!entry) return fail(c.not_found(name, catalogue_path(s)));
  const Version& v = entry->current;
  auto ctx = [&](Error e) { return fail(std::move(e).add_context(str("refusing to publish ", quote(name)))); };
  if (v.root != (v.sealed ? str(v.image, "/", manifest::k_sealed_file) : v.image + "/root"))
    return ctx(Error(Errc::invalid_argument, str("its root ", quote(v.root), " is not inside its build directory (only builds are published)")));
  if (auto d = check_trusted_dir(v.image, "build directory"); !d) return ctx(d.error());
  if (auto r = check_version_root(v); !r) return ctx(r.error());
  auto m = catalogue::load_trusted_manifest(v.image);
  if (!m) return ctx(m.error());
  const std::string digest = manifest::digest(*m);
  if (digest != v.digest)
    return ctx(Error(Errc::mismatch, str(v.image, "/manifest has tree digest ", digest, ", not the ", v.digest, " recorded in the catalogue")));
  std::map<std::string, std::string> files;  // the small files published beside root/
  for (const char* f : {"manifest", "lock", "recipe.toml"}) {
    auto text = catalogue::read_required_file(v.image + "/" + f, 512u << 20);
    if (!text) return ctx(text.error());
    files[f] = std::move(*text);
  }
  auto recipe = catalogue::recipe_name_of(files["recipe.toml"], v.image + "/recipe.toml");
  if (!recipe) return ctx(recipe.error());
  auto sig_text = read_image_signature(v.image);
  if (!sig_text) return ctx(sig_text.error());
  PublishResult out;
  if (*sig_text) {
    auto sig = parse_signature(**sig_text, v.image + "/signature");
    if (!sig) return ctx(sig.error());
    const Statement expected = with_sealed(
        Statement{*recipe, v.build_id, m->stripped_from.empty() ? digest : m->stripped_from, Sha256::hex(files["lock"]), {}, {}}, m->sealed);
    if (!(sig->statement == expected))
      return ctx(Error(Errc::mismatch, str(v.image, "/signature is not for this build (it names build ", sig->statement.build_id, ", tree digest ",
                                           sig->statement.tree_digest, ")")));
    files["signature"] = **sig_text;
    out.signer = sig->key_id;
  } else if (!o.allow_unsigned) {
    return ctx(Error(Errc::permission,
                     str("it is not signed (sign it with 'chrootctl sign ", entry->name, " --key KEY', or publish it with --allow-unsigned)")));
  }
  if (!valid_word(*recipe) || !valid_word(v.build_id))
    return ctx(Error(Errc::invalid_argument, str("its recipe name ", quote(*recipe), " or build id ", quote(v.build_id), " cannot be published")));
  if (m->sealed != v.sealed) return ctx(Error(Errc::mismatch, str(v.image, "/manifest does not describe the image file recorded in the catalogue")));
  for (const auto& e : m->entries) {
    if (v.sealed) break;  // published as one file, whatever its tree holds
    if (auto p = check_manifest_path(e.path); !p) return ctx(p.error());
    if (e.type == manifest::Type::socket) return ctx(Error(Errc::unsupported, str(quote(e.path), " is a socket, which cannot be published")));
  }
  if (m->entries.empty() || m->entries.front().path != "/") return ctx(Error(Errc::parse, "the manifest has no root entry"));
  // A published tree is read in place by every node and every user there (access.hpp): it
  // must hold nothing that would run with privileges on a host.
  if (auto priv = privileged_entries(*m); !priv.empty())
    return ctx(Error(Errc::permission, str("a published tree is reachable by every user of every node, and it holds ", list_privileged(priv),
                                           " (strip them: [strip] in the recipe, or import --strip, and publish that build)")));

  const std::string canon = TRY(with_context(make_publish_dir(dir), str("refusing to publish into ", quote(dir))));
  // Workers trust a published build only if nobody but root can change it, and the publisher
  // must not write into a directory someone else could rearrange under it.
  TRY(with_context(check_owned_dir(canon, ::geteuid()), str("refusing to publish into ", quote(canon))));
  auto dfd = TRY(sys::open_path(canon, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  // One publisher at a time per directory; the lock is on the directory itself, so nothing
  // extra appears in what is published.
  TRY(with_context(sys::flock(dfd.get(), true), str("locking ", canon)));
  const std::int64_t now = o.now ? o.now : sys::now_unix();
  out.name = entry->name;
  out.build_id = v.build_id;
  out.digest = digest;
  out.entries = m->entries.size();
  out.published = str(canon, "/", entry->name, "/", v.build_id);
  out.fragment = str(canon, "/", k_fragments, "/", entry->name, ".toml");
  const Fragment fragment{entry->name, str(entry->name, "/", v.build_id), v.build_id, *recipe, digest, out.signer, now};
  auto write_fragment = [&]() -> Status {
    const std::string fdir = str(canon, "/", k_fragments);
    TRY(sys::mkdir_path(fdir, 0755, true));
    return with_context(write_file_atomic(out.fragment, render_fragment(fragment), 0644), str("writing ", out.fragment));
  };
  // Last, for a tree and an image file alike: the small files beside it, mode 0755, all of it
  // synced, then moved into place as DIR/NAME/BUILD-ID (never over one already there), and the
  // fragment that names it.
  auto install = [&](TempDir& tmp) -> Result<PublishResult> {
    for (const auto& [f, text] : files) TRY(write_file_atomic(str(tmp.path(), "/", f), text, 0644));
    TRY(sys::chmod_dir(tmp.path(), 0755));
    {
      auto tfd = TRY(sys::open_path(tmp.path(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
      if (::syncfs(tfd.get()) != 0) return fail_errno(str("syncfs(", quote(tmp.path()), ")"), errno);
    }
    const std::string parent = str(canon, "/", entry->name);
    TRY(sys::mkdir_path(parent, 0755, true));
    auto pfd = TRY(sys::open_path(parent, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
    TRY(sys::rename_at(AT_FDCWD, tmp.path(), pfd.get(), v.build_id, RENAME_NOREPLACE));
    tmp.release();
    TRY(sys::fsync(pfd.get()));
    TRY(write_fragment());
    return out;
  };

  if (sys::lstat_path(out.published)) {
    auto existing = manifest::read_digest(out.published + "/manifest");
    if (!existing) return ctx(std::move(existing.error()).add_context(str(quote(out.published), " exists")));
    if (*existing != digest) return ctx(Error(Errc::exists, str(quote(out.published), " exists with tree digest ", *existing, ", not ", digest)));
    TRY(write_fragment());
    out.already_published = true;
    return out;
  }

  if (v.sealed) {
    // One file: the image file, copied as is and its SHA-256 checked as it is copied, beside
    // the small files; a worker's launch then costs the shared filesystem one file, not one
    // metadata request per entry.
    // Removed with what it holds unless it is renamed into place.
    auto tmp = TRY(TempDir::create(str(canon, "/", published_dir_name(entry->name))));
    status(str("publishing the image file (", human_size(v.sealed->size), ") into ", tmp.path()));
    {
      auto src = TRY(sys::open_path(v.root, O_RDONLY | O_NOFOLLOW | O_NOCTTY));
      auto dst = TRY(sys::open_path(str(tmp.path(), "/", manifest::k_sealed_file), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
      Sha256 h;
      std::vector<char> buf(1u << 20);
      std::uint64_t done = 0;
      while (true) {
        const ssize_t n = sys::retry_eintr([&] { return ::read(src.get(), buf.data(), buf.size()); });
        if (n < 0) return fail_errno(str("read(", quote(v.root), ")"), errno);
        if (n == 0) break;
        h.update(buf.data(), static_cast<std::size_t>(n));
        TRY(sys::write_all(dst.get(), std::string_view(buf.data(), static_cast<std::size_t>(n))));
        done += static_cast<std::uint64_t>(n);
      }
      const std::string got = h.hex_final();
      if (done != v.sealed->size || got != v.sealed->sha256)
        return ctx(Error(Errc::mismatch, str(v.root, " changed since it was verified (", done, " bytes, SHA-256 ", got, "; recorded ", v.sealed->size,
                                             " bytes, ", v.sealed->sha256, "); run 'chrootctl verify ", entry->name, "'")));
      if (::fchmod(dst.get(), 0644) != 0) return fail_errno(str("fchmod(", quote(tmp.path()), "/image.erofs, 0644)"), errno);
      out.bytes_copied = done;
      out.files = 1;
    }
    return install(tmp);
  }

  Published earlier;
  if (o.link) {
    status(str("indexing the builds published in ", canon));
    earlier = TRY(index_published(canon));
  }
  auto tmp = TRY(TempDir::create(str(canon, "/", published_dir_name(entry->name))));
  const std::string troot = tmp.path() + "/root";
  TRY(sys::mkdir_p(troot, 0700));
  auto tree = TRY(TreeWriter::open(troot, true));
  auto reader = TRY(detail::TreeReader::open(v.root));
  std::set<std::pair<dev_t, ino_t>> used;                      // inodes of earlier builds already linked to
  std::map<std::string, std::pair<dev_t, ino_t>> src_leaders;  // hard-link groups of the image
  status(str("publishing ", m->entries.size(), " entries into ", tmp.path()));

  auto link_earlier = [&](const manifest::Entry& e) -> Result<bool> {
    auto it = earlier.files.find(share_key(e));
    if (it == earlier.files.end()) return false;
    // Prefer a file with the same mtime (mtime is not in the digest, but keeping it is nicer).
    for (int pass = 0; pass < 2; ++pass) {
      for (const auto& [bi, ei] : it->second) {
        auto& b = earlier.builds[bi];
        const auto& old = b.m.entries[ei];
        const bool same_mtime = old.mtime_sec == e.mtime_sec && old.mtime_nsec == e.mtime_nsec;
        if ((pass == 0) != same_mtime) continue;
        if (!b.reader) {
          auto r = detail::TreeReader::open(b.root);
          if (!r) continue;
          b.reader = std::make_unique<detail::TreeReader>(std::move(*r));
        }
        auto fd = b.reader->open_file(old);  // still what its manifest says: type, mode, owner, size, xattrs
        if (!fd) continue;
        auto st = sys::fstat(fd->get());
        if (!st || used.count({st->st_dev, st->st_ino})) continue;
        auto l = tree.link_to_open_file(e.path, fd->get());
        if (!l) {
          if (l.error().code() == Errc::unsupported) continue;
          return fail(l.error());
        }
        used.insert({st->st_dev, st->st_ino});
        return true;
      }
    }
    return false;
  };

  for (const auto& e : m->entries) {
    auto step = [&]() -> Status {
      switch (e.type) {
        case manifest::Type::dir:
          if (e.path == "/") TRY(reader.check_root_entry(e));
          else TRY(reader.check_other(e));
          return tree.make_dir(e.path, meta_of(e));
        case manifest::Type::symlink:
          TRY(reader.check_other(e));
          return tree.make_symlink(e.path, e.target, meta_of(e));
        case manifest::Type::chardev:
        case manifest::Type::blockdev:
        case manifest::Type::fifo:
          TRY(reader.check_other(e));
          return make_node(tree, e);
        case manifest::Type::socket:
          return fail(Errc::unsupported, "socket");
        case manifest::Type::file:
          break;
      }
      if (!e.link.empty() && e.link != e.path) {
        auto fd = TRY(reader.open_file(e));
        auto st = TRY(sys::fstat(fd.get()));
        auto it = src_leaders.find(e.link);
        if (it == src_leaders.end() || it->second != std::make_pair(st.st_dev, st.st_ino))
          return fail(Errc::mismatch, str(quote(e.path), " changed since it was verified: it is no longer a hard link to ", quote(e.link)));
        return tree.make_hardlink(e.path, e.link);
      }
      ++out.files;
      if (!e.link.empty()) {
        auto fd = TRY(reader.open_file(e));
        auto st = TRY(sys::fstat(fd.get()));
        src_leaders[e.path] = {st.st_dev, st.st_ino};
      }
      if (o.link && TRY(link_earlier(e))) {
        ++out.files_linked;
        out.bytes_linked += e.size;
        return {};
      }
      auto src = TRY(reader.open_file(e));
      auto dst = TRY(tree.create_file(e.path));
      TRY(detail::stream_checked(src.get(), e, v.root + e.path,
                                 [&](const char* p, std::size_t n) { return sys::write_all(dst.get(), std::string_view(p, n)); }));
      TRY(tree.finish_file(dst.get(), e.path, meta_of(e)));
      out.bytes_copied += e.size;
      return {};
    };
    if (auto r = step(); !r) return fail(std::move(r.error()).add_context(str("publishing ", quote(name), " into ", canon)));
  }
  TRY(tree.finish());

  // The copy as a whole, hard links to earlier builds included, against the manifest.
  status(str("verifying the published copy"));
  manifest::CreateOptions copts;
  copts.threads = o.threads;
  copts.progress = o.progress;
  auto d = manifest::check(troot, *m, copts);
  if (!d) return ctx(d.error());
  if (d->differs_beyond_mtime())
    return ctx(Error(Errc::mismatch,
                     str("the published copy does not match the manifest (", catalogue::count_differences(*d), "):\n", catalogue::listing(*d))));
  return install(tmp);
}

}  // namespace chrootctl::distribution
