#!/usr/bin/env bash
# The Debian package, as a site would make and use it:
#   - dpkg-buildpackage -us -uc -b on a copy of this checkout;
#   - its Build-Depends are the packages that own what CMake found (libraries, headers, cmake),
#     and nothing else but debhelper, the compiler and pkg-config;
#   - lintian reports no error;
#   - the .deb holds what `cmake --install` installs;
#   - installed with apt in a fresh Debian 12 root made by mmdebstrap (from this machine's apt
#     sources), `chrootctl --version` and `chrootctl doctor` run there and the report validates
#     against docs/doctor.schema.json; purged, it leaves none of its files.
# Needs root, network access to the Debian archive, dpkg-dev, debhelper, lintian, mmdebstrap.
set -euo pipefail
src=${CHROOTCTL_SOURCE_DIR:?run through ctest}
source "$src/tests/support/privileged.sh"
for tool in dpkg-buildpackage dh lintian mmdebstrap python3; do
  command -v "$tool" >/dev/null || skip "$tool is not installed (bash tools/install-deps.sh)"
done
python3 -c 'import jsonschema' 2>/dev/null || skip "python3's jsonschema module is missing (python3-jsonschema)"

work=$(mktemp -d /var/tmp/chrootctl-deb.XXXXXX)
cleanup() {
  local rc=$?
  # mmdebstrap unmounts what it mounted in the root, also on failure; nothing else is mounted.
  if grep -qF "$work" /proc/self/mountinfo; then
    echo "FAIL: mounts left below $work" >&2
    rc=1
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

echo "== a copy of the checkout (dpkg-buildpackage writes into the tree and beside it)"
mkdir "$work/src"
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
  git -C "$src" ls-files -z --cached --others --exclude-standard | (cd "$src" && tar --null -T - -cf -) | tar -C "$work/src" -xf -
else
  tar -C "$src" --exclude='./build*' --exclude='./images/*' -cf - . | tar -C "$work/src" -xf -
fi

echo "== dpkg-buildpackage -us -uc -b"
# On every CPU: debhelper compiles on one unless DEB_BUILD_OPTIONS says parallel=N.
export DEB_BUILD_OPTIONS="parallel=$(nproc)${DEB_BUILD_OPTIONS:+ $DEB_BUILD_OPTIONS}"
start=$(date +%s)
if ! (cd "$work/src" && dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1; then
  tail -n 40 "$work/build.log" >&2
  fail "dpkg-buildpackage failed (above: the end of its log)"
fi
echo "built in $(( $(date +%s) - start )) s"
deb=$(echo "$work"/chrootctl_*_amd64.deb)
[ -f "$deb" ] || fail "no .deb was made: $(ls "$work")"

echo "== the Build-Depends are what the build used"
cache="$work/src/obj-x86_64-linux-gnu/CMakeCache.txt"
[ -f "$cache" ] || fail "no $cache"
value() { sed -n "s/^$1:[A-Z]*=//p" "$cache"; }
used=(
  "$(value OPENSSL_CRYPTO_LIBRARY)"
  "$(value LibArchive_LIBRARY)"
  "$(value tomlplusplus_DIR)/tomlplusplusConfig.cmake"
  "$(value tl-expected_DIR)/tl-expected-config.cmake"
  "$(value pkgcfg_lib_LIBSECCOMP_seccomp)"
  "$(value CHROOTCTL_SLURM_INCLUDE_DIR)/slurm/spank.h"
  "$(value CMAKE_COMMAND)"
)
owners=()
for f in "${used[@]}"; do
  [ -e "$f" ] || fail "the build used $f, which does not exist (CMakeCache.txt changed?)"
  real=$(readlink -f "$f")
  owner=$(dpkg -S "$f" 2>/dev/null || dpkg -S "$real" 2>/dev/null) || fail "no package owns $f"
  owners+=("${owner%%:*}")
done
build_depends=$(sed -n '/^Build-Depends:/,/^[A-Z][a-zA-Z-]*:/p' "$work/src/debian/control" | sed '$d' |
  sed 's/^Build-Depends://' | tr ',' '\n' | sed 's/(.*)//; s/|.*//; s/[[:space:]]//g' | grep -v '^$')
for o in "${owners[@]}"; do
  grep -qx "$o" <<<"$build_depends" || fail "the build used a file of $o, which Build-Depends does not list"
done
while read -r dep; do
  case "$dep" in debhelper-compat | g++ | pkg-config) continue ;; esac
  printf '%s\n' "${owners[@]}" | grep -qx "$dep" || fail "Build-Depends lists $dep, which the build did not use"
done <<<"$build_depends"

echo "== lintian: no errors"
lintian --fail-on error --tag-display-limit 0 "$deb" | tee "$work/lintian.txt" || fail "lintian found errors (above)"

echo "== what the package holds"
dpkg-deb -c "$deb" | awk '{print $NF}' | sed 's|^\./|/|' >"$work/contents"
for f in /usr/bin/chrootctl /usr/libexec/chrootctl/chrootctl-full /usr/lib/chrootctl/chrootctl_spank.so \
  /usr/share/man/man1/chrootctl.1.gz /usr/share/bash-completion/completions/chrootctl /etc/chrootctl/config.toml \
  /usr/lib/tmpfiles.d/chrootctl.conf /lib/systemd/system/chrootctl-cleanup.service; do
  grep -qx "$f" "$work/contents" || fail "the package has no $f"
done
dpkg-deb -I "$deb" conffiles | grep -qx /etc/chrootctl/config.toml || fail "/etc/chrootctl/config.toml is not a conffile"

echo "== installed in a fresh Debian 12 root, run, purged"
mkdir "$work/out"
cat >"$work/in-root.sh" <<'EOF'
#!/bin/sh
# Runs inside the new root, from a customize hook of mmdebstrap.
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends /tmp/chrootctl.deb >/tmp/out/install.log 2>&1
chrootctl --version >/tmp/out/version
dpkg -L chrootctl >/tmp/out/files
set +e
chrootctl doctor --json >/tmp/out/doctor.json 2>/tmp/out/doctor.err
echo $? >/tmp/out/doctor.rc
chrootctl doctor >/tmp/out/doctor.txt 2>&1
set -e
apt-get purge -y -q chrootctl >/tmp/out/purge.log 2>&1
if dpkg -s chrootctl >/dev/null 2>&1; then echo installed; else echo gone; fi >/tmp/out/state
left=
while read -r f; do
  [ -d "$f" ] && continue
  if [ -e "$f" ] || [ -L "$f" ]; then left="$left $f"; fi
done </tmp/out/files
[ -e /etc/chrootctl ] && left="$left /etc/chrootctl"
echo "$left" >/tmp/out/left
EOF
cp "$deb" "$work/chrootctl.deb"
start=$(date +%s)
mmdebstrap --variant=minbase --quiet \
  --customize-hook="copy-in '$work/chrootctl.deb' '$work/in-root.sh' /tmp" \
  --customize-hook='mkdir -p "$1/tmp/out"' \
  --customize-hook='chroot "$1" sh /tmp/in-root.sh' \
  --customize-hook="copy-out /tmp/out '$work'" \
  bookworm "$work/root" >"$work/mmdebstrap.log" 2>&1 || {
  tail -n 30 "$work/mmdebstrap.log" >&2
  [ -f "$work/out/install.log" ] && tail -n 20 "$work/out/install.log" >&2
  fail "mmdebstrap or the steps in the new root failed (above)"
}
echo "root made, package installed and purged in $(( $(date +%s) - start )) s"
out="$work/out"
grep -qx "chrootctl $(sed -n '1s/^chrootctl (\([^)-]*\).*/\1/p' "$work/src/debian/changelog")" "$out/version" ||
  fail "chrootctl --version said: $(cat "$out/version")"
rc=$(cat "$out/doctor.rc")
[ "$rc" = 0 ] || [ "$rc" = 1 ] || fail "chrootctl doctor exited $rc: $(cat "$out/doctor.err")"
python3 - "$src/docs/doctor.schema.json" "$out/doctor.json" "$rc" "$(uname -r)" <<'PY' || fail "the report of doctor in the new root is wrong (above)"
import json, sys, jsonschema
schema, doc = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
jsonschema.Draft202012Validator(schema).validate(doc)
checks = {c["id"]: c for c in doc["checks"]}
# The package's commented configuration is read, and holds only the defaults.
assert checks["config"]["verdict"] == "ok" and doc["config_file"] == "/etc/chrootctl/config.toml", checks["config"]
assert checks["kernel"]["facts"]["release"] == sys.argv[4], checks["kernel"]
assert checks["store"]["facts"]["path"] == "/var/lib/chrootctl", checks["store"]
assert checks["accounting"]["facts"]["path"] == "/var/log/chrootctl/launches.jsonl", checks["accounting"]
assert doc["exit_status"] == int(sys.argv[3]), (doc["exit_status"], sys.argv[3])
print("doctor in the new root:", doc["summary"])
PY
[ "$(cat "$out/state")" = gone ] || fail "chrootctl is still installed after apt-get purge"
[ -z "$(tr -d ' ' <"$out/left")" ] || fail "apt-get purge left:$(cat "$out/left")"
echo "PASS: the .deb builds, passes lintian, installs, runs chrootctl doctor and purges cleanly"
