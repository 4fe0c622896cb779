// chrootctl import: judge the signature and the site's strip policy, unpack into staging holding
// every entry to the manifest as it is written, then register.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>
#include <vector>

#include "chrootctl/catalogue/access.hpp"
#include "chrootctl/catalogue/safety.hpp"
#include "chrootctl/catalogue/sealed.hpp"
#include "chrootctl/catalogue/sign.hpp"
#include "chrootctl/catalogue/store.hpp"
#include "chrootctl/common/files.hpp"
#include "chrootctl/common/privilege.hpp"
#include "chrootctl/common/sha256.hpp"
#include "chrootctl/common/staging.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/common/tree_path.hpp"
#include "chrootctl/common/unpack_check.hpp"
#include "chrootctl/distribution/export.hpp"
#include "chrootctl/verity/verity.hpp"
#include "export_tree.hpp"

namespace chrootctl::distribution {

// What this file takes from the catalogue.
using catalogue::add;
using catalogue::AddOptions;
using catalogue::canonical_path;
using catalogue::check_name;
using catalogue::check_owned_dir;
using catalogue::check_root;
using catalogue::check_sealed_file;
using catalogue::Entry;
using catalogue::judge_signature;
using catalogue::JudgeInput;
using catalogue::list_privileged;
using catalogue::load;
using catalogue::privileged_entries;
using catalogue::Statement;
using catalogue::Version;
using catalogue::with_sealed;

namespace {

constexpr const char* k_entry_member = "chrootctl-export.toml";
// Every member read into memory has a limit; a member over it is refused before it is read.
constexpr std::size_t k_entry_limit = 64u << 10;  // chrootctl-export.toml, signature
constexpr std::size_t k_text_limit = 16u << 20;   // lock, recipe.toml

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
    std::size_t limit = k_text_limit;
    if (name == k_entry_member) dest = &h.entry, limit = k_entry_limit;
    else if (name == "manifest") dest = &h.manifest, limit = manifest::k_manifest_limit;
    else if (name == "lock") dest = &h.lock;
    else if (name == "recipe.toml") dest = &h.recipe;
    else if (name == "signature") dest = &sig_slot.emplace(), limit = k_entry_limit;
    else return bad(str("unexpected member ", quote(name), " before root/"));
    if (!seen.insert(name).second) return bad(str("it holds ", quote(name), " twice"));
    if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e)) return bad(str("its member ", quote(name), " is not a regular file"));
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
  const std::map<std::string, std::string> judged{
      {k_entry_member, h.entry}, {"manifest", h.manifest}, {"lock", h.lock}, {"recipe.toml", h.recipe}, {"signature", h.signature.value_or("")}};
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
      if (static_cast<std::uint64_t>(archive_entry_size(e)) != it->second.size()) return bad(str("it holds two different ", quote(name), " members"));
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

// A staging directory STORE/.staging/import.XXXXXX, shared with builds (common/staging.hpp).
Result<store::Staging> make_staging(const std::string& store_dir) {
  TRY(store::prepare(store_dir));
  return store::create_staging(store_dir, "import");
}

Status check_top_level(const store::Staging& st, const Header& h) {
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
    auto text = TRY(sys::read_fd(fd.get(), manifest::k_manifest_limit));
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
  return {};
}

// Holds each entry of the archive to the manifest its signature covers, as it is unpacked
// (common/unpack_check.hpp): the first entry that is not in the manifest, appears twice, or
// differs in type, mode, owner, size, link target, device numbers or attributes stops the
// unpacking before anything of it is written; a file's contents are hashed as they are
// written and must end with the manifest's size and SHA-256. The members before root/ must be
// byte for byte those read first. With a strip policy, privileged entries are written
// defused, or not at all, as plan_import_strip decided.
class ImportCheck final : public UnpackCheck {
 public:
  ImportCheck(const Header& h, const manifest::Manifest& m, const PrivilegePolicy* strip)
      : m_header(h), m_m(m), m_strip(strip), m_seen(m.entries.size(), 0), m_skipped(m.entries.size(), 0) {}

