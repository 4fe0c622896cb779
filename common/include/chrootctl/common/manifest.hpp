#pragma once
/// The manifest engine: turns a directory tree into a canonical, checksummed list of entries
/// (format in docs/manifest.md), checks a tree against one, and compares two.

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chrootctl/common/error.hpp"
#include "chrootctl/common/json.hpp"
#include "chrootctl/common/sys.hpp"

namespace chrootctl::manifest {

enum class Type : char {
  file = 'f',
  dir = 'd',
  symlink = 'l',
  chardev = 'c',
  blockdev = 'b',
  fifo = 'p',
  socket = 's',
};
std::string_view type_name(Type t);

/// One tree entry. Paths are raw bytes, absolute inside the tree ("/" is the root itself).
struct Entry {
  std::string path;
  Type type = Type::file;
  std::uint32_t mode = 0;  ///< the 12 permission bits (setuid, setgid, sticky, rwx)
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::uint64_t size = 0;        ///< regular files only
  std::string sha256;            ///< lowercase hex, regular files only
  std::string target;            ///< symlinks only, raw bytes
  std::uint32_t rdev_major = 0;  ///< devices only
  std::uint32_t rdev_minor = 0;
  std::string link;                ///< hard-link group: the first path (in sort order) of the group; empty if none
  std::vector<sys::Xattr> xattrs;  ///< sorted by name
  std::int64_t mtime_sec = 0;      ///< recorded, not part of the digest
  std::uint32_t mtime_nsec = 0;

  // Not part of the manifest text: the stat record used by the fast check.
  std::uint64_t ino = 0;
  std::int64_t ctime_sec = 0;
  std::uint32_t ctime_nsec = 0;
  std::uint64_t dev = 0;
  std::uint64_t nlink = 0;
};

/// The image file of a sealed build (docs/manifest.md, "Sealed images"): one read-only
/// filesystem image of the tree with a dm-verity hash tree appended. Recorded on the manifest's
/// second line; not part of the tree digest, which is the tree's whether it is sealed or not.
/// The lock and the signature cover it (docs/signing.md).
struct Sealed {
  std::string format;             ///< the filesystem of the image: "erofs"
  std::uint64_t size = 0;         ///< bytes of the whole image file
  std::string sha256;             ///< of the whole image file, 64 lowercase hex digits
  std::uint64_t hash_offset = 0;  ///< where the verity superblock and hash tree start (a multiple of 4096); the filesystem is before it
  std::string root_hash;          ///< dm-verity root hash (SHA-256 tree of 4096-byte blocks), 64 hex digits
  std::string salt;               ///< dm-verity salt, 64 hex digits
  friend bool operator==(const Sealed&, const Sealed&) = default;
};
/// The image file's name in a sealed build directory (beside `manifest`, `lock`, ...).
inline constexpr const char* k_sealed_file = "image.erofs";
/// The formats a sealed image may have.
bool valid_sealed_format(std::string_view format);
/// The `#sealed ...` line (without its newline).
std::string sealed_line(const Sealed& s);
/// Parses a `#sealed ...` line strictly (canonical form only); nullopt if it is not one.
std::optional<Sealed> parse_sealed_line(std::string_view line);
/// Reads only the `#sealed` line of a manifest (cheap): nullopt for the manifest of a directory
/// image.
Result<std::optional<Sealed>> read_sealed(const std::string& manifest_path);

/// One entry that `import --strip` changed or left out, as it was in the manifest the image
/// was signed with (docs/manifest.md, "Stripped manifests").
struct StripRecord {
  /// What was done: "setuid-removed" or "device-removed" (the entry is not in the tree), or
  /// "setuid-cleared", "capability-dropped" or both joined by ',' (it is, changed).
  std::string action;
  Entry original;  ///< mtime is not recorded
};

struct Manifest {
  std::vector<Entry> entries;    ///< sorted by path bytes, unique
  std::optional<Sealed> sealed;  ///< the image file, for a sealed build
  /// For a tree that import stripped: the tree digest of the manifest it was made from (the one
  /// its signature covers), and every entry that was changed or left out, sorted by path.
  /// Both are empty for a tree recorded as it is. A sealed image is never stripped.
  std::string stripped_from;
  std::vector<StripRecord> stripped;

