#pragma once
/// Packing a registered image into one file for another host, and unpacking one (format in
/// docs/signing.md). An export is a tar archive (pax, zstd) that holds, in this order:
///
///   chrootctl-export.toml   the catalogue entry: name, recipe, build id, tree digest, signer
///   manifest                the image's manifest
///   lock                    the build's lock
///   recipe.toml             the recipe as built
///   signature               when the image is signed
///   root/...                the tree: owners, modes, hard links, devices, FIFOs, xattrs
///
/// manifest.stat (host-specific) is left out and rebuilt on import. The tree is read in
/// manifest order and each entry is compared with the manifest as it is packed (contents
/// through their SHA-256), so a tree that changed since it was verified is never exported.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "chrootctl/catalogue/catalogue.hpp"
#include "chrootctl/catalogue/registry.hpp"
#include "chrootctl/common/error.hpp"
#include "chrootctl/common/manifest.hpp"
#include "chrootctl/common/privilege.hpp"
#include "chrootctl/common/settings.hpp"
#include "chrootctl/common/unpack_check.hpp"

namespace chrootctl::distribution {

/// The first member of an export, chrootctl-export.toml.
struct ExportEntry {
  std::string name;  ///< the catalogue name on the exporting host
  std::string recipe;
  std::string build_id;
  std::string digest;                ///< tree digest
  std::string signer;                ///< key id of the signature, if any (informational: import checks it)
  std::vector<std::string> aliases;  ///< informational: import does not create aliases
  std::int64_t exported_at = 0;
};
std::string render_export_entry(const ExportEntry& e);
Result<ExportEntry> parse_export_entry(std::string text, const std::string& label);

struct ExportOptions {
  int level = 3;         ///< zstd compression level
  unsigned threads = 0;  ///< zstd worker threads; 0 = one per CPU
  std::function<void(std::uint64_t entries, std::uint64_t bytes)> progress;
  std::int64_t now = 0;
};

struct ExportResult {
  std::string name;    ///< the entry exported (an alias resolves to it)
  std::string image;   ///< its build directory
  std::string output;  ///< the archive written
  std::string digest;
  std::string signer;  ///< key id of the signature packed, or empty
  std::size_t entries = 0;
  std::uint64_t bytes = 0;         ///< file contents packed
  std::uint64_t archive_size = 0;  ///< compressed size
};

/// Packs the current version of `name` into `output` (written to a temporary file beside it,
/// fsynced and renamed into place; a failure leaves nothing). Refuses an image whose tree no
/// longer matches its manifest, whose manifest is not the registered one, or that holds what
/// an import could not restore (sockets, trusted.* and system.* xattrs). An unsigned image is
/// exported (import decides whether to accept it).
Result<ExportResult> export_image(const Settings& s, const std::string& name, const std::string& output, const ExportOptions& options = {});

// ---- import ----

struct UnpackStats {
  std::uint64_t entries = 0;
  std::uint64_t bytes = 0;
};
/// Unpacks the tar archive `archive` into the existing empty directory `dir` without ever
/// writing outside it (no absolute names, no "..", nothing through a symlink). The catalogue
/// library does not link the builder; the command line passes the builder's extraction
/// (TreeWriter + extract_archive), so imports get exactly the protections of the builder's
/// archive base.
/// Every entry goes through `check` before it is written (common/unpack_check.hpp).
using Unpacker = std::function<Result<UnpackStats>(const std::string& archive, const std::string& dir, UnpackCheck& check)>;

/// What import --strip changed in one entry.
struct StrippedEntry {
  std::string path;
  std::string action;  ///< "setuid-cleared", "setuid-removed", "capability-dropped", "device-removed", ...
  std::string detail;  ///< what the entry was ("setuid root (mode 4755)")
};
/// The site's privilege policy applied to a manifest: what the tree will be (entries changed or
/// left out, with strip records leading back to the signed manifest), and every change.
struct StripPlan {
  manifest::Manifest result;
  std::vector<StrippedEntry> changes;  ///< in path order; empty when the policy changes nothing
};
/// Decides, from the manifest alone, what `policy` does to each entry (the builder's decision,
/// common/privilege.hpp). Members of one hard-link group treated differently are refused.
Result<StripPlan> plan_import_strip(const manifest::Manifest& m, const PrivilegePolicy& policy);

struct ImportOptions {
  std::string as;  ///< catalogue name (default: the name in the archive)
  /// Accept an archive without a valid signature by a trusted key (missing, or by a key this
  /// host does not trust). Never accepted: a signature that does not verify or does not match
  /// the archive, a revoked key, or anything unsigned when require_signature is set.
  bool allow_unsigned = false;
  /// Replace a name's current build by an older one, or by one of another recipe
  /// (catalogue::record_version refuses that otherwise).
  bool allow_downgrade = false;
  /// A sealed image's filesystem against its manifest (catalogue/sealed.hpp), before it is
  /// registered.
  catalogue::SealedTreeCheck sealed_tree;
  /// Apply the site's strip policy ([strip] in the config) to what it does not allow: clear
  /// setuid and setgid bits (or leave such files out), drop file capabilities, leave device
  /// nodes out, recording each change in the manifest's header. Without it such an archive is
  /// refused before anything is written.
  bool strip = false;
  Unpacker unpack;       ///< required
  unsigned threads = 0;  ///< hashing threads for the check of the tree
  manifest::ProgressFn progress;
  std::function<void(const std::string&)> status;  ///< one line per step
  std::int64_t now = 0;
};

struct ImportResult {
  std::string name;
  std::string image;            ///< STORE/RECIPE/BUILD-ID
  std::string signature_state;  ///< "signed" or "unsigned"
  std::string signer;
  std::string signature_note;           ///< why it is unsigned, if it is
  bool already_present = false;         ///< the build was in the store already: it was verified and registered
  std::vector<StrippedEntry> stripped;  ///< what --strip changed
  UnpackStats unpacked;
  catalogue::AddResult added;
};

/// Imports an export: reads its entry, manifest, lock, recipe and signature first and judges
/// the signature (an archive this host may not use is refused before anything is written),
/// unpacks it into STORE/.staging/import.XXXXXX (flock-held, like a build), checks that
/// nothing but the expected files and root/ came out of it, verifies every entry of the tree
/// against the manifest, writes the stat record, renames the staging directory to
/// STORE/RECIPE/BUILD-ID and registers it under the archive's name (or `as`). Any refusal —
/// a truncated or damaged archive, a tree that does not match, a missing or bad signature —
/// removes the staging directory and changes nothing in the catalogue. Refusals are
/// Errc::mismatch (content) or Errc::permission (signature, ownership).
Result<ImportResult> import_image(const Settings& s, const std::string& archive, const ImportOptions& options);

}  // namespace chrootctl::distribution