  Result<Admission> begin(const ArchiveEntry& e) override {
    m_file = nullptr;
    m_member = nullptr;
    m_bytes = 0;
    if (e.path == "/root") return entry(e, "/");
    if (e.path.starts_with("/root/")) return entry(e, e.path.substr(5));
    return member(e);
  }

  Status data(std::string_view block, std::uint64_t offset) override {
    if (m_member) {
      if (offset != m_bytes || m_bytes + block.size() > m_member->size() || m_member->compare(m_bytes, block.size(), block) != 0)
        return refuse(m_label, "differs from the member read before it was judged");
    } else if (m_file) {
      if (m_bytes + block.size() > m_file->size) return refuse(m_label, str("holds more than the ", m_file->size, " bytes its manifest line gives"));
      m_sha.update(block.data(), block.size());
    } else {
      return fail(Errc::internal, "import: data for an entry that has none");
    }
    m_bytes += block.size();
    return {};
  }

  Status end(std::uint64_t ino) override {
    if (m_member) {
      if (m_bytes != m_member->size()) return refuse(m_label, "differs from the member read before it was judged");
    } else if (m_file) {
      if (m_bytes != m_file->size) return refuse(m_label, str("holds ", m_bytes, " bytes, not the ", m_file->size, " its manifest line gives"));
      const std::string got = m_sha.hex_final();
      if (got != m_file->sha256) return refuse(m_label, str("has sha256 ", got, ", not the ", m_file->sha256, " its manifest line gives"));
      m_hashes[ino] = got;
    }
    m_file = nullptr;
    m_member = nullptr;
    return {};
  }

  // After the unpacking: nothing the manifest lists, and no member, may be missing.
  [[nodiscard]] Status finish() const {
    for (std::size_t i = 0; i < m_m.entries.size(); ++i)
      if (!m_seen[i]) return refuse(m_m.entries[i].path, "is in the manifest but not in the archive");
    for (const char* need : {k_entry_member, "manifest", "lock", "recipe.toml"})
      if (!m_members.count(need)) return fail(Errc::mismatch, str("the archive's member ", need, " was not unpacked"));
    if (m_header.signature && !m_members.count("signature")) return fail(Errc::mismatch, "the archive's member signature was not unpacked");
    return {};
  }

  /// The SHA-256 of every regular file written, by inode.
  [[nodiscard]] const std::unordered_map<std::uint64_t, std::string>& hashes() const { return m_hashes; }

 private:
  static tl::unexpected<Error> refuse(std::string_view path, const std::string& what) {
    return fail(Errc::mismatch, str("the archive's ", quote(escape_bytes(path)), " ", what));
  }

  Result<Admission> member(const ArchiveEntry& e) {
    const std::string name = e.path.substr(1);
    const std::string* content = nullptr;
    if (name == k_entry_member) content = &m_header.entry;
    else if (name == "manifest") content = &m_header.manifest;
    else if (name == "lock") content = &m_header.lock;
    else if (name == "recipe.toml") content = &m_header.recipe;
    else if (name == "signature" && m_header.signature) content = &*m_header.signature;
    if (!content) return fail(Errc::mismatch, str("the archive holds an unexpected ", quote(name), " beside root/"));
    if (!m_members.insert(name).second) return fail(Errc::mismatch, str("the archive holds ", quote(name), " twice"));
    if (e.type != manifest::Type::file || !e.hardlink.empty() || e.sparse || e.size != content->size())
      return fail(Errc::mismatch, str("the archive's member ", quote(name), " differs from the one read before it was judged"));
    m_member = content;
    m_label = name;
    return Admission{false, 0644, {}};
  }

