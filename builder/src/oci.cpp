// OCI image layout and `docker save` tarballs: find the image's layers and apply them in order.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <map>

#include "chrootctl/builder/extract.hpp"
#include "chrootctl/common/json.hpp"
#include "chrootctl/common/sha256.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/common/tree_path.hpp"
#include "extract_internal.hpp"

namespace chrootctl::builder {

namespace {

struct Member {
  std::string file;     // spooled copy in the scratch directory ("" for symlinks)
  std::string sha256;   // of the contents
  std::string symlink;  // target, for docker's shared-layer symlinks
};

class Blobs {
 public:
  Blobs(std::string tarball, std::string scratch) : m_tarball(std::move(tarball)), m_scratch(std::move(scratch)) {}

  // Reads the whole tarball once: every regular member is spooled to the scratch directory and
  // hashed on the way; the tarball itself is hashed as it is read.
  Result<std::string> spool() {
    auto fd = TRY(sys::open_path(m_tarball, O_RDONLY | O_NOCTTY));
    auto st = TRY(sys::fstat(fd.get()));
    if (!S_ISREG(st.st_mode)) return fail(Errc::invalid_argument, str(quote(m_tarball), " is not a regular file"));
    detail::ArchiveReader reader(std::move(fd));
    TRY(reader.open(m_tarball));
    archive_entry* entry = nullptr;
    std::size_t n = 0;
    std::vector<char> buf(1u << 20);
    while (TRY(reader.next(&entry))) {
      const char* raw = archive_entry_pathname(entry);
      if (!raw) return fail(Errc::parse, str(quote(m_tarball), ": an entry has no usable name"));
      auto name = TRY(normalize_entry_path(raw));
      const auto type = archive_entry_filetype(entry);
      if (type == AE_IFLNK && archive_entry_symlink(entry)) {
        m_members[name] = Member{{}, {}, archive_entry_symlink(entry)};
        continue;
      }
      if (type != AE_IFREG || archive_entry_hardlink(entry)) continue;
      const std::string file = str(m_scratch, "/blob-", n++);
      auto out = TRY(sys::open_path(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600));
      Sha256 sha;
      while (true) {
        const la_ssize_t k = archive_read_data(reader.archive(), buf.data(), buf.size());
        if (k < 0) return fail(Errc::parse, str(quote(m_tarball), ": reading ", quote(name), ": ", archive_error_string(reader.archive())));
        if (k == 0) break;
        sha.update(buf.data(), static_cast<std::size_t>(k));
        TRY(sys::write_all(out.get(), std::string_view(buf.data(), static_cast<std::size_t>(k))));
      }
      m_members[name] = Member{file, sha.hex_final(), {}};
    }
    return reader.finish_hash();
  }

  const Member* find(const std::string& rel) {
    auto norm = normalize_entry_path(rel);
    if (!norm) return nullptr;
    std::string name = *norm;
    for (int hops = 0; hops < 8; ++hops) {
      auto it = m_members.find(name);
      if (it == m_members.end()) return nullptr;
      if (it->second.symlink.empty()) return &it->second;
      const auto slash = name.find_last_of('/');
      auto next = normalize_entry_path(str(name.substr(1, slash), it->second.symlink));
      if (!next) return nullptr;
      name = *next;
    }
    return nullptr;
  }

  Result<std::string> text(const std::string& rel) {
    const Member* m = find(rel);
    if (!m) return fail(Errc::not_found, str(quote(m_tarball), " has no ", quote(rel)));
    return sys::read_file(m->file, 16u << 20);
  }

  Result<JsonValue> json(const std::string& rel) {
    auto t = TRY(text(rel));
    return parse_json(t, str(m_tarball, ":", rel));
  }

  // A content-addressed blob, its digest checked.
  Result<const Member*> blob(const std::string& digest) {
    const auto colon = digest.find(':');
    if (colon == std::string::npos || digest.substr(0, colon) != "sha256" || digest.size() != 7 + 64)
      return fail(Errc::parse, str(quote(m_tarball), ": unsupported digest ", quote(digest)));
    const std::string hex = digest.substr(colon + 1);
    const Member* m = find("blobs/sha256/" + hex);
    if (!m) return fail(Errc::not_found, str(quote(m_tarball), " has no blob ", digest));
    if (m->sha256 != hex) return fail(Errc::mismatch, str(quote(m_tarball), ": blob ", digest, " has sha256 ", m->sha256));
    return m;
  }

