#!/usr/bin/env bash
# A new machine, start to finish: install packages, build chrootctl, and run the main job.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bash "$here/tools/install-deps.sh"
bash "$here/tools/build.sh"
ctl="$here/build/cli/chrootctl"

work=$(mktemp -d /tmp/chrootctl-quickstart.XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "== a small tree from busybox-static"
mkdir -p "$work/root/bin" "$work/root/etc"
cp /bin/busybox "$work/root/bin/busybox"
ln -s busybox "$work/root/bin/sh"
echo "root:x:0:0:root:/root:/bin/sh" > "$work/root/etc/passwd"

echo "== manifest it"
"$ctl" manifest create "$work/root" -o "$work/manifest"
"$ctl" manifest check "$work/root" "$work/manifest"
