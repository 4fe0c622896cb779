// Fixtures for the builder's privileged tests (declared in builder_fixtures.hpp).
#include "builder_fixtures.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>
#include <vector>

#include "chrootctl/common/sha256.hpp"
#include "chrootctl/common/strings.hpp"
#include "test_support.hpp"

namespace chrootctl::builder::fixtures {

// Writes a pax tar archive; filter is "", "gzip", "xz", "zstd" or "bzip2".
void write_tar(const std::string& path, const std::vector<TarEntry>& entries, const std::string& filter) {
  struct archive* a = archive_write_new();
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
  if (filter == "gzip") archive_write_add_filter_gzip(a);
  if (filter == "xz") archive_write_add_filter_xz(a);
  if (filter == "zstd") archive_write_add_filter_zstd(a);
  if (filter == "bzip2") archive_write_add_filter_bzip2(a);
  ASSERT_EQ(archive_write_open_filename(a, path.c_str()), ARCHIVE_OK) << archive_error_string(a);
  for (const auto& e : entries) {
    struct archive_entry* ae = archive_entry_new();
    archive_entry_set_pathname(ae, e.path.c_str());
    archive_entry_set_uid(ae, e.uid);
    archive_entry_set_gid(ae, e.gid);
    archive_entry_set_mtime(ae, e.mtime, 0);
    switch (e.type) {
      case 'd':
        archive_entry_set_filetype(ae, AE_IFDIR);
        break;
      case 'l':
        archive_entry_set_filetype(ae, AE_IFLNK);
        archive_entry_set_symlink(ae, e.data.c_str());
        break;
      case 'h':
        archive_entry_set_filetype(ae, AE_IFREG);
        archive_entry_set_hardlink(ae, e.data.c_str());
        break;
      case 'c':
      case 'b':
        archive_entry_set_filetype(ae, e.type == 'c' ? AE_IFCHR : AE_IFBLK);
        archive_entry_set_rdevmajor(ae, e.maj);
        archive_entry_set_rdevminor(ae, e.min);
        break;
      case 'p':
        archive_entry_set_filetype(ae, AE_IFIFO);
        break;
      default:
        archive_entry_set_filetype(ae, AE_IFREG);
        archive_entry_set_size(ae, static_cast<la_int64_t>(e.data.size()));
    }
    archive_entry_set_perm(ae, e.mode);
    for (const auto& [k, v] : e.xattrs) archive_entry_xattr_add_entry(ae, k.c_str(), v.data(), v.size());
    ASSERT_EQ(archive_write_header(a, ae), ARCHIVE_OK) << archive_error_string(a);
    if (e.type == 'f' && !e.data.empty()) {
      ASSERT_EQ(archive_write_data(a, e.data.data(), e.data.size()), static_cast<la_ssize_t>(e.data.size()));
    }
    archive_entry_free(ae);
  }
  ASSERT_EQ(archive_write_close(a), ARCHIVE_OK);
  archive_write_free(a);
}

std::string file_sha256(const std::string& path) {
  auto h = sha256_file(path);
  EXPECT_TRUE(h) << (h ? "" : h.error().what());
  return h ? h->hex : std::string();
}

// A docker-save tarball with the given layers (each written as LAYERDIR/layer.tar).
void write_docker_save(const std::string& out, const std::string& work, const std::vector<std::vector<TarEntry>>& layers, const std::string& tag) {
  std::vector<TarEntry> outer;
  std::vector<std::string> names;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const std::string lp = str(work, "/layer", i, ".tar");
    write_tar(lp, layers[i], "");
    const std::string dir = str("l", i, "aaaa");
    names.push_back("\"" + dir + "/layer.tar\"");
    outer.push_back({dir, 'd', "", 0755});
    outer.push_back({dir + "/layer.tar", 'f', test::read_file(lp)});
  }
  outer.push_back({"config.json", 'f', "{\"architecture\":\"amd64\",\"os\":\"linux\"}"});
  outer.push_back({"manifest.json", 'f', str("[{\"Config\":\"config.json\",\"RepoTags\":[\"", tag, "\"],\"Layers\":[", join(names, ","), "]}]")});
  write_tar(out, outer, "");
}

// An OCI image layout tarball; layers gzip-compressed; `ref` names the image in index.json.
void write_oci_layout(const std::string& out, const std::string& work, const std::vector<std::vector<TarEntry>>& layers, const std::string& ref) {
  std::vector<TarEntry> outer;
  outer.push_back({"oci-layout", 'f', "{\"imageLayoutVersion\":\"1.0.0\"}"});
  outer.push_back({"blobs", 'd', "", 0755});
  outer.push_back({"blobs/sha256", 'd', "", 0755});
  std::vector<std::string> descs;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const std::string lp = str(work, "/oci-layer", i, ".tar.gz");
    write_tar(lp, layers[i], "gzip");
    const std::string data = test::read_file(lp);
    const std::string hex = Sha256::hex(data);
    outer.push_back({"blobs/sha256/" + hex, 'f', data});
    descs.push_back(
        str("{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:", hex, "\",\"size\":", data.size(), "}"));
  }
  const std::string config = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}";
  const std::string config_hex = Sha256::hex(config);
  outer.push_back({"blobs/sha256/" + config_hex, 'f', config});
  const std::string manifest =
      str("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":"
          "\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:",
          config_hex, "\",\"size\":", config.size(), "},\"layers\":[", join(descs, ","), "]}");
  const std::string manifest_hex = Sha256::hex(manifest);
  outer.push_back({"blobs/sha256/" + manifest_hex, 'f', manifest});
  outer.push_back({"index.json", 'f',
                   str("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:",
                       manifest_hex, "\",\"size\":", manifest.size(), ",\"annotations\":{\"org.opencontainers.image.ref.name\":\"", ref, "\"}}]}")});
  write_tar(out, outer, "");
}

}  // namespace chrootctl::builder::fixtures
