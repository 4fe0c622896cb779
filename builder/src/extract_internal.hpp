#pragma once
// Shared by extract.cpp and oci.cpp: a libarchive reader that hashes the file as it reads it.

#include <archive.h>
#include <archive_entry.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "chrootctl/builder/extract.hpp"
#include "chrootctl/common/fd.hpp"
#include "chrootctl/common/sha256.hpp"

namespace chrootctl::builder::detail {

struct ArchiveFree {
  void operator()(struct archive* a) const { archive_read_free(a); }
};

class ArchiveReader {
 public:
  explicit ArchiveReader(Fd fd);
  /// Opens the archive for reading (every compression filter, tar formats only).
  Status open(const std::string& label);
  /// The next header; false at the end.
  Result<bool> next(archive_entry** entry);
  /// Reads what is left of the file and returns the SHA-256 of all of it.
  Result<std::string> finish_hash();
  struct archive* archive() {
    return m_archive.get();
  }

 private:
  static la_ssize_t read_cb(struct archive* a, void* self, const void** buff);
  Fd m_fd;
  std::vector<char> m_buf;
  Sha256 m_sha;
  std::uint64_t m_total = 0;
  int m_errno = 0;
  std::string m_label;
  std::unique_ptr<struct archive, ArchiveFree> m_archive;
};

/// Writes the data of a regular file entry; with `check`, each block goes to it first, and a
/// hole (a block that does not start where the last one ended) is refused.
Status write_entry_data(struct archive* a, int fd, archive_entry* entry, const std::string& path, std::uint64_t& bytes, UnpackCheck* check = nullptr);
EntryMeta meta_of(archive_entry* entry);
Result<ExtractStats> extract(const std::string& archive_path, TreeWriter& tree, const std::string& expected_sha256, const ExtractProgress& progress,
                             bool whiteouts, UnpackCheck* check = nullptr);

}  // namespace chrootctl::builder::detail
