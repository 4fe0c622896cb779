#!/usr/bin/env bash
# The front executable (`chrootctl`, the one a batch system runs for every job) loads only the
# C library and OpenSSL's libcrypto: no libarchive (and through it libxml2 and ICU), no
# libtomlplusplus.so, and no libstdc++.so, whose loading and binding was a third of the start-up
# time of each command (docs/benchmarks.md). chrootctl-full may load more.
set -euo pipefail
ctl=${CHROOTCTL_BIN:?run through ctest}
command -v readelf >/dev/null || { echo "readelf (binutils) is needed" >&2; exit 1; }

needed=$(readelf -d "$ctl" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort)
[ -n "$needed" ] || { echo "no NEEDED entries read from $ctl" >&2; exit 1; }
allowed='^(libc\.so\.6|libm\.so\.6|libcrypto\.so\.3|ld-linux-x86-64\.so\.2|ld-linux-aarch64\.so\.1)$'
bad=$(grep -Ev "$allowed" <<<"$needed" || true)
if [ -n "$bad" ]; then
  echo "$ctl needs libraries that the front must not load:" >&2
  echo "$bad" >&2
  exit 1
fi
echo "$ctl needs only: $(tr '\n' ' ' <<<"$needed")"
