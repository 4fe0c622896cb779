// The front executable (`chrootctl`) loads libcryptsetup only when it makes or removes a
// dm-verity device: when a launch mounts a sealed image that no other launch on the node has
// mounted, when the last one unmounts it, and in `cleanup`.
//
// libcryptsetup brings libdevmapper, libcrypto, libjson-c, libblkid, libselinux, libudev and
// more: loading them costs about 2.5 ms of CPU, half a job launch, which a launch that reuses a
// mounted image (the common case on a busy node) does not need. So, as cli/lazy_libcrypto.cpp
// does for OpenSSL, each libcryptsetup function the front calls is defined here with the
// prototype from libcryptsetup.h (a mismatch does not compile) and forwards to the real one,
// found in libcryptsetup.so.12 with dlvsym() on first use. tests/integration/front_libraries.sh
// checks that the front does not need the library and exports none of these names.
//
// If the library cannot be loaded, each function returns -ENOSYS (libcryptsetup's convention:
// a negative errno) and the reason is printed once. chrootctl-full links libcryptsetup directly.
#include <dlfcn.h>
#include <libcryptsetup.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace {

void* libcryptsetup() {
  static void* const handle = [] {
    // libdevmapper, which libcryptsetup loads, reads DM_DISABLE_UDEV once, when it is loaded:
    // with it, it makes and removes device nodes itself instead of waiting for udev to confirm
    // each change. chrootctl needs no node of libdevmapper's (it mounts through one of its own,
    // docs/sealed.md), and must never wait for a udev that is not running (a stale
    // /run/udev/control is enough to make libdevmapper wait forever). The variable is set for the
    // load only.
    const bool had = std::getenv("DM_DISABLE_UDEV") != nullptr;
    if (!had) ::setenv("DM_DISABLE_UDEV", "1", 1);
    void* h = ::dlopen("libcryptsetup.so.12", RTLD_NOW | RTLD_LOCAL);
    if (!had) ::unsetenv("DM_DISABLE_UDEV");
    if (!h) std::fprintf(stderr, "chrootctl: cannot load libcryptsetup (libcryptsetup.so.12): %s\n", ::dlerror());
    return h;
  }();
  return handle;
}

template <typename F>
F lookup(const char* name, const char* version = "CRYPTSETUP_2.0") {
  void* lib = libcryptsetup();
  if (!lib) return nullptr;
  void* sym = ::dlvsym(lib, name, version);
  if (!sym) std::fprintf(stderr, "chrootctl: libcryptsetup.so.12 has no %s@%s\n", name, version);
  return reinterpret_cast<F>(sym);
}

}  // namespace

#define CHROOTCTL_FORWARD(RET, NAME, PARAMS, ARGS, FAILED)     \
  extern "C" RET NAME PARAMS {                                 \
    static const auto real = lookup<decltype(&::NAME)>(#NAME); \
    if (!real) return FAILED;                                  \
    return real ARGS;                                          \
  }

CHROOTCTL_FORWARD(int, crypt_init_data_device, (struct crypt_device * *cd, const char* device, const char* data_device), (cd, device, data_device),
                  -ENOSYS)
CHROOTCTL_FORWARD(int, crypt_init_by_name, (struct crypt_device * *cd, const char* name), (cd, name), -ENOSYS)
CHROOTCTL_FORWARD(int, crypt_metadata_locking, (struct crypt_device * cd, int enable), (cd, enable), -ENOSYS)
CHROOTCTL_FORWARD(int, crypt_load, (struct crypt_device * cd, const char* requested_type, void* params), (cd, requested_type, params), -ENOSYS)
CHROOTCTL_FORWARD(int, crypt_get_verity_info, (struct crypt_device * cd, struct crypt_params_verity* vp), (cd, vp), -ENOSYS)
CHROOTCTL_FORWARD(int, crypt_activate_by_volume_key,
                  (struct crypt_device * cd, const char* name, const char* volume_key, size_t volume_key_size, uint32_t flags),
                  (cd, name, volume_key, volume_key_size, flags), -ENOSYS)
CHROOTCTL_FORWARD(int, crypt_deactivate_by_name, (struct crypt_device * cd, const char* name, uint32_t flags), (cd, name, flags), -ENOSYS)

// Referenced by code the front links (the catalogue's add, which formats nothing but shares an
// object file with what the front uses) and never called by it; forwarded all the same, so that
// the front does not need the library at start.
extern "C" int crypt_format(struct crypt_device* cd, const char* type, const char* cipher, const char* cipher_mode, const char* uuid,
                            const char* volume_key, size_t volume_key_size, void* params) {
  // The default version of crypt_format, the one a program linked with libcryptsetup 2.4 or
  // later binds to.
  static const auto real = lookup<decltype(&::crypt_format)>("crypt_format", "CRYPTSETUP_2.4");
  if (!real) return -ENOSYS;
  return real(cd, type, cipher, cipher_mode, uuid, volume_key, volume_key_size, params);
}
CHROOTCTL_FORWARD(int, crypt_volume_key_get,
                  (struct crypt_device * cd, int keyslot, char* volume_key, size_t* volume_key_size, const char* passphrase, size_t passphrase_size),
                  (cd, keyslot, volume_key, volume_key_size, passphrase, passphrase_size), -ENOSYS)

extern "C" void crypt_set_log_callback(struct crypt_device* cd, void (*log)(int level, const char* msg, void* usrptr), void* usrptr) {
  static const auto real = lookup<decltype(&::crypt_set_log_callback)>("crypt_set_log_callback");
  if (real) real(cd, log, usrptr);
}

extern "C" void crypt_free(struct crypt_device* cd) {
  static const auto real = lookup<decltype(&::crypt_free)>("crypt_free");
  if (real) real(cd);
}
