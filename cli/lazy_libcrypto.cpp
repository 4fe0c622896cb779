// The front executable (`chrootctl`) loads OpenSSL's libcrypto only when it first needs it.
//
// Loading libcrypto.so.3 costs about half a millisecond at every start (mapping it, its
// relocations, its CPU feature probe), a tenth of a job launch, and most front commands never
// use it: `run` of an unsigned image, `cleanup`, `lookup`, `resolve`, `manifest check --fast`.
// So the front is linked against these definitions instead of the library: each OpenSSL
// function the front calls is defined here (with the prototype from OpenSSL's own header, so a
// mismatch does not compile) and forwards to the real one, found in libcrypto.so.3 with
// dlvsym() on first use. The link drops libcrypto from the front's needed libraries
// (--as-needed), and tests/integration/front_libraries.sh checks both that it is absent and
// that none of these names is exported (libcrypto's own calls stay inside libcrypto).
//
// libcrypto is looked up by its soname like any needed library, so the search path and the
// trust in it are the same as before. If it cannot be loaded, each function returns its
// failure value (OpenSSL's own convention: null, 0) and the reason is printed once, so the
// command fails with its usual error. chrootctl-full links libcrypto directly.
#include <dlfcn.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstdio>
#include <cstring>

namespace {

void* libcrypto() {
  static void* const handle = [] {
    void* h = ::dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);
    if (!h) std::fprintf(stderr, "chrootctl: cannot load OpenSSL (libcrypto.so.3): %s\n", ::dlerror());
    return h;
  }();
  return handle;
}

template <typename F>
F lookup(const char* name) {
  void* lib = libcrypto();
  if (!lib) return nullptr;
  void* sym = ::dlvsym(lib, name, "OPENSSL_3.0.0");
  if (!sym) std::fprintf(stderr, "chrootctl: libcrypto.so.3 has no %s@OPENSSL_3.0.0\n", name);
  return reinterpret_cast<F>(sym);
}

}  // namespace