  Result<JsonValue> blob_json(const std::string& digest) {
    const Member* m = TRY(blob(digest));
    auto t = TRY(sys::read_file(m->file, 16u << 20));
    return parse_json(t, str(m_tarball, ":", digest));
  }

  bool has(const std::string& rel) { return find(rel) != nullptr; }
  const std::string& tarball() const { return m_tarball; }

 private:
  std::string m_tarball, m_scratch;
  std::map<std::string, Member> m_members;
};

std::string host_oci_arch() {
  struct utsname u {};
  ::uname(&u);
  std::string m = u.machine;
  if (m == "x86_64") return "amd64";
  if (m == "aarch64") return "arm64";
  if (m == "ppc64le") return "ppc64le";
  if (m == "s390x") return "s390x";
  return m;
}

bool is_index_type(const std::string& t) {
  return t == "application/vnd.oci.image.index.v1+json" || t == "application/vnd.docker.distribution.manifest.list.v2+json";
}

Result<std::vector<std::string>> oci_layers(Blobs& blobs, const std::string& image, std::string& chosen) {
  auto index = TRY(blobs.json("index.json"));
  const JsonValue* manifests = index.get("manifests");
  if (!manifests || manifests->kind != JsonValue::Kind::array || manifests->items.empty())
    return fail(Errc::parse, str(quote(blobs.tarball()), ": index.json lists no manifests"));
  auto ref_of = [](const JsonValue& m) -> std::string {
    if (const JsonValue* ann = m.get("annotations")) {
      if (auto r = ann->string_member("org.opencontainers.image.ref.name")) return *r;
      if (auto r = ann->string_member("io.containerd.image.name")) return *r;
    }
    return {};
  };
  const JsonValue* pick = nullptr;
  std::vector<std::string> names;
  for (const auto& m : manifests->items) {
    const std::string ref = ref_of(m);
    names.push_back(ref.empty() ? m.string_member("digest").value_or("?") : ref);
    if (!image.empty() && (ref == image || m.string_member("digest") == image)) pick = &m;
  }
  if (!image.empty() && !pick)
    return fail(Errc::not_found, str(quote(blobs.tarball()), " has no image ", quote(image), " (it has: ", join(names, ", "), ")"));
  if (!pick) {
    if (manifests->items.size() > 1)
      return fail(Errc::invalid_argument,
                  str(quote(blobs.tarball()), " holds several images (", join(names, ", "), "); name one with image = \"...\" in the recipe"));
    pick = &manifests->items[0];
  }
  chosen = names[static_cast<std::size_t>(pick - manifests->items.data())];
  std::string digest = pick->string_member("digest").value_or("");
  std::string type = pick->string_member("mediaType").value_or("");
  auto manifest = TRY(blobs.blob_json(digest));
  for (int depth = 0; depth < 4 && (is_index_type(type) || manifest.get("manifests")); ++depth) {
    const JsonValue* list = manifest.get("manifests");
    if (!list || list->kind != JsonValue::Kind::array)
      return fail(Errc::parse, str(quote(blobs.tarball()), ": image index ", digest, " is malformed"));
    const JsonValue* match = nullptr;
    const std::string arch = host_oci_arch();
    for (const auto& m : list->items) {
      const JsonValue* p = m.get("platform");
      if (p && p->string_member("os") == std::optional<std::string>("linux") && p->string_member("architecture") == arch) {
        match = &m;
        break;
      }
    }
    if (!match) return fail(Errc::not_found, str(quote(blobs.tarball()), ": image ", quote(chosen), " has no linux/", arch, " manifest"));
    digest = match->string_member("digest").value_or("");
    type = match->string_member("mediaType").value_or("");
    manifest = TRY(blobs.blob_json(digest));
  }
  const JsonValue* layers = manifest.get("layers");
  if (!layers || layers->kind != JsonValue::Kind::array)
    return fail(Errc::parse, str(quote(blobs.tarball()), ": manifest ", digest, " has no layers"));
  std::vector<std::string> out;
  for (const auto& l : layers->items) {
    auto d = l.string_member("digest");
    if (!d) return fail(Errc::parse, str(quote(blobs.tarball()), ": a layer of ", digest, " has no digest"));
    out.push_back(*d);
  }
  return out;
}

Result<std::vector<std::string>> docker_layers(Blobs& blobs, const std::string& image, std::string& chosen) {
  auto manifest = TRY(blobs.json("manifest.json"));
  if (manifest.kind != JsonValue::Kind::array || manifest.items.empty())
    return fail(Errc::parse, str(quote(blobs.tarball()), ": manifest.json lists no images"));
  const JsonValue* pick = nullptr;
  std::vector<std::string> names;
  for (const auto& m : manifest.items) {
    std::string first;
    if (const JsonValue* tags = m.get("RepoTags"); tags && tags->kind == JsonValue::Kind::array) {
      for (const auto& t : tags->items) {
        if (t.kind != JsonValue::Kind::string) continue;
        if (first.empty()) first = t.text;
        if (!image.empty() && t.text == image) pick = &m;
      }
    }
    names.push_back(first.empty() ? m.string_member("Config").value_or("?") : first);
  }
  if (!image.empty() && !pick)
    return fail(Errc::not_found, str(quote(blobs.tarball()), " has no image ", quote(image), " (it has: ", join(names, ", "), ")"));
  if (!pick) {
    if (manifest.items.size() > 1)
      return fail(Errc::invalid_argument,
                  str(quote(blobs.tarball()), " holds several images (", join(names, ", "), "); name one with image = \"...\" in the recipe"));
    pick = &manifest.items[0];
  }
  chosen = names[static_cast<std::size_t>(pick - manifest.items.data())];
  const JsonValue* layers = pick->get("Layers");
  if (!layers || layers->kind != JsonValue::Kind::array) return fail(Errc::parse, str(quote(blobs.tarball()), ": manifest.json has no Layers"));
  std::vector<std::string> out;
  for (const auto& l : layers->items) {
    if (l.kind != JsonValue::Kind::string) return fail(Errc::parse, str(quote(blobs.tarball()), ": a layer in manifest.json is not a path"));
    out.push_back(l.text);
  }
  return out;
}

}  // namespace

Result<OciResult> extract_oci(const std::string& tarball, const std::string& expected_sha256, const std::string& image, const std::string& scratch,
                              TreeWriter& tree, const ExtractProgress& progress) {
  Blobs blobs(tarball, scratch);
  OciResult result;
  result.sha256 = TRY(blobs.spool());
  if (!expected_sha256.empty() && result.sha256 != expected_sha256)
    return fail(Errc::mismatch, str(quote(tarball), " has sha256 ", result.sha256, " but the recipe pins ", expected_sha256));
  const bool docker = blobs.has("manifest.json");
  if (!docker && !blobs.has("index.json"))
    return fail(Errc::parse, str(quote(tarball), " is neither a docker save tarball (manifest.json) nor an OCI image layout (index.json)"));
  result.layers = docker ? TRY(docker_layers(blobs, image, result.image)) : TRY(oci_layers(blobs, image, result.image));
  ExtractStats total;
  for (const auto& layer : result.layers) {
    const Member* m = nullptr;
    if (layer.starts_with("sha256:")) {
      m = TRY(blobs.blob(layer));
    } else {
      m = blobs.find(layer);
      if (!m) return fail(Errc::not_found, str(quote(tarball), " has no layer ", quote(layer)));
    }
    auto stats = TRY(with_context(apply_layer(m->file, tree,
                                              [&](const ExtractStats& s) {
                                                if (!progress) return;
                                                ExtractStats t = total;
                                                t.entries += s.entries;
                                                t.bytes += s.bytes;
                                                progress(t);
                                              }),
                                  [&] { return str("layer ", layer, " of ", tarball); }));
    total.entries += stats.entries;
    total.bytes += stats.bytes;
    total.whiteouts += stats.whiteouts;
    result.newest_mtime = std::max(result.newest_mtime, stats.newest_mtime);
  }
  TRY(tree.finish());
  return result;
}

}  // namespace chrootctl::builder
