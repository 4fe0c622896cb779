#!/usr/bin/env bash
# The debootstrap base, for real, from the host's apt sources (no mirror in the recipe):
#   - a recipe with `debootstrap = { suite = "bookworm", variant = "minbase" }` builds, and the
#     lock names debootstrap;
#   - the debian12 recipe (mmdebstrap) falls back to debootstrap when mmdebstrap is not
#     installed: here it is hidden, in a private mount namespace, behind a non-executable file;
#   - both trees are stripped as the recipe says and match their manifests.
# Needs root, debootstrap, util-linux's unshare and the Debian archive (about a minute).
set -euo pipefail
ctl=${CHROOTCTL_BIN:?run through ctest}
src=${CHROOTCTL_SOURCE_DIR:?run through ctest}
source "${CHROOTCTL_SOURCE_DIR:?run through ctest}/tests/support/privileged.sh"
command -v debootstrap >/dev/null || skip "debootstrap is not installed"
command -v unshare >/dev/null || skip "unshare (util-linux) is not installed"

work=$(mktemp -d /var/tmp/chrootctl-debootstrap-test.XXXXXX)
trap 'rm -rf "$work"' EXIT

# 1. An explicit debootstrap recipe.
sed -e 's/^mmdebstrap = /debootstrap = /' -e 's/^name = "debian12"/name = "deb12-debootstrap"/' \
  "$src/recipes/debian12.toml" > "$work/deb12-debootstrap.toml"
grep -q '^debootstrap = { suite = "bookworm", variant = "minbase" }' "$work/deb12-debootstrap.toml"
"$ctl" build "$work/deb12-debootstrap.toml" --store "$work/a" --json > "$work/a.json"

# 2. The mmdebstrap recipe with mmdebstrap hidden.
mm=$(command -v mmdebstrap || true)
if [ -n "$mm" ]; then
  : > "$work/not-mmdebstrap"
  chmod 0644 "$work/not-mmdebstrap"
  unshare --mount --propagation private sh -c \
    'mount --bind "$1" "$2" && exec "$3" build debian12 --store "$4" --json' \
    sh "$work/not-mmdebstrap" "$mm" "$ctl" "$work/b" > "$work/b.json" 2> "$work/b.err"
else
  "$ctl" build debian12 --store "$work/b" --json > "$work/b.json" 2> "$work/b.err"
fi
grep -q "mmdebstrap is not installed: falling back to debootstrap" "$work/b.err" ||
  grep -rq "falling back to debootstrap" "$work/b" || { echo "no fallback message" >&2; cat "$work/b.err" >&2; exit 1; }

for side in a b; do
  python3 - "$work/$side.json" <<'PY'
import json, os, sys
d = json.load(open(sys.argv[1]))
root = d["root"]
lock = open(f"{d['path']}/lock").read()
assert 'kind = "tool"\nname = "debootstrap"' in lock, lock[:800]
assert os.path.exists(f"{root}/usr/bin/bash"), root
assert os.path.exists(f"{root}/var/lib/dpkg/status"), root
setuid = [os.path.join(p, f) for p, _, fs in os.walk(root) for f in fs
          if not os.path.islink(os.path.join(p, f)) and os.lstat(os.path.join(p, f)).st_mode & 0o6000]
assert setuid == [], setuid
assert not os.path.exists(f"{root}/etc/machine-id")
assert os.listdir(f"{root}/usr/share/doc") == [], os.listdir(f"{root}/usr/share/doc")
PY
  root=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["root"])' "$work/$side.json")
  path=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["path"])' "$work/$side.json")
  "$ctl" manifest check "$root" "$path/manifest" > /dev/null
done
# The host's mmdebstrap is untouched.
[ -z "$mm" ] || [ -x "$mm" ]
echo "debootstrap builds: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["build_id"])' "$work/a.json") (recipe), $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["build_id"])' "$work/b.json") (fallback)"