// Defines NAME with its OpenSSL prototype PARAMS; forwards ARGS, or returns FAILED when
// libcrypto or the symbol is missing.
#define CHROOTCTL_FORWARD(RET, NAME, PARAMS, ARGS, FAILED)     \
  extern "C" RET NAME PARAMS {                                 \
    static const auto real = lookup<decltype(&::NAME)>(#NAME); \
    if (!real) return FAILED;                                  \
    return real ARGS;                                          \
  }
#define CHROOTCTL_FORWARD_VOID(NAME, PARAMS, ARGS)             \
  extern "C" void NAME PARAMS {                                \
    static const auto real = lookup<decltype(&::NAME)>(#NAME); \
    if (real) real ARGS;                                       \
  }

// Digests (SHA-256 of files and manifests).
CHROOTCTL_FORWARD(EVP_MD*, EVP_MD_fetch, (OSSL_LIB_CTX * ctx, const char* algorithm, const char* properties), (ctx, algorithm, properties), nullptr)
CHROOTCTL_FORWARD(const EVP_MD*, EVP_sha256, (void), (), nullptr)
CHROOTCTL_FORWARD(EVP_MD_CTX*, EVP_MD_CTX_new, (void), (), nullptr)
CHROOTCTL_FORWARD_VOID(EVP_MD_CTX_free, (EVP_MD_CTX * ctx), (ctx))
CHROOTCTL_FORWARD(int, EVP_DigestInit_ex, (EVP_MD_CTX * ctx, const EVP_MD* type, ENGINE* impl), (ctx, type, impl), 0)
CHROOTCTL_FORWARD(int, EVP_DigestUpdate, (EVP_MD_CTX * ctx, const void* d, size_t cnt), (ctx, d, cnt), 0)
CHROOTCTL_FORWARD(int, EVP_DigestFinal_ex, (EVP_MD_CTX * ctx, unsigned char* md, unsigned int* s), (ctx, md, s), 0)

// Ed25519 keys and signatures.
CHROOTCTL_FORWARD(EVP_PKEY*, EVP_PKEY_new_raw_public_key, (int type, ENGINE* e, const unsigned char* pub, size_t len), (type, e, pub, len), nullptr)
CHROOTCTL_FORWARD(int, EVP_PKEY_get_raw_public_key, (const EVP_PKEY* pkey, unsigned char* pub, size_t* len), (pkey, pub, len), 0)
CHROOTCTL_FORWARD(int, EVP_PKEY_get_base_id, (const EVP_PKEY* pkey), (pkey), 0)
CHROOTCTL_FORWARD_VOID(EVP_PKEY_free, (EVP_PKEY * pkey), (pkey))
CHROOTCTL_FORWARD(EVP_PKEY_CTX*, EVP_PKEY_CTX_new_from_name, (OSSL_LIB_CTX * libctx, const char* name, const char* propquery),
                  (libctx, name, propquery), nullptr)
CHROOTCTL_FORWARD_VOID(EVP_PKEY_CTX_free, (EVP_PKEY_CTX * ctx), (ctx))
CHROOTCTL_FORWARD(int, EVP_PKEY_keygen_init, (EVP_PKEY_CTX * ctx), (ctx), 0)
CHROOTCTL_FORWARD(int, EVP_PKEY_generate, (EVP_PKEY_CTX * ctx, EVP_PKEY** ppkey), (ctx, ppkey), 0)
CHROOTCTL_FORWARD(int, EVP_DigestSignInit, (EVP_MD_CTX * ctx, EVP_PKEY_CTX** pctx, const EVP_MD* type, ENGINE* e, EVP_PKEY* pkey),
                  (ctx, pctx, type, e, pkey), 0)
CHROOTCTL_FORWARD(int, EVP_DigestSign, (EVP_MD_CTX * ctx, unsigned char* sigret, size_t* siglen, const unsigned char* tbs, size_t tbslen),
                  (ctx, sigret, siglen, tbs, tbslen), 0)
CHROOTCTL_FORWARD(int, EVP_DigestVerifyInit, (EVP_MD_CTX * ctx, EVP_PKEY_CTX** pctx, const EVP_MD* type, ENGINE* e, EVP_PKEY* pkey),
                  (ctx, pctx, type, e, pkey), 0)
CHROOTCTL_FORWARD(int, EVP_DigestVerify, (EVP_MD_CTX * ctx, const unsigned char* sigret, size_t siglen, const unsigned char* tbs, size_t tbslen),
                  (ctx, sigret, siglen, tbs, tbslen), 0)

// PEM key files.
CHROOTCTL_FORWARD(const BIO_METHOD*, BIO_s_mem, (void), (), nullptr)
CHROOTCTL_FORWARD(const BIO_METHOD*, BIO_s_secmem, (void), (), nullptr)
CHROOTCTL_FORWARD(BIO*, BIO_new, (const BIO_METHOD* type), (type), nullptr)
CHROOTCTL_FORWARD(BIO*, BIO_new_mem_buf, (const void* buf, int len), (buf, len), nullptr)
CHROOTCTL_FORWARD(long, BIO_ctrl, (BIO * bp, int cmd, long larg, void* parg), (bp, cmd, larg, parg), 0)
CHROOTCTL_FORWARD(int, BIO_free, (BIO * a), (a), 0)
CHROOTCTL_FORWARD(EVP_PKEY*, PEM_read_bio_PUBKEY, (BIO * bp, EVP_PKEY** x, pem_password_cb* cb, void* u), (bp, x, cb, u), nullptr)
CHROOTCTL_FORWARD(EVP_PKEY*, PEM_read_bio_PrivateKey, (BIO * bp, EVP_PKEY** x, pem_password_cb* cb, void* u), (bp, x, cb, u), nullptr)
CHROOTCTL_FORWARD(int, PEM_write_bio_PUBKEY, (BIO * bp, const EVP_PKEY* x), (bp, x), 0)
CHROOTCTL_FORWARD(int, PEM_write_bio_PrivateKey,
                  (BIO * bp, const EVP_PKEY* x, const EVP_CIPHER* enc, const unsigned char* kstr, int klen, pem_password_cb* cb, void* u),
                  (bp, x, enc, kstr, klen, cb, u), 0)

// Errors and memory.
CHROOTCTL_FORWARD(unsigned long, ERR_get_error, (void), (), 0)
CHROOTCTL_FORWARD_VOID(ERR_clear_error, (void), ())
extern "C" void ERR_error_string_n(unsigned long e, char* buf, size_t len) {
  static const auto real = lookup<decltype(&::ERR_error_string_n)>("ERR_error_string_n");
  if (real) real(e, buf, len);
  else if (len > 0) std::snprintf(buf, len, "OpenSSL (libcrypto.so.3) is not available");
}
extern "C" void OPENSSL_cleanse(void* ptr, size_t len) {
  static const auto real = lookup<decltype(&::OPENSSL_cleanse)>("OPENSSL_cleanse");
  if (real) real(ptr, len);
  else ::explicit_bzero(ptr, len);  // secrets are wiped either way
}
