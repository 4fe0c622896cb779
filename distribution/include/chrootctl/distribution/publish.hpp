#pragma once
/// Publishing images to a shared filesystem or a CVMFS repository, and registering them on
/// worker nodes (docs/signing.md).
///
///   DIR/NAME/BUILD-ID/root/        the tree, with its owners, modes, hard links and xattrs
///   DIR/NAME/BUILD-ID/manifest     the manifest
///   DIR/NAME/BUILD-ID/lock         the lock and
///   DIR/NAME/BUILD-ID/recipe.toml  the recipe (the signature covers the lock's digest)
///   DIR/NAME/BUILD-ID/signature    the signature, when the image is signed
///   DIR/catalogue.d/NAME.toml      the catalogue fragment: which build NAME is, its digest
///
/// A build is written to DIR/.publish-NAME.XXXXXX, checked entry by entry against its
/// manifest, and renamed to DIR/NAME/BUILD-ID, so a reader sees a whole build or none; the
/// fragment is replaced atomically after it. A regular file identical to one of an earlier
/// published build (same SHA-256, size, mode, owner and xattrs) is hard-linked to it instead of
/// copied. Workers register a published build with `add_from`, which keeps the manifest, lock,
/// recipe and signature in the local store and runs the published root in place, read-only.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "chrootctl/catalogue/registry.hpp"
#include "chrootctl/common/error.hpp"
#include "chrootctl/common/manifest.hpp"
#include "chrootctl/common/settings.hpp"

namespace chrootctl::distribution {

/// DIR/catalogue.d/NAME.toml.
struct Fragment {
  std::string name;
  std::string image;  ///< "NAME/BUILD-ID", relative to DIR
  std::string build_id;
  std::string recipe;
  std::string digest;
  std::string signer;  ///< key id of the signature, if any (informational: add --from checks it)
  std::int64_t published_at = 0;
};
std::string render_fragment(const Fragment& f);
/// Strict: unknown keys, a name that breaks the rules, an image that is not exactly NAME/BUILD-ID
/// are errors with file:line:col.
Result<Fragment> parse_fragment(std::string text, const std::string& label);

struct PublishOptions {
  bool link = true;             ///< hard-link files identical to earlier published builds' (false: copy everything)
  bool allow_unsigned = false;  ///< publish an image that has no signature
  unsigned threads = 0;         ///< hashing threads for the check of the published copy
  manifest::ProgressFn progress;
  std::function<void(const std::string&)> status;
  std::int64_t now = 0;
};

struct PublishResult {
  std::string name;
  std::string build_id;
  std::string published;  ///< DIR/NAME/BUILD-ID
  std::string fragment;   ///< DIR/catalogue.d/NAME.toml
  std::string digest;
  std::string signer;
  bool already_published = false;  ///< the build was in DIR already: only the fragment was written
  std::size_t entries = 0;
  std::uint64_t files = 0;         ///< regular files (hard-link groups count once)
  std::uint64_t files_linked = 0;  ///< of which hard-linked to an earlier published build
  std::uint64_t bytes_copied = 0;
  std::uint64_t bytes_linked = 0;
};

/// Publishes the current version of `name` into `dir` (created if missing; it and every
/// directory above it must belong to root or the user publishing and be unwritable by group
/// and others, sticky ancestors such as /tmp excepted). The image's tree
/// is read entry by entry and checked against its manifest as it is copied, and the published
/// copy is checked in full before it is renamed into place. Refuses an image without a
/// signature unless `allow_unsigned`, and one whose signature does not describe this build.
Result<PublishResult> publish(const Settings& s, const std::string& name, const std::string& dir, const PublishOptions& options = {});

struct AddFromOptions {
  /// Replace a name's current build by an older one, or by one of another recipe
  /// (catalogue::record_version refuses that otherwise).
  bool allow_downgrade = false;
  catalogue::SealedTreeCheck sealed_tree;  ///< a sealed build's filesystem against its manifest
  unsigned threads = 0;
  manifest::ProgressFn progress;
  std::function<void(const std::string&)> status;
  std::int64_t now = 0;
};

struct AddFromItem {
  std::string name;
  std::string fragment;  ///< the fragment read
  bool added = false;
  std::string message;  ///< why not, when !added
  catalogue::AddResult result;
};

/// Registers published builds: for each fragment DIR/catalogue.d/NAME.toml (every one when
/// `names` is empty), checks that DIR/NAME/BUILD-ID and its files are owned by root and not
/// writable by others (as `add` checks a build directory), copies manifest, lock, recipe.toml
/// and signature into STORE/NAME/from-BUILD-ID (with `source`, the published root), and calls
/// `add` with the published root: the signature is judged, the whole tree is verified against
/// the manifest and the stat record is kept locally. One item per fragment; errors only when
/// DIR cannot be read or a named fragment is missing.
Result<std::vector<AddFromItem>> add_from(const Settings& s, const std::string& dir, const std::vector<std::string>& names,
                                          const AddFromOptions& options = {});

}  // namespace chrootctl::distribution
