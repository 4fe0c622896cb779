#!/usr/bin/env bash
# debian12 from mmdebstrap, twice from the same inputs into two stores: the same tree digest and
# build id; the tree is stripped as the recipe says; a third build is served from the cache.
# Needs root, mmdebstrap and the Debian archive (about a minute).
set -euo pipefail
ctl=${CHROOTCTL_BIN:?run through ctest}
source "${CHROOTCTL_SOURCE_DIR:?run through ctest}/tests/support/privileged.sh"
command -v mmdebstrap >/dev/null || skip "mmdebstrap is not installed"

work=$(mktemp -d /var/tmp/chrootctl-debian12-test.XXXXXX)
trap 'rm -rf "$work"' EXIT

"$ctl" build debian12 --store "$work/a" --json > "$work/a.json"
"$ctl" build debian12 --store "$work/b" --json > "$work/b.json"
"$ctl" build debian12 --store "$work/a" --json > "$work/c.json"

python3 - "$work" <<'PY'
import json, os, sys
w = sys.argv[1]
a, b, c = (json.load(open(f"{w}/{n}.json")) for n in "abc")
assert a["tree_digest"] == b["tree_digest"], (a["tree_digest"], b["tree_digest"])
assert a["build_id"] == b["build_id"], (a["build_id"], b["build_id"])
assert not a["cached"] and not b["cached"]
assert c["cached"] and c["build_id"] == a["build_id"], c
root = a["root"]
setuid = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs
          if not os.path.islink(os.path.join(d, f)) and os.lstat(os.path.join(d, f)).st_mode & 0o6000]
assert setuid == [], setuid
assert not os.path.exists(f"{root}/etc/machine-id")
assert os.listdir(f"{root}/usr/share/doc") == [], os.listdir(f"{root}/usr/share/doc")
assert os.path.exists(f"{root}/usr/bin/bash")
report = json.load(open(f"{a['path']}/strip-report"))
assert report["summary"]["setuid-removed"] > 0, report["summary"]
lock = open(f"{a['path']}/lock").read()
assert 'kind = "tool"\nname = "mmdebstrap"' in lock, lock[:800]
log = open(f"{a['path']}/build.log").read()
assert "# system-call policy build-host sha256:" in log, "mmdebstrap ran under the build-host policy"
assert '[[package]]\nname = "bash"' in lock
print("debian12 reproducible:", a["build_id"], a["tree_digest"], a["entries"], "entries")
PY
"$ctl" manifest check -q "$work/a/debian12/latest/root" "$work/a/debian12/latest/manifest"

# [packages] with apt inside the tree (through the launcher), on top of the image just built.
cat > "$work/debian12-less.toml" <<'TOML'
name = "debian12-less"
[base]
image = "debian12"
[packages]
install = ["less"]
remove = ["e2fsprogs"]
[strip]
remove = ["/var/log/**", "/var/cache/ldconfig/aux-cache"]
TOML
"$ctl" build "$work/debian12-less.toml" --store "$work/a" --json > "$work/d.json"
python3 - "$work" <<'PY'
import json, os, sys
d = json.load(open(f"{sys.argv[1]}/d.json"))
root = d["root"]
assert os.access(f"{root}/usr/bin/less", os.X_OK), "less was installed"
assert not os.path.exists(f"{root}/sbin/mke2fs") and not os.path.exists(f"{root}/usr/sbin/mke2fs"), "e2fsprogs was removed"
assert not os.path.exists(f"{root}/etc/resolv.conf"), "the resolv.conf mount point was removed again"
assert os.listdir(f"{root}/var/lib/apt/lists") in ([], ["partial"]), os.listdir(f"{root}/var/lib/apt/lists")
lock = open(f"{d['path']}/lock").read()
assert '[[package]]\nname = "less"' in lock
log = open(f"{d['path']}/build.log").read()
assert "# in the tree, under the build system-call policy: apt-get install" in log, log[-2000:]
assert 'name = "e2fsprogs"' not in lock
print("debian12-less:", d["build_id"])
PY
test -z "$(findmnt -rn -o TARGET | grep "$work" || true)"
"$ctl" manifest check -q "$work/b/debian12/latest/root" "$work/a/debian12/latest/manifest"
