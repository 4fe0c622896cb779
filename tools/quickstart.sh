#!/usr/bin/env bash
# A new machine, start to finish: install packages, build chrootctl, then the main job:
# build the debian12 image, register it as DEBIAN12, audit it, run a job in it with
# `chrootctl run`, and run a Slurm job in it with `srun --chroot` on a one-node cluster.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bash "$here/tools/install-deps.sh"
# Only what the main job runs: the two binaries and the SPANK plugin. The test suite (most of
# the build) waits for tools/test.sh, which reuses these objects.
bash "$here/tools/build.sh" --target chrootctl --target chrootctl-full --target chrootctl_spank
ctl="$here/build/cli/chrootctl"

# Not below /tmp: a Slurm job's working directory would land inside its own private /tmp.
work=$(mktemp -d /var/lib/chrootctl-quickstart.XXXXXX)
cluster="$work/cluster"
cleanup() {
  [ -d "$cluster" ] && bash "$here/batch/slurm/single-node.sh" stop "$cluster" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
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

echo "== a Slurm job in DEBIAN12: a one-node cluster with the chrootctl SPANK plugin"
bash "$here/batch/slurm/single-node.sh" start "$cluster" \
  --plugin "$here/build/batch/chrootctl_spank.so" --chrootctl "$ctl"
export SLURM_CONF="$cluster/etc/slurm.conf"
mkdir "$work/jobs"
chown nobody:nogroup "$work/jobs"
(cd "$work/jobs" && setpriv --reuid=nobody --regid=nogroup --clear-groups \
  srun --chroot=DEBIAN12 /bin/sh -c 'echo "srun: Debian $(cat /etc/debian_version) as $(id -un) in $(pwd)"')
