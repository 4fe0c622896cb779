#!/usr/bin/env bash
# The front executable (`chrootctl`, the one a batch system runs for every job) starts with only
# the C library: no libarchive (and through it libxml2 and ICU), no libtomlplusplus.so, no
# libstdc++.so, whose loading and binding was a third of the start-up time of each command, and
# no libcrypto, which it loads on first use (cli/lazy_libcrypto.cpp). The forwarding functions
# it defines under OpenSSL's names must not be exported, or libcrypto's calls to its own
# functions could bind to them. chrootctl-full may load more.
set -euo pipefail
ctl=${CHROOTCTL_BIN:?run through ctest}
command -v readelf >/dev/null || { echo "readelf (binutils) is needed" >&2; exit 1; }

needed=$(readelf -d "$ctl" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort)
[ -n "$needed" ] || { echo "no NEEDED entries read from $ctl" >&2; exit 1; }
allowed='^(libc\.so\.6|libm\.so\.6|ld-linux-x86-64\.so\.2|ld-linux-aarch64\.so\.1)$'
bad=$(grep -Ev "$allowed" <<<"$needed" || true)
if [ -n "$bad" ]; then
  echo "$ctl needs libraries that the front must not load:" >&2
  echo "$bad" >&2
  exit 1
fi
exported=$(nm -D --defined-only "$ctl" | awk '{print $3}' | grep -E '^(EVP_|BIO_|PEM_|ERR_|OPENSSL_|crypt_)' || true)
if [ -n "$exported" ]; then
  echo "$ctl exports OpenSSL or libcryptsetup names:" >&2
  echo "$exported" >&2
  exit 1
fi
echo "$ctl needs only: $(tr '\n' ' ' <<<"$needed")"
