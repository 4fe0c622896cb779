// Ed25519 keys, the signed statement, signature files, the trust store and the verdict.
#include "chrootctl/catalogue/sign.hpp"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "chrootctl/catalogue/safety.hpp"
#include "chrootctl/catalogue/store.hpp"
#include "chrootctl/common/files.hpp"
#include "chrootctl/common/sha256.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/common/toml.hpp"
#include "chrootctl/common/tree_path.hpp"

namespace chrootctl::catalogue {

namespace {

constexpr const char* k_statement_header = "chrootctl-image-statement 1\n";
constexpr const char* k_statement_header_sealed = "chrootctl-image-statement 2\n";
constexpr const char* k_signature_header = "#chrootctl-signature 1\n";
constexpr const char* k_statement_marker = "#statement\n";
constexpr std::size_t k_signature_bytes = 64;
constexpr std::size_t k_public_bytes = 32;

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};

// The newest OpenSSL error, for messages; clears the queue so the next call starts clean.
std::string openssl_error() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

// A private key is never decrypted interactively: a prompt on the terminal of a batch tool is
// a hang, and an encrypted key is refused with a clear message instead.
int no_passphrase(char*, int, int, void*) { return -1; }

// Secrets read from disk are wiped from memory once parsed.
struct Wipe {
  std::string& s;
  ~Wipe() { OPENSSL_cleanse(s.data(), s.size()); }
};

bool is_key_id(std::string_view s) {
  return s.size() == k_key_id_digits && std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// Splits text into lines that each ended in '\n'; nullopt if the text does not end in one.
std::optional<std::vector<std::string_view>> lines_of(std::string_view text) {
  if (text.empty() || text.back() != '\n') return std::nullopt;
  std::vector<std::string_view> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto nl = text.find('\n', pos);
    out.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}

// "KEY VALUE" with exactly one space; nullopt when the line is not that.
std::optional<std::string_view> field(std::string_view line, std::string_view key) {
  if (line.size() <= key.size() + 1 || line.substr(0, key.size()) != key || line[key.size()] != ' ') return std::nullopt;
  return line.substr(key.size() + 1);
}

Result<std::vector<Key>> load_key_dir(const std::string& dir, const std::string& what) {
  std::vector<Key> keys;
  auto fd = TRY(sys::open_dir(dir));
  auto names = TRY(sys::read_dir(fd.get(), false));
  std::sort(names.begin(), names.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  for (const auto& d : names) {
    if (d.name.empty() || d.name[0] == '.' || !d.name.ends_with(".pub")) continue;
    const std::string path = str(dir, "/", d.name);
    auto text = TRY(with_context(read_required_file(path, 64u << 10), str("reading the ", what, " ", path)));
    if (text.find("PRIVATE KEY-----") != std::string::npos) {
      OPENSSL_cleanse(text.data(), text.size());
      return fail(Errc::permission, str(quote(path), " holds a private key; only public keys (KEYID.pub) belong in ", dir));
    }
    keys.push_back(TRY(parse_key(text, path, false)));
  }
  return keys;
}

}  // namespace

Result<std::optional<std::string>> read_trusted_file(const std::string& path, std::size_t limit) {
  auto fd = sys::open_path(path, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
  if (!fd) {
    if (fd.error().sys_errno() == ENOENT) return std::optional<std::string>();
    if (fd.error().sys_errno() == ELOOP) return fail(Errc::permission, str(quote(path), " is a symbolic link"));
    return fail(std::move(fd.error()));
  }
  auto st = TRY(sys::fstat(fd->get()));
  TRY(check_trusted_file(st, path));
  auto text = TRY(with_context(sys::read_fd(fd->get(), limit), str("reading ", path)));
  return std::optional<std::string>(std::move(text));
}

Result<std::string> read_required_file(const std::string& path, std::size_t limit) {
  auto text = TRY(read_trusted_file(path, limit));
  if (!text) return fail(Errc::not_found, str(quote(path), " does not exist"));
  return std::move(*text);
}

Result<std::string> recipe_name_of(const std::string& text, const std::string& label) {
  auto doc = TRY(parse_toml(text, label));
  if (const auto* n = doc.table.get("name"); n && n->is_string()) return n->as_string()->get();
  return std::string();
}

// ---- keys ----

std::string key_id_of(std::string_view raw_public) { return Sha256::hex(raw_public).substr(0, k_key_id_digits); }

Result<Key> Key::from(evp_pkey_st* pkey, std::string source, bool is_private) {
  Key k;
  k.m_pkey.reset(pkey, EVP_PKEY_free);
  if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_ED25519)
    return fail(Errc::invalid_argument, str(source.empty() ? std::string("the key") : quote(source), " is not an Ed25519 key"));
  unsigned char raw[k_public_bytes];
  std::size_t len = sizeof raw;
  if (EVP_PKEY_get_raw_public_key(pkey, raw, &len) != 1 || len != k_public_bytes)
    return fail(Errc::internal, str("EVP_PKEY_get_raw_public_key: ", openssl_error()));
  k.m_raw.assign(reinterpret_cast<const char*>(raw), len);
  k.m_id = key_id_of(k.m_raw);
  k.m_source = std::move(source);
  k.m_private = is_private;
  return k;
}

Result<Key> generate_key() {
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(EVP_PKEY_CTX_new_from_name(nullptr, "ED25519", nullptr));
  if (!ctx) return fail(Errc::unsupported, str("EVP_PKEY_CTX_new_from_name(ED25519): ", openssl_error()));
  EVP_PKEY* pkey = nullptr;
  if (EVP_PKEY_keygen_init(ctx.get()) != 1 || EVP_PKEY_generate(ctx.get(), &pkey) != 1)
    return fail(Errc::internal, str("generating an Ed25519 key: ", openssl_error()));
  return Key::from(pkey, "", true);
}

namespace {

// The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): SEQUENCE { SEQUENCE { OID
// 1.3.101.112 }, BIT STRING (33 bytes, no unused bits) }, followed by the 32-byte key.
constexpr unsigned char k_ed25519_spki_prefix[] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};

// The raw key of a PEM Ed25519 public key in the one form `key generate` and `openssl pkey
// -pubout` write, or nullopt for anything else (left to OpenSSL's PEM decoder). Trusted keys
// are read before every job launch, and OpenSSL's generic decoder costs about a millisecond.
std::optional<std::string> simple_ed25519_public(std::string_view pem) {
  constexpr std::string_view begin = "-----BEGIN PUBLIC KEY-----\n", end = "-----END PUBLIC KEY-----\n";
  if (!pem.starts_with(begin) || !pem.ends_with(end)) return std::nullopt;
  std::string body(pem.substr(begin.size(), pem.size() - begin.size() - end.size()));
  if (body.empty() || body.back() != '\n' || body.find('\n') != body.size() - 1) return std::nullopt;
  body.pop_back();
  auto der = base64_decode(body);
  if (!der || der->size() != sizeof k_ed25519_spki_prefix + k_public_bytes ||
      der->compare(0, sizeof k_ed25519_spki_prefix, reinterpret_cast<const char*>(k_ed25519_spki_prefix), sizeof k_ed25519_spki_prefix) != 0)
    return std::nullopt;
  return der->substr(sizeof k_ed25519_spki_prefix);
}

}  // namespace

Result<Key> parse_key(std::string_view pem, const std::string& label, bool want_private) {
  if (!want_private) {
    if (auto raw = simple_ed25519_public(pem)) {
      EVP_PKEY* pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(raw->data()), raw->size());
      if (!pkey) return fail(Errc::parse, str(quote(label), " is not a valid Ed25519 public key (", openssl_error(), ")"));
      return Key::from(pkey, label, false);
    }
  }
  if (pem.size() > static_cast<std::size_t>(INT32_MAX)) return fail(Errc::invalid_argument, str(quote(label), " is too large to be a key"));
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) throw std::bad_alloc();
  const bool has_private_pem = pem.find("PRIVATE KEY-----") != std::string_view::npos;
  if (pem.find("ENCRYPTED PRIVATE KEY-----") != std::string_view::npos)
    return fail(Errc::unsupported, str(quote(label), " is encrypted; chrootctl reads only unencrypted keys (protect the file instead: mode 0600)"));
  EVP_PKEY* pkey = nullptr;
  if (want_private || has_private_pem) {
    pkey = PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr);
    if (!pkey) return fail(Errc::parse, str(quote(label), " is not a PEM private key (", openssl_error(), ")"));
  } else {
    pkey = PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr);
    if (!pkey) return fail(Errc::parse, str(quote(label), " is not a PEM public key (", openssl_error(), ")"));
  }
  return Key::from(pkey, label, want_private);
}

