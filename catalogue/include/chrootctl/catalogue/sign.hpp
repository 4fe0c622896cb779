#pragma once
/// Signed images (formats in docs/signing.md): Ed25519 keys through OpenSSL 3, the statement a
/// signature covers, the signature file kept in a build directory (BUILD-DIR/signature), the
/// site's trusted and revoked public keys, and the verdict that add, verify, resolve, import
/// and `add --from` act on.
///
/// A signature covers a small canonical statement that binds the image's tree digest (which
/// covers every entry of the root through the manifest), the SHA-256 of its lock, its build id
/// and its recipe name. Checking one therefore costs reading two small files and one Ed25519
/// verification, never a walk of the tree: the catalogue already knows that the tree matches
/// the digest.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chrootctl/common/error.hpp"
#include "chrootctl/common/manifest.hpp"
#include "chrootctl/common/settings.hpp"

struct evp_pkey_st;

namespace chrootctl::catalogue {

/// Hex digits of a key id: the first 16 of the SHA-256 of the raw 32-byte public key. It only
/// names a key; a signature is always checked against the whole public key.
inline constexpr std::size_t k_key_id_digits = 16;

/// An Ed25519 key read from a PEM file or freshly generated. Copies share the key.
class Key {
 public:
  [[nodiscard]] const std::string& id() const { return m_id; }
  /// The raw 32-byte public key.
  [[nodiscard]] const std::string& raw_public() const { return m_raw; }
  /// Where it was read from ("" for a generated key).
  [[nodiscard]] const std::string& source() const { return m_source; }
  [[nodiscard]] bool has_private() const { return m_private; }

  /// The 64-byte Ed25519 signature of `message` (needs the private key).
  [[nodiscard]] Result<std::string> sign(std::string_view message) const;
  /// True when `signature` is this key's valid signature of `message`.
  [[nodiscard]] bool verify(std::string_view message, std::string_view signature) const;
  /// PEM (SubjectPublicKeyInfo, "BEGIN PUBLIC KEY").
  [[nodiscard]] Result<std::string> public_pem() const;
  /// PEM (unencrypted PKCS#8, "BEGIN PRIVATE KEY").
  [[nodiscard]] Result<std::string> private_pem() const;

