#pragma once
/// Unpacking rootfs tarballs and OCI images into a tree, through TreeWriter: every entry is
/// created dirfd-relative and never through a symlink, so an archive cannot write outside the
/// root (absolute names, "..", or a symlink planted by an earlier entry are refused).

#include <cstdint>
#include <functional>
#include <string>

#include "chrootctl/common/error.hpp"
#include "chrootctl/common/tree_writer.hpp"
#include "chrootctl/common/unpack_check.hpp"

namespace chrootctl::builder {

struct ExtractStats {
  std::uint64_t entries = 0;
  std::uint64_t bytes = 0;           ///< file data written
  std::string sha256;                ///< of the archive file as read (compressed bytes)
  std::int64_t newest_mtime = 0;     ///< the newest entry mtime (a default SOURCE_DATE_EPOCH)
  std::uint64_t whiteouts = 0;       ///< OCI whiteouts applied
  std::uint64_t xattrs_skipped = 0;  ///< trusted.* and system.* attributes not restored
};

using ExtractProgress = std::function<void(const ExtractStats&)>;

/// Extracts the tar archive at `archive` (plain, gzip, xz, zstd, bzip2, lzma; detected) into
/// the writer's tree, keeping owners, modes (setuid bits included), hard links, symlinks,
/// device nodes, FIFOs, mtimes and xattrs (security.capability included; trusted.* and system.*
/// are not restored, and counted in xattrs_skipped). The archive is hashed
/// as it is read, so what is checked against `expected_sha256` (if not empty) is exactly what
/// was extracted; a mismatch is an error (Errc::mismatch) after extraction, and the caller
/// throws the tree away. Does not call finish() on the writer.
///
/// With `check`, every entry is put to it before anything of it is written (common/
/// unpack_check.hpp): it may refuse the entry, which stops the extraction at once, leave it out,
/// or change its mode and attributes; a regular file's data passes through it block by block
/// before each block is written. A file with holes is then refused rather than written sparse.
Result<ExtractStats> extract_archive(const std::string& archive, TreeWriter& tree, const std::string& expected_sha256 = {},
                                     const ExtractProgress& progress = {}, UnpackCheck* check = nullptr);

/// Applies one OCI/Docker layer: like extract_archive, plus whiteouts: `.wh.NAME` removes NAME
/// from lower layers and `.wh..wh..opq` empties its directory of lower-layer entries.
Result<ExtractStats> apply_layer(const std::string& layer, TreeWriter& tree, const ExtractProgress& progress = {});

/// Unpacks a `docker save` tarball or an OCI image layout tarball at `tarball` (pinned by
/// `expected_sha256`) into the tree: its layers in order, with whiteouts. `image` picks one
/// image when the tarball holds several (a RepoTag, or an org.opencontainers.image.ref.name).
/// `scratch` is a directory for the unpacked blobs (removed by the caller). Calls finish().
struct OciResult {
  std::string sha256;
  std::string image;                ///< the image chosen
  std::vector<std::string> layers;  ///< layer digests or paths, in order
  std::int64_t newest_mtime = 0;
};
Result<OciResult> extract_oci(const std::string& tarball, const std::string& expected_sha256, const std::string& image, const std::string& scratch,
                              TreeWriter& tree, const ExtractProgress& progress = {});

}  // namespace chrootctl::builder
