#!/usr/bin/env bash
# A new machine, start to finish: install packages, build chrootctl, then the main job:
# build the debian12 image, register it as DEBIAN12, audit it, and run a job in it.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bash "$here/tools/install-deps.sh"
bash "$here/tools/build.sh"
ctl="$here/build/cli/chrootctl"

work=$(mktemp -d /tmp/chrootctl-quickstart.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work"

echo "== build debian12 (mmdebstrap minbase, stripped) and register it as DEBIAN12"
"$ctl" build debian12 --register DEBIAN12

echo "== the catalogue"
"$ctl" list

echo "== audit DEBIAN12 (fails on any high-severity finding)"
"$ctl" audit DEBIAN12 --severity high | tail -n 1

echo "== a job in DEBIAN12: read-only image, private /tmp in its sandbox, no privileges"
mkdir "$work/sandbox"
chown nobody:nogroup "$work/sandbox"
"$ctl" run DEBIAN12 --sandbox "$work/sandbox" --user nobody --memory 512M --pids 256 -- \
  /bin/sh -c 'echo "Debian $(cat /etc/debian_version) as $(id -un) in $(pwd)"; echo hello > /tmp/out; ls /proc | grep -c "^[0-9]" | sed "s/^/processes visible: /"'
echo "== the job's /tmp was the sandbox's: $(cat "$work/sandbox/tmp/out")"
