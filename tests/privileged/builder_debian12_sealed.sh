#!/usr/bin/env bash
# debian12 sealed (docs/sealed.md): built twice from the same inputs into two stores, giving the
# same image file and root hash; registered; the mounted image matches its manifest exactly;
# jobs run in it by name as nobody and as root; nothing is left mounted or attached afterwards.
# Needs root, mmdebstrap, mkfs.erofs and the Debian archive (about two minutes).
set -euo pipefail
ctl=${CHROOTCTL_BIN:?run through ctest}
source "${CHROOTCTL_SOURCE_DIR:?run through ctest}/tests/support/privileged.sh"
command -v mmdebstrap >/dev/null || skip "mmdebstrap is not installed"
command -v mkfs.erofs >/dev/null || skip "mkfs.erofs is not installed (erofs-utils)"

work=$(mktemp -d /var/tmp/chrootctl-debian12-sealed-test.XXXXXX)
chmod 0755 "$work"
# A state directory of the test's own: its mounts and launch records are not the host's.
export CHROOTCTL_STATE_DIR=$work/state
trap '"$ctl" cleanup >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

"$ctl" build debian12 --sealed --store "$work/a" --json > "$work/a.json"
"$ctl" build debian12 --sealed --store "$work/b" --json > "$work/b.json"
image=$(python3 - "$work" <<'PY'
import json, os, sys
w = sys.argv[1]
a, b = (json.load(open(f"{w}/{n}.json")) for n in "ab")
assert a["sealed"] and b["sealed"], (a, b)
assert not a["cached"] and not b["cached"]
assert a["tree_digest"] == b["tree_digest"], (a["tree_digest"], b["tree_digest"])
assert a["sealed"]["sha256"] == b["sealed"]["sha256"], (a["sealed"], b["sealed"])
assert a["sealed"]["root_hash"] == b["sealed"]["root_hash"]
assert open(a["sealed"]["file"], "rb").read() == open(b["sealed"]["file"], "rb").read(), "the image files differ"
assert not os.path.exists(f"{a['path']}/root"), "a sealed build keeps no tree"
assert a["entries"] > 1000, a["entries"]
print(a["sealed"]["file"])
PY
)
build=$(dirname "$image")
sha=$(sha256sum "$image" | cut -c1-64)
grep -q " sha256=$sha " "$build/manifest" || { echo "the manifest does not record the file's SHA-256 $sha" >&2; exit 1; }

"$ctl" add DEBIAN12S "$build" --store "$work/a" >/dev/null
root=$("$ctl" mount DEBIAN12S --store "$work/a")
"$ctl" manifest check "$root" "$build/manifest" --json > "$work/check.json"
python3 - "$work/check.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
assert c["match"] and c["differences"] == [], c["differences"][:5]
PY
"$ctl" unmount DEBIAN12S --store "$work/a"

mkdir "$work/sandbox"
chown 65534:65534 "$work/sandbox"
out=$("$ctl" run DEBIAN12S --store "$work/a" --sandbox "$work/sandbox" --user nobody -- /bin/sh -c 'id -u; cat /etc/debian_version')
case $out in 65534$'\n'12.*) ;; *) echo "unexpected output as nobody: $out" >&2; exit 1 ;; esac
out=$("$ctl" run DEBIAN12S --store "$work/a" --sandbox "$work/sandbox" --user root -- /bin/sh -c 'id -u; stat -c %u /usr/bin/apt')
[ "$out" = $'0\n0' ] || { echo "unexpected output as root: $out" >&2; exit 1; }

if grep -q "$work" /proc/self/mountinfo; then echo "left mounted:" >&2; grep "$work" /proc/self/mountinfo >&2; exit 1; fi
for f in /sys/block/loop*/loop/backing_file; do
  if [ -r "$f" ] && grep -q "^$work" "$f"; then echo "loop device left: $f" >&2; exit 1; fi
done
echo "debian12 sealed: reproducible ($sha), matches its manifest when mounted, runs as nobody and as root"
