// Fixtures for the builder's privileged tests, made at test time (builder_fixtures.cpp): tar
// archives written with libarchive (so hostile ones — absolute names, "..", planted symlinks —
// can be crafted) and OCI and docker-save image tarballs.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace chrootctl::builder::fixtures {

struct TarEntry {
  TarEntry(std::string p, char t = 'f', std::string d = {}, unsigned m = 0644, unsigned u = 0, unsigned g = 0, unsigned ma = 0, unsigned mi = 0,
           std::vector<std::pair<std::string, std::string>> x = {})
      : path(std::move(p)), type(t), data(std::move(d)), mode(m), uid(u), gid(g), maj(ma), min(mi), xattrs(std::move(x)) {}
  std::string path;
  char type;         // f file, d dir, l symlink, h hard link, c/b device, p fifo
  std::string data;  // file contents, or link target
  unsigned mode;
  unsigned uid, gid;
  unsigned maj, min;
  std::vector<std::pair<std::string, std::string>> xattrs;
  long mtime = 1700000000;
};

/// Writes a pax tar archive; filter is "", "gzip", "xz", "zstd" or "bzip2".
void write_tar(const std::string& path, const std::vector<TarEntry>& entries, const std::string& filter);
std::string file_sha256(const std::string& path);
/// A docker-save tarball with the given layers (each written as LAYERDIR/layer.tar).
void write_docker_save(const std::string& out, const std::string& work, const std::vector<std::vector<TarEntry>>& layers, const std::string& tag);
/// An OCI image layout tarball; layers gzip-compressed; `ref` names the image in index.json.
void write_oci_layout(const std::string& out, const std::string& work, const std::vector<std::vector<TarEntry>>& layers, const std::string& ref);

}  // namespace chrootctl::builder::fixtures