  /// Finds an entry by raw path, or nullptr.
  [[nodiscard]] const Entry* find(std::string_view path) const;
};

/// The largest manifest `load` and `parse` accept (a tree of several million entries fits).
inline constexpr std::size_t k_manifest_limit = std::size_t{512} << 20;

/// Progress of a long walk, for a terminal display.
struct Progress {
  std::uint64_t entries = 0;
  std::uint64_t files_hashed = 0;
  std::uint64_t bytes_hashed = 0;
};
using ProgressFn = std::function<void(const Progress&)>;

struct CreateOptions {
  unsigned threads = 0;  ///< hashing threads; 0 = one per online CPU
  bool hash = true;      ///< false: metadata only (sha256 left empty), for the fast check
  ProgressFn progress;   ///< called from the walking thread now and then
};

/// Walks `root` (dirfd-relative, never following a symlink, never leaving the tree) and builds
/// its manifest. A directory swapped for something else during the walk is an error.
Result<Manifest> create(const std::string& root, const CreateOptions& options = {});

/// The canonical text: a header line, one line per entry, and an end line holding the entry
/// count and the tree digest.
std::string serialize(const Manifest& m);
/// The canonical text and the tree digest, in one pass.
struct Rendered {
  std::string text;
  std::string digest;
};
Rendered render(const Manifest& m);
/// The tree digest: SHA-256 (hex) of the header and entry lines with their mtime fields removed.
std::string digest(const Manifest& m);
/// One entry's canonical line without the trailing newline; `with_mtime` false gives the form
/// that enters the digest.
std::string entry_line(const Entry& e, bool with_mtime = true);

/// Parses canonical text; errors name `filename:LINE`. Truncation, reordering and edits that
/// break the end line's digest are errors, and so is a stripped manifest whose records do not
/// lead back to the digest it names (original_digest). `end_digest`, when given, receives the
/// tree digest, which parse has checked against the end line (so the caller need not compute
/// digest() again).
Result<Manifest> parse(std::string_view text, const std::string& filename, std::string* end_digest = nullptr);
/// Reads and parses a manifest file: a regular file (a FIFO is read too) of at most
/// k_manifest_limit bytes that starts with the header line. A device, a larger file or other
/// bytes are refused before more is read.
Result<Manifest> load(const std::string& path, std::string* end_digest = nullptr);

/// The tree digest a signature of this image covers: digest(m) for a manifest of a tree as it
/// is; for a stripped one, the digest of the manifest it was made from, rebuilt from its strip
/// records after checking that each record differs from its entry only by what its action
/// removes (a setuid or setgid bit, a file capability, the whole setuid file or device node).
/// Errc::mismatch says which record does not hold.
Result<std::string> original_digest(const Manifest& m);

/// Whether an entry can give privileges to whoever runs or opens it on the host: a setuid or
/// setgid regular file, a file with a security.capability attribute, a character or block
/// device. nullopt, or what it is ("setuid root (mode 4755)", "character device 1,3", ...).
std::optional<std::string> privilege_of(const Entry& e);
/// Writes atomically (temp file, fsync, rename).
Status save(const Manifest& m, const std::string& path);

/// A NetBSD mtree(8) specification of the tree, verified by `mtree -p ROOT -f SPEC`.
std::string to_mtree(const Manifest& m);

/// What a manifest's end line says.
struct EndLine {
  std::uint64_t entries = 0;
  std::string digest;  ///< the tree digest, 64 hex digits
};
/// The end line (the last line) of a manifest's text, read alone: cheap, and it does not
/// validate the entries. Errors name `filename`.
Result<EndLine> parse_end_line(std::string_view text, const std::string& filename);
/// Reads only the digest on a manifest's end line (cheap; does not validate the entries).
Result<std::string> read_digest(const std::string& manifest_path);

/// The stat record kept beside a manifest (`MANIFEST.stat`): for every entry its type, mode,
/// owner and size as recorded, and the device, inode and ctime it had on the filesystem where
/// the tree was last fully verified. Host-specific, so not part of the tree digest; it names the
/// manifest digest it belongs to.
struct StatRecord {
  struct Item {
    std::uint32_t path_offset;  ///< into `paths`: the path below the root, NUL-terminated ("." for the root)
    Type type;
    std::uint32_t mode, uid, gid;
    std::uint64_t size, dev, ino;
    std::int64_t ctime_sec;
    std::uint32_t ctime_nsec;
  };
  std::string manifest_digest;
  std::vector<Item> items;  ///< in manifest order
  /// The NUL-separated path table, viewed where it was read (the record's file is mapped, not
  /// copied: this is loaded before every fast check); `storage` keeps it alive.
  std::string_view paths;
  std::shared_ptr<const void> storage;
  [[nodiscard]] const char* relative_path(const Item& i) const { return paths.data() + i.path_offset; }
  /// The items as manifest entries (type, mode, owner, size, device, inode, ctime only).
  [[nodiscard]] std::vector<Entry> entries() const;
};
/// `m` must come from a walk of the tree (it carries dev, ino and ctime).
std::string serialize_stat(const Manifest& m, const std::string& manifest_digest);
/// render() and serialize_stat() of a walked tree, the two built at the same time.
struct RenderedWithStat {
  Rendered manifest;
  std::string stat;
};
RenderedWithStat render_with_stat(const Manifest& m);
Result<StatRecord> parse_stat(std::string_view text, const std::string& filename);
Result<StatRecord> load_stat(const std::string& path);
std::string stat_path_for(const std::string& manifest_path);

// ---- comparing ----

struct FieldChange {
  std::string field;  ///< "type", "mode", "uid", "gid", "size", "sha256", "target", "rdev",
                      ///< "link", "xattr:NAME", "mtime", "ctime", "inode"
  std::string old_value;
  std::string new_value;
};

struct Difference {
  enum class Kind { added, removed, changed, mtime_only };
  Kind kind = Kind::changed;
  std::string path;
  std::vector<FieldChange> fields;  ///< for changed / mtime_only
};
std::string_view kind_name(Difference::Kind k);

struct DiffResult {
  std::vector<Difference> differences;  ///< in path order
  /// True when any difference is more than an mtime change (an mtime-only difference alone
  /// still counts as a match).
  [[nodiscard]] bool differs_beyond_mtime() const;
};

/// Compares `expected` (recorded) against `actual`, field by field.
DiffResult diff(const Manifest& expected, const Manifest& actual);

/// Full check: re-walks and re-hashes `root` and compares it to `expected`.
/// On return `actual` (if given) holds the fresh manifest, with its stat record.
Result<DiffResult> check(const std::string& root, const Manifest& expected, const CreateOptions& options = {}, Manifest* actual = nullptr);

/// Fast check: compares type, mode, owner, size, device, inode and ctime of every recorded entry
/// against the tree, without reading contents or directories. The kernel updates ctime on every
/// change of content, mode, owner, link count or xattrs, and no system call sets it, so an
/// unchanged ctime and inode cover xattrs, hard links and link targets too; an unchanged
/// directory ctime means no entry was added, removed or renamed in it. When anything differs,
/// a metadata walk of the tree lists every difference (ctime changes mean "run a full check").
Result<DiffResult> check_fast(const std::string& root, const StatRecord& record, unsigned threads = 0);

/// Renders differences for people: one line per difference, "changed  /path  field old -> new".
std::string render_text(const DiffResult& d);
/// Writes differences as a JSON array value.
void write_json(JsonWriter& w, const DiffResult& d);

}  // namespace chrootctl::manifest