 private:
  friend Result<Key> generate_key();
  friend Result<Key> parse_key(std::string_view pem, const std::string& label, bool want_private);
  Key() = default;
  static Result<Key> from(evp_pkey_st* pkey, std::string source, bool is_private);
  std::shared_ptr<evp_pkey_st> m_pkey;
  std::string m_id;
  std::string m_raw;
  std::string m_source;
  bool m_private = false;
};

/// "0123456789abcdef" for a raw public key.
std::string key_id_of(std::string_view raw_public);

/// A new Ed25519 key pair from the system's random source.
Result<Key> generate_key();
/// Parses a PEM key: a private key when `want_private` (an encrypted one is refused: chrootctl
/// never prompts), otherwise a public key or, for convenience, the public half of a private one.
/// Anything but Ed25519 is refused. `label` names the key in errors.
Result<Key> parse_key(std::string_view pem, const std::string& label, bool want_private);
/// Reads a private key file for signing: a regular file (not a symlink) owned by the user
/// running chrootctl and neither readable nor writable by group or others, like ssh demands.
Result<Key> load_private_key(const std::string& path);
/// Reads a public key (or the public half of a private key) with no ownership checks.
Result<Key> load_public_key(const std::string& path);

struct GeneratedKey {
  std::string id;
  std::string private_file;  ///< DIR/KEYID.key, mode 0600
  std::string public_file;   ///< DIR/KEYID.pub, mode 0644: copy it into trusted.d on every node
};
/// Generates a key pair into `dir` (created with mode 0700 when missing). Never overwrites.
Result<GeneratedKey> generate_key_files(const std::string& dir);

// ---- what is signed ----

/// The facts a signature binds. Digests are 64 lowercase hex digits.
struct Statement {
  std::string recipe;       ///< the recipe's name (STORE/RECIPE/BUILD-ID)
  std::string build_id;     ///< the build directory's name
  std::string tree_digest;  ///< the manifest's tree digest
  std::string lock_digest;  ///< SHA-256 of the build's `lock` file, byte for byte
  /// A sealed image (statement version 2): its image file's SHA-256 and dm-verity root hash.
  std::string sealed_sha256;
  std::string root_hash;
  friend bool operator==(const Statement&, const Statement&) = default;
};
/// The canonical bytes that are signed (five lines, seven for a sealed image, each ending in
/// "\n"; see docs/signing.md).
std::string render_statement(const Statement& st);
/// Fills the sealed fields of `st` from a manifest's #sealed line (none: left empty).
Statement with_sealed(Statement st, const std::optional<manifest::Sealed>& sealed);
/// Accepts only the canonical form.
Result<Statement> parse_statement(std::string_view text, const std::string& label);

/// A signature file: who signed, the signature and the exact statement bytes signed.
struct Signature {
  std::string key_id;
  std::string value;           ///< 64 raw bytes
  std::string statement_text;  ///< the bytes the signature is over
  Statement statement;
};
std::string render_signature(const Signature& sig);
/// Accepts only the canonical form; errors name `label`.
Result<Signature> parse_signature(std::string_view text, const std::string& label);

/// Recipe names and build ids that may appear in a statement: 1 to 64 bytes of letters, digits,
/// '.', '_', '-' and '+', starting with a letter or a digit (they become directory names).
bool valid_word(std::string_view s);

// ---- trust ----

/// The keys a site trusts and the keys it revoked. Trusted keys are the `*.pub` files in
/// Settings::trusted_keys (default /etc/chrootctl/trusted.d); revoked keys are the `*.pub` files
/// in the `revoked.d` directory beside it. Both directories, every directory above them and
/// every key file must be owned by root and not writable by group or others (whoever can write
/// them decides what runs). A missing revoked.d means nothing is revoked; a missing trusted.d
/// means no key is trusted.
struct TrustStore {
  std::string trusted_dir;
  std::string revoked_dir;
  bool trusted_dir_exists = false;
  std::vector<Key> trusted;
  std::vector<Key> revoked;
  /// The revoked key whose public key is `k`'s, or nullptr.
  [[nodiscard]] const Key* revoked_key(const Key& k) const;
  /// Trusted keys whose id is `id`.
  [[nodiscard]] std::vector<const Key*> trusted_with_id(std::string_view id) const;
};
/// DIR/../revoked.d for a trusted directory DIR.
std::string revoked_dir_for(const std::string& trusted_dir);
Result<TrustStore> load_trust_store(const std::string& trusted_dir);

/// How a signature stands under the site's policy.
struct SignatureVerdict {
  /// The image may be used (registered, resolved, imported) as far as its signature goes.
  bool acceptable = false;
  /// "signed" (a valid signature by a trusted, unrevoked key), "unsigned" (no signature, or
  /// one by a key this host does not trust), "revoked", "bad-signature" (the signature does not
  /// verify, or its statement does not describe this image) or "untrusted" (the trusted keys
  /// could not be read safely).
  std::string state;
  std::string signer;             ///< the key id, when "signed"
  std::string key_id;             ///< the key the signature names, whatever the state (empty: no signature)
  std::string untrusted_because;  ///< for a key this host does not trust: why ("DIR does not exist", ...)
  std::string reason;             ///< why it is not "signed" (also set for acceptable unsigned images)
};

/// Judges the signature text of an image (nullopt: there is none) against the statement the
/// image must carry. `expected` is produced lazily (it reads the lock) and only when a
/// signature verifies. Policy:
///  * "signed" is acceptable;
///  * "unsigned" is acceptable only when `unsigned_ok` (the caller decides: not when
///    require_signature is set, not for an image registered as signed);
///  * "revoked", "bad-signature" and "untrusted" are never acceptable.
/// `trust` is loaded on first use when null (so an unsigned image costs no key reading).
struct JudgeInput {
  const Settings* settings = nullptr;
  std::optional<std::string> signature_text;
  std::string signature_label;  ///< names the signature in messages (a path)
  std::function<Result<Statement>()> expected;
  bool unsigned_ok = false;
  const TrustStore* trust = nullptr;
};
SignatureVerdict judge_signature(const JudgeInput& in);

/// The statement an image directory must carry: `recipe`, the directory's name as build id,
/// `tree_digest`, and the SHA-256 of IMAGE/lock (a root-owned regular file nobody else can
/// write).
Result<Statement> image_statement(const std::string& image, const std::string& recipe, const std::string& tree_digest,
                                  const std::optional<manifest::Sealed>& sealed);
/// Reads IMAGE/signature (nullopt when there is none) after checking that it is a regular file
/// owned by root and unwritable by group and others.
Result<std::optional<std::string>> read_image_signature(const std::string& image);

/// judge_signature for a registered image directory: what resolve and verify ask. `was_signed`
/// is true when the catalogue recorded a signer (such an image must stay signed).
/// `sealed` is the image file's record for a sealed image (its statement must name it).
SignatureVerdict judge_image(const Settings& s, const std::string& image, const std::string& recipe, const std::string& build_id,
                             const std::string& tree_digest, const std::optional<manifest::Sealed>& sealed, bool was_signed,
                             const TrustStore* trust = nullptr);

}  // namespace chrootctl::catalogue