Result<std::string> Key::sign(std::string_view message) const {
  if (!m_private) return fail(Errc::invalid_argument, str("key ", m_id, " has no private half"));
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx) throw std::bad_alloc();
  // Ed25519 hashes the message itself (PureEdDSA): no digest is named.
  if (EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, m_pkey.get()) != 1)
    return fail(Errc::internal, str("EVP_DigestSignInit: ", openssl_error()));
  unsigned char sig[k_signature_bytes];
  std::size_t len = sizeof sig;
  if (EVP_DigestSign(ctx.get(), sig, &len, reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1 || len != k_signature_bytes)
    return fail(Errc::internal, str("EVP_DigestSign: ", openssl_error()));
  return std::string(reinterpret_cast<const char*>(sig), len);
}

bool Key::verify(std::string_view message, std::string_view signature) const {
  if (signature.size() != k_signature_bytes) return false;
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx) throw std::bad_alloc();
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, m_pkey.get()) != 1) {
    ERR_clear_error();
    return false;
  }
  const int rc = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                                  reinterpret_cast<const unsigned char*>(message.data()), message.size());
  ERR_clear_error();
  return rc == 1;
}

Result<std::string> Key::public_pem() const {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (!bio) throw std::bad_alloc();
  if (PEM_write_bio_PUBKEY(bio.get(), m_pkey.get()) != 1) return fail(Errc::internal, str("PEM_write_bio_PUBKEY: ", openssl_error()));
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

Result<std::string> Key::private_pem() const {
  if (!m_private) return fail(Errc::invalid_argument, str("key ", m_id, " has no private half"));
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_secmem()));
  if (!bio) throw std::bad_alloc();
  if (PEM_write_bio_PrivateKey(bio.get(), m_pkey.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
    return fail(Errc::internal, str("PEM_write_bio_PrivateKey: ", openssl_error()));
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

Result<Key> load_private_key(const std::string& path) {
  auto fd = sys::open_path(path, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
  if (!fd) {
    if (fd.error().sys_errno() == ELOOP) return fail(Errc::permission, str("private key ", quote(path), " is a symbolic link"));
    return fail(std::move(fd.error()).add_context("reading the private key"));
  }
  auto st = TRY(sys::fstat(fd->get()));
  if (!S_ISREG(st.st_mode)) return fail(Errc::permission, str("private key ", quote(path), " is not a regular file"));
  const uid_t me = ::geteuid();
  if (st.st_uid != me)
    return fail(Errc::permission, str("private key ", quote(path), " is owned by uid ", st.st_uid, ", not by the user signing (uid ", me, ")"));
  if (st.st_mode & 077)
    return fail(Errc::permission,
                str("private key ", quote(path), " is accessible by group or others (mode ", mode_octal(st.st_mode & 07777), "); make it mode 0600"));
  auto text = TRY(with_context(sys::read_fd(fd->get(), 64u << 10), str("reading the private key ", path)));
  Wipe wipe{text};
  return parse_key(text, path, true);
}

Result<Key> load_public_key(const std::string& path) {
  auto text = TRY(with_context(sys::read_file(path, 64u << 10), str("reading the key ", path)));
  Wipe wipe{text};  // it may be a private key
  return parse_key(text, path, false);
}

Result<GeneratedKey> generate_key_files(const std::string& dir) {
  auto st = sys::lstat_path(dir);
  if (!st) {
    if (st.error().sys_errno() != ENOENT) return fail(std::move(st.error()));
    TRY(sys::mkdir_path(dir, 0700));
  } else if (!S_ISDIR(st->st_mode)) {
    return fail(Errc::exists, str(quote(dir), " exists and is not a directory"));
  }
  auto key = TRY(generate_key());
  GeneratedKey out;
  out.id = key.id();
  out.private_file = str(dir, "/", key.id(), ".key");
  out.public_file = str(dir, "/", key.id(), ".pub");
  auto dfd = TRY(sys::open_dir(dir));
  auto write_new = [&](const std::string& name, const std::string& data, mode_t mode) -> Status {
    auto fd = TRY(sys::open_at(dfd.get(), name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode));
    // The mode is set explicitly: a umask must not widen nor narrow what was asked for.
    if (::fchmod(fd.get(), mode) != 0) return fail_errno(str("fchmod(", quote(dir + "/" + name), ", ", mode_octal(mode), ")"), errno);
    TRY(sys::write_all(fd.get(), data));
    return sys::fsync(fd.get());
  };
  std::string priv = TRY(key.private_pem());
  Wipe wipe{priv};
  TRY(write_new(key.id() + ".key", priv, 0600));
  const std::string pub = TRY(key.public_pem());
  TRY(write_new(key.id() + ".pub", pub, 0644));
  TRY(sys::fsync(dfd.get()));
  return out;
}

// ---- statements and signature files ----

bool valid_word(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); };
  if (!alnum(s[0])) return false;
  return std::all_of(s.begin(), s.end(), [&](char c) { return alnum(c) || c == '.' || c == '_' || c == '-' || c == '+'; });
}

std::string render_statement(const Statement& st) {
  const bool sealed = !st.sealed_sha256.empty();
  std::string t = str(sealed ? k_statement_header_sealed : k_statement_header, "recipe ", st.recipe, "\nbuild-id ", st.build_id,
                      "\ntree-digest sha256:", st.tree_digest, "\nlock-digest sha256:", st.lock_digest, "\n");
  if (sealed) t += str("image-sha256 sha256:", st.sealed_sha256, "\nverity-root-hash sha256:", st.root_hash, "\n");
  return t;
}

Statement with_sealed(Statement st, const std::optional<manifest::Sealed>& sealed) {
  st.sealed_sha256 = sealed ? sealed->sha256 : "";
  st.root_hash = sealed ? sealed->root_hash : "";
  return st;
}

Result<Statement> parse_statement(std::string_view text, const std::string& label) {
  auto bad = [&](const std::string& why) { return fail(Errc::parse, str(label, ": not a chrootctl image statement: ", why)); };
  auto lines = lines_of(text);
  if (!lines || lines->empty()) return bad("expected five lines");
  const bool sealed = str((*lines)[0], "\n") == k_statement_header_sealed;
  if (!sealed && str((*lines)[0], "\n") != k_statement_header)
    return bad(str("the first line must be ", quote(std::string_view(k_statement_header, 27)), " or ",
                   quote(std::string_view(k_statement_header_sealed, 27))));
  if (lines->size() != (sealed ? 7u : 5u)) return bad(sealed ? "expected seven lines" : "expected five lines");
  Statement st;
  auto recipe = field((*lines)[1], "recipe");
  auto build = field((*lines)[2], "build-id");
  auto tree = field((*lines)[3], "tree-digest");
  auto lock = field((*lines)[4], "lock-digest");
  if (!recipe || !valid_word(*recipe)) return bad("line 2 must be 'recipe NAME'");
  if (!build || !valid_word(*build)) return bad("line 3 must be 'build-id ID'");
  if (!tree || !tree->starts_with("sha256:") || !is_sha256_hex(tree->substr(7))) return bad("line 4 must be 'tree-digest sha256:HEX'");
  if (!lock || !lock->starts_with("sha256:") || !is_sha256_hex(lock->substr(7))) return bad("line 5 must be 'lock-digest sha256:HEX'");
  st.recipe = *recipe;
  st.build_id = *build;
  st.tree_digest = tree->substr(7);
  st.lock_digest = lock->substr(7);
  if (sealed) {
    auto image = field((*lines)[5], "image-sha256");
    auto root = field((*lines)[6], "verity-root-hash");
    if (!image || !image->starts_with("sha256:") || !is_sha256_hex(image->substr(7))) return bad("line 6 must be 'image-sha256 sha256:HEX'");
    if (!root || !root->starts_with("sha256:") || !is_sha256_hex(root->substr(7))) return bad("line 7 must be 'verity-root-hash sha256:HEX'");
    st.sealed_sha256 = image->substr(7);
    st.root_hash = root->substr(7);
  }
  return st;
}

std::string render_signature(const Signature& sig) {
  return str(k_signature_header, "key-id ", sig.key_id, "\nalgorithm ed25519\nsignature ", base64_encode(sig.value), "\n", k_statement_marker,
             sig.statement_text);
}

Result<Signature> parse_signature(std::string_view text, const std::string& label) {
  auto bad = [&](const std::string& why) { return fail(Errc::parse, str(label, ": not a chrootctl signature: ", why)); };
  const std::string_view header(k_signature_header);
  if (!text.starts_with(header)) return bad(str("the first line must be ", quote(header.substr(0, header.size() - 1))));
  const auto marker = text.find(str("\n", k_statement_marker));
  if (marker == std::string_view::npos) return bad("no '#statement' line");
  auto head = lines_of(text.substr(0, marker + 1));
  if (!head || head->size() != 4) return bad("expected the lines key-id, algorithm and signature before '#statement'");
  Signature sig;
  auto id = field((*head)[1], "key-id");
  if (!id || !is_key_id(*id)) return bad(str("line 2 must be 'key-id' and ", k_key_id_digits, " lowercase hex digits"));
  if ((*head)[2] != "algorithm ed25519") return bad("line 3 must be 'algorithm ed25519'");
  auto value = field((*head)[3], "signature");
  std::optional<std::string> raw;
  if (value) raw = base64_decode(*value);
  if (!raw || raw->size() != k_signature_bytes || base64_encode(*raw) != *value)
    return bad(str("line 4 must be 'signature' and ", k_signature_bytes, " bytes in canonical base64"));
  sig.key_id = *id;
  sig.value = std::move(*raw);
  sig.statement_text = text.substr(marker + 1 + std::string_view(k_statement_marker).size());
  sig.statement = TRY(parse_statement(sig.statement_text, label));
  return sig;
}

// ---- trust ----

const Key* TrustStore::revoked_key(const Key& k) const {
  for (const auto& r : revoked)
    if (r.raw_public() == k.raw_public()) return &r;
  return nullptr;
}

std::vector<const Key*> TrustStore::trusted_with_id(std::string_view id) const {
  std::vector<const Key*> out;
  for (const auto& k : trusted)
    if (k.id() == id) out.push_back(&k);
  return out;
}

std::string revoked_dir_for(const std::string& trusted_dir) {
  std::string d = trusted_dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  const auto slash = d.find_last_of('/');
  if (slash == std::string::npos) return "revoked.d";
  return str(slash == 0 ? std::string() : d.substr(0, slash), "/revoked.d");
}

Result<TrustStore> load_trust_store(const std::string& trusted_dir) {
  TrustStore t;
  t.trusted_dir = trusted_dir;
  t.revoked_dir = revoked_dir_for(trusted_dir);
  auto ctx = [](Error e) { return fail(std::move(e).add_context("refusing to trust the signing keys")); };
  auto load = [&](const std::string& dir, const std::string& what, std::vector<Key>& keys, bool& exists) -> Status {
    auto canon = canonical_path(dir);
    if (!canon) {
      if (canon.error().sys_errno() == ENOENT) return {};
      return fail(std::move(canon.error()));
    }
    exists = true;
    TRY(check_trusted_dir(*canon, what + " directory"));
    keys = TRY(load_key_dir(*canon, what));
    return {};
  };
  bool revoked_exists = false;
  if (auto r = load(trusted_dir, "trusted key", t.trusted, t.trusted_dir_exists); !r) return ctx(r.error());
  if (auto r = load(t.revoked_dir, "revoked key", t.revoked, revoked_exists); !r) return ctx(r.error());
  return t;
}

SignatureVerdict judge_signature(const JudgeInput& in) {
  SignatureVerdict v;
  auto no = [&](std::string state, std::string reason) {
    v.acceptable = false;
    v.state = std::move(state);
    v.reason = std::move(reason);
    return v;
  };
  auto unsigned_verdict = [&](std::string reason) {
    v.acceptable = in.unsigned_ok;
    v.state = "unsigned";
    v.reason = std::move(reason);
    return v;
  };
  if (!in.signature_text) return unsigned_verdict("it is not signed");
  auto sig = parse_signature(*in.signature_text, in.signature_label);
  if (!sig) return no("bad-signature", sig.error().what());
  std::optional<TrustStore> loaded;
  const TrustStore* trust = in.trust;
  if (!trust) {
    auto t = load_trust_store(in.settings->trusted_keys);
    if (!t) return no("untrusted", t.error().what());
    loaded = std::move(*t);
    trust = &*loaded;
  }
  v.key_id = sig->key_id;
  const auto candidates = trust->trusted_with_id(sig->key_id);
  // A revoked key is refused whether or not it is still in trusted.d: revocation wins. Every
  // revoked key is tried, whatever the signature's key-id line (which is not signed) says: a
  // line changed to another id must not turn a revoked signature into an unknown one.
  for (const auto& r : trust->revoked) {
    if (r.verify(sig->statement_text, sig->value)) return no("revoked", str("it is signed by key ", r.id(), ", which is revoked (", r.source(), ")"));
  }
  const Key* signer = nullptr;
  for (const Key* k : candidates)
    if (k->verify(sig->statement_text, sig->value)) signer = k;
  if (!signer) {
    if (!candidates.empty())
      return no("bad-signature", str("its signature by key ", sig->key_id, " does not verify (", in.signature_label, " was altered)"));
    for (const auto& k : trust->trusted)
      if (k.verify(sig->statement_text, sig->value))
        return no("bad-signature",
                  str("it is signed by trusted key ", k.id(), " but names key ", sig->key_id, " (", in.signature_label, " was altered)"));
    v.untrusted_because =
        trust->trusted_dir_exists ? str("it is not one of the trusted keys in ", trust->trusted_dir) : str(trust->trusted_dir, " does not exist");
    return unsigned_verdict(str("it is signed by key ", sig->key_id, ", which is not trusted here: ", v.untrusted_because));
  }
  auto expected = in.expected();
  if (!expected) return no("bad-signature", str("cannot check what its signature covers: ", expected.error().what()));
  const Statement& got = sig->statement;
  auto mismatch = [&](const char* what, const std::string& signed_value, const std::string& actual) {
    return no("bad-signature", str("its signature by key ", sig->key_id, " is for ", what, " ", signed_value, ", not ", actual));
  };
  if (got.tree_digest != expected->tree_digest) return mismatch("tree digest", got.tree_digest, expected->tree_digest);
  if (got.lock_digest != expected->lock_digest) return mismatch("lock digest", got.lock_digest, expected->lock_digest);
  if (got.build_id != expected->build_id) return mismatch("build id", got.build_id, expected->build_id);
  if (got.recipe != expected->recipe) return mismatch("recipe", got.recipe, expected->recipe);
  if (got.sealed_sha256 != expected->sealed_sha256)
    return mismatch("sealed image file", got.sealed_sha256.empty() ? "(none)" : "sha256:" + got.sealed_sha256,
                    expected->sealed_sha256.empty() ? "(none)" : "sha256:" + expected->sealed_sha256);
  if (got.root_hash != expected->root_hash) return mismatch("dm-verity root hash", got.root_hash, expected->root_hash);
  v.acceptable = true;
  v.state = "signed";
  v.signer = signer->id();
  return v;
}

Result<Statement> image_statement(const std::string& image, const std::string& recipe, const std::string& tree_digest,
                                  const std::optional<manifest::Sealed>& sealed) {
  const std::string lock = TRY(read_required_file(image + "/lock"));
  return with_sealed(Statement{recipe, base_name(image), tree_digest, Sha256::hex(lock), {}, {}}, sealed);
}

Result<std::optional<std::string>> read_image_signature(const std::string& image) { return read_trusted_file(image + "/signature", 64u << 10); }

SignatureVerdict judge_image(const Settings& s, const std::string& image, const std::string& recipe, const std::string& build_id,
                             const std::string& tree_digest, const std::optional<manifest::Sealed>& sealed, bool was_signed,
                             const TrustStore* trust) {
  JudgeInput in;
  in.settings = &s;
  in.signature_label = image + "/signature";
  in.trust = trust;
  in.unsigned_ok = !s.require_signature && !was_signed;
  in.expected = [&]() -> Result<Statement> {
    auto st = TRY(image_statement(image, recipe, tree_digest, sealed));
    st.build_id = build_id;  // the catalogue's record, which is the directory's name when it was added
    return st;
  };
  auto text = read_image_signature(image);
  if (!text) {
    SignatureVerdict v;
    v.state = "bad-signature";
    v.reason = str("cannot read its signature: ", text.error().what());
    return v;
  }
  in.signature_text = std::move(*text);
  auto v = judge_signature(in);
  if (v.state == "unsigned" && !v.acceptable) {
    const std::string where = s.config_file.empty() ? std::string() : str(" in ", s.config_file);
    if (s.require_signature && !in.signature_text) v.reason = str("it is not signed and require_signature is set", where);
    else if (s.require_signature) v.reason += str("; require_signature is set", where);
    else if (!in.signature_text) v.reason = str("it was registered as signed, but ", in.signature_label, " is gone");
    else v.reason = str("it was registered as signed, but its key ", v.key_id, " is no longer trusted here: ", v.untrusted_because);
  }
  return v;
}

}  // namespace chrootctl::catalogue
