#pragma once
/// The `sign` verb: check a build against its manifest, sign its statement with a private key
/// and record the signer in the catalogue (docs/signing.md). Keys, statements and judging
/// signatures are the catalogue's (chrootctl/catalogue/sign.hpp): resolve judges them.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "chrootctl/catalogue/sealed.hpp"
#include "chrootctl/catalogue/sign.hpp"
#include "chrootctl/common/error.hpp"
#include "chrootctl/common/manifest.hpp"
#include "chrootctl/common/settings.hpp"

namespace chrootctl::distribution {

struct SignOptions {
  unsigned threads = 0;                    ///< hashing threads for the check of the tree
  catalogue::SealedTreeCheck sealed_tree;  ///< a sealed build's filesystem against its manifest
  manifest::ProgressFn progress;
  std::int64_t now = 0;
};

struct SignResult {
  std::string image;           ///< the build directory signed
  std::string signature_file;  ///< IMAGE/signature
  std::string key_id;
  catalogue::Statement statement;
  std::size_t entries = 0;            ///< manifest entries checked before signing
  std::vector<std::string> recorded;  ///< catalogue entries whose signer is now this key
  std::vector<std::string> notes;
};

/// Signs the image `target`: a catalogue name (its current version) or, when it contains a
/// '/', a build directory (STORE/RECIPE/BUILD-ID with root/, manifest, lock and recipe.toml).
/// The whole tree is first checked against the manifest (nothing is signed that does not
/// match), then the statement is signed with the private key at `key_file` and written to
/// IMAGE/signature atomically (mode 0644). Catalogue versions of that image record the key as
/// their signer when this host trusts it, and record no signer otherwise.
Result<SignResult> sign_image(const Settings& s, const std::string& target, const std::string& key_file, const SignOptions& options = {});

}  // namespace chrootctl::distribution