  Result<Admission> entry(const ArchiveEntry& e, const std::string& path) {
    const manifest::Entry* want = m_m.find(path);
    if (!want) return refuse(path, "is not in its manifest");
    const std::size_t index = static_cast<std::size_t>(want - m_m.entries.data());
    if (m_seen[index]) return refuse(path, "appears twice");
    m_seen[index] = 1;
    m_label = path;
    if (!e.hardlink.empty()) {
      // A tar hard link names the first path of its group, which the manifest's link field
      // names on every member.
      const std::string target = e.hardlink == "/root" ? std::string("/") : e.hardlink.substr(std::min<std::size_t>(5, e.hardlink.size()));
      if (!e.hardlink.starts_with("/root/") || want->link.empty() || want->link != target || target == path)
        return refuse(path, str("is a hard link to ", quote(escape_bytes(e.hardlink)), ", which its manifest line does not say"));
      const manifest::Entry* leader = m_m.find(target);
      if (!leader || !m_seen[static_cast<std::size_t>(leader - m_m.entries.data())])
        return refuse(path, str("is a hard link to ", quote(escape_bytes(target)), ", which was not unpacked before it"));
      m_skipped[index] = m_skipped[static_cast<std::size_t>(leader - m_m.entries.data())];
      return Admission{m_skipped[index] != 0, want->mode, want->xattrs};
    }
    if (!want->link.empty() && want->link != path)
      return refuse(path, str("is not a hard link to ", quote(escape_bytes(want->link)), " as its manifest line says"));
    auto differs = [&](const std::string& what) { return refuse(path, str(what, " (its manifest line says otherwise)")); };
    if (e.type != want->type) return differs(str("is a ", manifest::type_name(e.type), ", not a ", manifest::type_name(want->type)));
    if (e.mode != want->mode) return differs(str("has mode ", mode_octal(e.mode), ", not ", mode_octal(want->mode)));
    if (e.uid != want->uid || e.gid != want->gid) return differs(str("is owned by ", e.uid, ":", e.gid, ", not ", want->uid, ":", want->gid));
    if (want->type == manifest::Type::file) {
      if (e.sparse) return refuse(path, "is a sparse file (holes are refused before anything is written)");
      if (e.size != want->size) return differs(str("is ", e.size, " bytes, not ", want->size));
    }
    if (want->type == manifest::Type::symlink && e.target != want->target)
      return differs(str("points to ", quote(escape_bytes(e.target)), ", not ", quote(escape_bytes(want->target))));
    if ((want->type == manifest::Type::chardev || want->type == manifest::Type::blockdev) &&
        (e.rdev_major != want->rdev_major || e.rdev_minor != want->rdev_minor))
      return differs(str("is device ", e.rdev_major, ",", e.rdev_minor, ", not ", want->rdev_major, ",", want->rdev_minor));
    if (!(e.xattrs == want->xattrs)) return differs("has other extended attributes");
    Admission a{false, want->mode, want->xattrs};
    if (m_strip) {
      const auto act = privilege_actions(*want, *m_strip);
      a.skip = act.remove;
      if (act.clear_setuid) a.mode &= ~06000u;
      if (act.drop_capability) std::erase_if(a.xattrs, [](const sys::Xattr& x) { return x.name == "security.capability"; });
    }
    m_skipped[index] = a.skip ? 1 : 0;
    if (want->type == manifest::Type::file && !a.skip) m_file = want;  // m_sha is fresh: hex_final resets it
    return a;
  }

  const Header& m_header;
  const manifest::Manifest& m_m;
  const PrivilegePolicy* m_strip;
  std::vector<char> m_seen;
  std::vector<char> m_skipped;
  std::set<std::string> m_members;
  const manifest::Entry* m_file = nullptr;  // the regular file being written
  const std::string* m_member = nullptr;    // the member being written
  std::string m_label;
  Sha256 m_sha;
  std::uint64_t m_bytes = 0;
  std::unordered_map<std::uint64_t, std::string> m_hashes;
};

bool has_capability(const manifest::Entry& e) {
  return std::any_of(e.xattrs.begin(), e.xattrs.end(), [](const sys::Xattr& x) { return x.name == "security.capability"; });
}

// The record's action for an original entry and what became of it (nullptr: left out).
std::string action_between(const manifest::Entry& original, const manifest::Entry* now) {
  if (!now) return original.type == manifest::Type::file ? "setuid-removed" : "device-removed";
  const bool cleared = (original.mode & 06000) && !(now->mode & 06000);
  const bool dropped = has_capability(original) && !has_capability(*now);
  if (cleared && dropped) return "setuid-cleared,capability-dropped";
  return cleared ? "setuid-cleared" : "capability-dropped";
}

}  // namespace

Result<StripPlan> plan_import_strip(const manifest::Manifest& m, const PrivilegePolicy& policy) {
  StripPlan plan;
  plan.result.stripped_from = m.stripped_from;
  std::map<std::string, manifest::StripRecord> records;  // by path; earlier records keep their original
  for (const auto& r : m.stripped) records.emplace(r.original.path, r);
  // Members of a hard-link group share one inode: they must all get the same treatment.
  std::map<std::string, std::pair<std::string, std::string>> groups;  // leader -> (action, first path)
  for (const auto& e : m.entries) {
    const auto a = privilege_actions(e, policy);
    const std::string action = strip_action_name(a, e);
    if (!e.link.empty()) {
      auto [it, fresh] = groups.emplace(e.link, std::make_pair(action, e.path));
      if (!fresh && it->second.first != action)
        return fail(Errc::permission, str(quote(escape_bytes(it->second.second)), " and ", quote(escape_bytes(e.path)),
                                          " are hard links to one file, but the strip policy treats them differently (list every path of "
                                          "the group on the allow-list, or none)"));
    }
    if (!a.changes()) {
      plan.result.entries.push_back(e);
      continue;
    }
    plan.changes.push_back({e.path, action, manifest::privilege_of(e).value_or("")});
    manifest::Entry original = e;
    original.mtime_sec = 0;
    original.mtime_nsec = 0;
    if (auto it = records.find(e.path); it != records.end()) original = it->second.original;
    const manifest::Entry* now = nullptr;
    if (!a.remove) {
      manifest::Entry changed = e;
      if (a.clear_setuid) changed.mode &= ~06000u;
      if (a.drop_capability) std::erase_if(changed.xattrs, [](const sys::Xattr& x) { return x.name == "security.capability"; });
      plan.result.entries.push_back(std::move(changed));
      now = &plan.result.entries.back();
    }
    records[e.path] = manifest::StripRecord{action_between(original, now), original};
  }
  if (plan.changes.empty()) {
    plan.result = m;
    return plan;
  }
  if (plan.result.stripped_from.empty()) plan.result.stripped_from = manifest::digest(m);
  plan.result.stripped.clear();
  for (auto& [path, r] : records) plan.result.stripped.push_back(std::move(r));
  // The records must lead back to what the signature covers: the check every reader makes.
  auto back = manifest::original_digest(plan.result);
  if (!back) return fail(Errc::internal, str("import: the stripped manifest does not lead back to its original: ", back.error().message()));
  return plan;
}

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
  // What the signature covers: the manifest's own digest, or for a tree stripped before, the
  // digest its strip records lead back to (checked by the parse).
  const std::string signed_digest = m->stripped_from.empty() ? digest : m->stripped_from;
  for (const auto& e : m->entries)
    if (auto p = check_manifest_path(e.path); !p) return refuse(p.error());
  auto recipe = catalogue::recipe_name_of(h->recipe, archive + ":recipe.toml");
  if (!recipe) return refuse(recipe.error());
  if (*recipe != entry->recipe)
    return refuse(Error(Errc::mismatch, str("its recipe.toml names ", quote(*recipe), ", not the ", quote(entry->recipe), " its entry names")));
  JudgeInput in;
  in.settings = &given;
  in.signature_text = h->signature;
  in.signature_label = archive + ":signature";
  in.unsigned_ok = o.allow_unsigned && !given.require_signature;
  const Statement expected = with_sealed(Statement{entry->recipe, entry->build_id, signed_digest, Sha256::hex(h->lock), {}, {}}, m->sealed);
  in.expected = [&]() -> Result<Statement> { return expected; };
  const auto verdict = judge_signature(in);
  if (!verdict.acceptable) {
    std::string why = verdict.reason;
    if (verdict.state == "unsigned") {
      if (given.require_signature)
        why += str(verdict.key_id.empty() ? " and" : ";", " require_signature is set",
                   given.config_file.empty() ? std::string() : str(" in ", given.config_file));
      else why += " (import it with --allow-unsigned to accept it unsigned)";
    }
    return refuse(Error(Errc::permission, why));
  }
  out.signature_state = verdict.state;
  out.signer = verdict.signer;
  if (verdict.state != "signed") out.signature_note = verdict.reason;
  out.name = o.as.empty() ? entry->name : o.as;
  if (auto n = check_name(out.name); !n) return refuse(n.error());
  if (!o.allow_downgrade) {
    if (auto r = catalogue::check_replacement(given, out.name, entry->recipe, entry->build_id, h->lock); !r) return refuse(r.error());
  }
  status(str(verdict.state == "signed" ? str("signed by key ", verdict.signer) : str("unsigned: ", verdict.reason), "; build ", entry->build_id,
             " of ", entry->recipe, ", ", m->entries.size(), " entries"));

  // 2. The site's privilege policy ([strip] in the config), decided from the manifest before
  // anything is written: refused by default, defused with --strip.
  // A sealed image's files exist only inside its mount, which is nosuid and nodev, and its file
  // travels as is: the policy, made for trees on the host's filesystem, has nothing to defuse.
  auto plan = m->sealed ? Result<StripPlan>(StripPlan{*m, {}}) : plan_import_strip(*m, given.import_strip);
  if (!plan) return refuse(plan.error());
  const std::string config = given.config_file.empty() ? std::string("the configuration") : given.config_file;
  if (!plan->changes.empty() && !o.strip) {
    std::vector<std::string> listed;
    for (const auto& c : plan->changes) listed.push_back(str(quote(escape_bytes(c.path)), " (", c.detail, ")"));
    return refuse(Error(Errc::permission, str("its tree holds what the site's strip policy does not allow: ", list_privileged(listed),
                                              "; import it with --strip to remove or defuse them (the manifest records what was "
                                              "changed), or allow them in [strip] of ",
                                              config)));
  }
  const manifest::Manifest& tree = plan->result;  // what the tree will be
  const std::string tree_digest = manifest::digest(tree);
  // An image unprivileged launchers read must hold nothing privileged at all (access.hpp).
  if (given.readable(out.name) && !m->sealed) {
    if (auto left = privileged_entries(tree); !left.empty())
      return refuse(Error(Errc::permission, str(quote(out.name), " is in readable_images in ", config,
                                                ": unprivileged launchers read its tree, so it must hold no setuid, setgid or capability "
                                                "file and no device node, but it ",
                                                o.strip ? "still " : "", "holds ", list_privileged(left), " (allowed by [strip] of ", config, ")")));
  }
  out.stripped = plan->changes;

  // 3. Where it goes. The same build already in the store is verified and registered as is.
  TRY(with_context(sys::mkdir_p(given.store, 0755), str("creating the store ", given.store)));
  Settings s = given;
  s.store = TRY(canonical_path(given.store));
  TRY(with_context(check_owned_dir(s.store, ::geteuid()), "refusing to import into the store"));
  {
    auto c = TRY(load(s));
    if (const Entry* owner = c.alias_target(out.name))
      return refuse(Error(
          Errc::exists, str(quote(out.name), " is an alias of ", quote(owner->name), "; remove the alias first (chrootctl remove ", out.name, ")")));
  }
  const std::string parent = str(s.store, "/", entry->recipe);
  const std::string dest = str(parent, "/", entry->build_id);
  auto register_existing = [&]() -> Result<ImportResult> {
    auto existing = manifest::read_digest(dest + "/manifest");
    if (!existing) return refuse(std::move(existing.error()).add_context(str(quote(dest), " is already in the store")));
    if (*existing != tree_digest)
      return refuse(Error(Errc::exists, str(quote(dest), " is already in the store with tree digest ", *existing, ", not ", tree_digest)));
    status(str("build ", entry->build_id, " is already in the store: verifying ", dest));
    AddOptions ao;
    ao.threads = o.threads;
    ao.progress = o.progress;
    ao.now = o.now;
    ao.refuse_downgrade = !o.allow_downgrade;
    ao.sealed_tree = o.sealed_tree;
    out.added = TRY(add(s, out.name, dest, ao));
    out.image = out.added.entry.current.image;
    out.signer = out.added.entry.current.signer;
    out.signature_state = out.signer.empty() ? "unsigned" : "signed";
    out.already_present = true;
    return out;
  };
  if (sys::lstat_path(dest)) return register_existing();

  if (m->sealed) {
    // 4. The image file alone first, checked (SHA-256 and root hash) before anything else is
    //    written; then the small files beside it; then into place (root-only unless the name is
    //    readable, as for a tree) and registered.
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
    const mode_t mode = given.readable(out.name) ? 0755 : 0700;
    if (::fchmod(staging.fd.get(), mode) != 0) return fail_errno(str("fchmod(", quote(staging.path), ", ", mode_octal(mode), ")"), errno);
    TRY(sys::mkdir_path(parent, 0755, true));
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
    // The file is the one its #sealed line names; its filesystem must be the manifest's tree.
    if (o.sealed_tree) {
      if (auto t = o.sealed_tree(file, *m->sealed, *m); !t) return refuse(t.error());
    }
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
    Sha256 manifest_bytes;  // the text parsed and checked above, as written beside the image
    manifest_bytes.update(h->manifest);
    v.manifest_sha256 = manifest_bytes.hex_final();
    out.added.entries = m->entries.size();
    if (verdict.state != "signed") out.added.notes.push_back(str("registered unsigned: ", verdict.reason));
    TRY(catalogue::record_version(s, out.name, v, out.added, std::nullopt, !o.allow_downgrade));
    staging.path.clear();
    out.image = dest;
    return out;
  }

  // 4. Unpack into a staging directory that only root can reach, every entry held to the
  // manifest as it is written (ImportCheck), with the builder's protections.
  auto staging = TRY(make_staging(s.store));
  status(str("unpacking into ", staging.path));
  ImportCheck check(*h, *m, o.strip ? &given.import_strip : nullptr);
  auto unpacked = o.unpack(archive, staging.path, check);
  if (!unpacked) return refuse(unpacked.error());
  out.unpacked = *unpacked;
  if (auto f = check.finish(); !f) return refuse(f.error());
  if (auto t = check_top_level(staging, *h); !t) return refuse(t.error());
  if (!plan->changes.empty()) {
    // The manifest of the tree as written: what was changed, and from what, is in its header.
    if (auto w = write_file_atomic(staging.path + "/manifest", manifest::serialize(tree), 0644); !w) return fail(w.error());
  }

  // 5. The tree as a whole: a metadata walk must find exactly what the manifest says (every
  // file's contents were hashed as they were written; the walk finds each by its inode).
  const std::string root = staging.path + "/root";
  auto before = TRY(sys::lstat_path(root));
  status(str("checking ", tree.entries.size(), " entries"));
  manifest::CreateOptions copts;
  copts.threads = o.threads;
  copts.progress = o.progress;
  copts.hash = false;
  const std::int64_t started = o.now ? o.now : sys::now_unix();
  auto fresh = manifest::create(root, copts);
  if (!fresh) return refuse(fresh.error());
  for (auto& e : fresh->entries) {
    if (e.type != manifest::Type::file) continue;
    if (auto it = check.hashes().find(e.ino); it != check.hashes().end()) e.sha256 = it->second;
  }
  const auto d = manifest::diff(tree, *fresh);
  if (d.differs_beyond_mtime())
    return refuse(
        Error(Errc::mismatch, str("its tree does not match its manifest (", catalogue::count_differences(d), "):\n", catalogue::listing(d))));
  TRY(catalogue::write_stat_record(staging.path, *fresh, tree_digest));

  // 6. Into place, never over anything, then registered. Root-only unless the name is readable.
  const mode_t mode = given.readable(out.name) ? 0755 : 0700;
  if (::fchmod(staging.fd.get(), mode) != 0) return fail_errno(str("fchmod(", quote(staging.path), ", ", mode_octal(mode), ")"), errno);
  TRY(sys::mkdir_path(parent, 0755, true));
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
  v.digest = tree_digest;
  v.signed_digest = tree.stripped_from;
  v.build_id = entry->build_id;
  v.recipe = entry->recipe;
  v.signer = verdict.signer;
  v.added_at = started;
  v.verified_at = started;
  v.identity = *identity;
  out.added.entries = tree.entries.size();
  if (verdict.state != "signed") out.added.notes.push_back(str("registered unsigned: ", verdict.reason));
  TRY(catalogue::record_version(s, out.name, v, out.added, std::nullopt, !o.allow_downgrade));
  staging.path.clear();
  out.image = dest;
  return out;
}

}  // namespace chrootctl::distribution
