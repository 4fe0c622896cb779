#!/usr/bin/env bash
# A real one-node Slurm (munge, slurmctld, slurmd from Debian) with chrootctl_spank.so in its
# plugstack.conf, jobs submitted as nobody:
#   - srun --chroot=MINIMAL runs in the image (a marker only the image has), as the user, in
#     the job's working directory;
#   - /tmp, /var/tmp and /dev/shm are private to a job and empty at the next one;
#   - a job array of 20 tasks runs concurrently in the image, and leaves no mount behind in the
#     host's namespace nor in slurmd's, and no per-job directory;
#   - a sealed image (docs/sealed.md) is mounted for a step and unmounted after it;
#   - each task runs under the image's system-call filter (no_new_privs, seccomp mode 2), and a
#     call the policy denies fails in it; a job without --chroot gets no filter of ours;
#   - --chroot=UNKNOWN fails the job with a message naming UNKNOWN and never runs it (srun and
#     sbatch); a job without --chroot runs on the host as before.
# Needs root, the munge, slurmctld, slurmd and slurm-client packages, busybox-static, and the
# plugin (libslurm-dev at build time). Every daemon it starts is stopped, also on failure.
set -euo pipefail
ctl=${CHROOTCTL_BIN:?run through ctest}
src=${CHROOTCTL_SOURCE_DIR:?run through ctest}
plugin=${CHROOTCTL_SPANK_PLUGIN:-$(dirname "$ctl")/../batch/chrootctl_spank.so}

source "${CHROOTCTL_SOURCE_DIR:?run through ctest}/tests/support/privileged.sh"
for tool in munged slurmctld slurmd srun sbatch squeue setpriv busybox; do
  command -v "$tool" >/dev/null || skip "$tool is not installed (apt-get install munge slurmctld slurmd slurm-client util-linux busybox-static)"
done
[ -f "$plugin" ] || skip "the plugin $plugin was not built (apt-get install libslurm-dev, then configure again)"

# Not below /tmp or /var/tmp: the jobs' working directory would appear inside their private /tmp.
work=$(mktemp -d /var/lib/chrootctl-slurm-test.XXXXXX)
chmod 0755 "$work"
cluster="$work/cluster"
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
cleanup() {
  local rc=$?
  if [ "$rc" != 0 ] && [ -d "$cluster/log" ]; then
    echo "--- logs of the cluster ---" >&2
    tail -n 30 "$cluster"/log/*.log >&2 || true
  fi
  bash "$src/batch/slurm/single-node.sh" stop "$cluster" || true
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

echo "== the image: chrootctl build minimal --register MINIMAL"
"$ctl" build minimal --store "$work/store" --register MINIMAL -q > /dev/null
root=$("$ctl" resolve MINIMAL --store "$work/store")
grep -q '^ID=chrootctl-minimal$' "$root/etc/os-release"
! grep -q chrootctl-minimal /etc/os-release || fail "the host's /etc/os-release is the marker"

echo "== a one-node Slurm with the plugin"
bash "$src/batch/slurm/single-node.sh" start "$cluster" --plugin "$plugin" --chrootctl "$ctl" --store "$work/store"
export SLURM_CONF="$cluster/etc/slurm.conf"
jobs="$work/jobs"
mkdir "$jobs"
chown nobody:nogroup "$jobs"
cd "$jobs"
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
expect() {  # expect NAME EXPECTED ACTUAL
  [ "$2" = "$3" ] || fail "$1: expected
$2
got
$3"
}
no_mounts_left() {
  local slurmd_pid table
  slurmd_pid=$(cat "$cluster/run/slurmd.pid")
  # srun returns when the tasks have ended; slurmstepd removes the step's directory just after.
  for _ in $(seq 1 100); do
    [ -z "$(ls -A "$cluster/jobdirs" 2>/dev/null)" ] && break
    sleep 0.1
  done
  [ -z "$(ls -A "$cluster/jobdirs" 2>/dev/null)" ] || fail "$1: per-job directories left: $(ls -A "$cluster/jobdirs")"
  for table in /proc/self/mountinfo "/proc/$slurmd_pid/mountinfo"; do
    if grep -F "$work" "$table"; then fail "$1: mounts left in $table (above)"; fi
  done
}

echo "== srun --chroot runs in the image, as the user, in its working directory"
out=$(as_nobody timeout 60 srun --chroot=MINIMAL sh -c 'grep ^ID= /etc/os-release; id -u; pwd')
expect "srun --chroot=MINIMAL" "ID=chrootctl-minimal
65534
$jobs" "$out"
no_mounts_left "after srun"

echo "== the job runs under the image's system-call filter (docs/seccomp.md), installed last"
# Seccomp 2: filter mode; NoNewPrivs 1, which the filter needs and keeps. The policy is the
# default one: the catalogue entry names none and the test's site sets none.
out=$(as_nobody timeout 60 srun --chroot=MINIMAL sh -c 'grep -E "^(Seccomp|NoNewPrivs):" /proc/self/status')
expect "the job's filter" "NoNewPrivs:	1
Seccomp:	2" "$out"
program=$("$ctl" resolve MINIMAL --store "$work/store" --json --with-seccomp |
  python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["seccomp_policy"], d["seccomp_program"])')
[[ $program == "default /"*.bpf ]] || fail "resolve --with-seccomp printed '$program'"
[ -f "${program#default }" ] || fail "the program ${program#default } is not in the cache"
# Calls the default policy denies (the keyring calls: EPERM) fail in the job, and work for the
# same user on the host. The probe (a static program) is copied into the job's working
# directory, which the job sees at its own path.
install -m 0755 "${CHROOTCTL_SECCOMP_PROBE64:?run through ctest}" "$jobs/seccomp_probe"
out=$(as_nobody timeout 60 srun --chroot=MINIMAL ./seccomp_probe add_key keyctl)
expect "denied calls in the job" "add_key: EPERM
keyctl: EPERM" "$out"
out=$(as_nobody timeout 60 srun ./seccomp_probe add_key)
expect "add_key without --chroot" "add_key: ok" "$out"
# Without --chroot, Slurm runs the job as before: no filter of chrootctl's.
out=$(as_nobody timeout 60 srun sh -c 'grep "^Seccomp:" /proc/self/status')
expect "a job without --chroot" "Seccomp:	0" "$out"

echo "== the step's accounting line names the Slurm job and step"
step=$(as_nobody timeout 60 srun --chroot=MINIMAL sh -c 'echo "$SLURM_JOB_ID.$SLURM_STEP_ID"')
[[ $step =~ ^[0-9]+\.[0-9]+$ ]] || fail "srun printed '$step', not JOB.STEP"
# slurmstepd (root) resolves the name, and writes its line to root's log, at the step's end.
log=$("$ctl" resolve MINIMAL --store "$work/store" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["accounting_log"])')
# The log is shared with every other test and job of this build; this step's line is the one
# with its JOB.STEP and this test's image root (job ids start at 1 in each new cluster).
python3 - "$log" "$step" "$root" <<'PY' || fail "no right accounting line for step $step in $log (above)"
import json, sys, time
log, step, root = sys.argv[1:]
for _ in range(100):
    try:
        lines = [json.loads(l) for l in open(log) if '"batch_job_id":"%s"' % step in l]
    except FileNotFoundError:
        lines = []
    mine = [l for l in lines if l["root"] == root]
    if mine:
        break
    time.sleep(0.1)
assert len(mine) == 1, mine
l = mine[0]
want = {"via": "slurm", "batch_system": "slurm", "image": "MINIMAL", "entry": "MINIMAL", "job_uid": 65534,
        "job_user": "nobody", "invoking_uid": 0, "tasks": 1, "outcome": "exited", "exit_status": 0}
wrong = {k: (l.get(k), v) for k, v in want.items() if l.get(k) != v}
assert not wrong, wrong
PY

echo "== /tmp, /var/tmp and /dev/shm are private to the job, and empty at the next one"
secret="secret.$$"
out=$(as_nobody timeout 60 srun --chroot=MINIMAL sh -c \
  "ls -A /tmp /var/tmp /dev/shm; for d in /tmp /var/tmp /dev/shm; do echo x > \$d/$secret; done; ls /tmp")
expect "first job's scratch" "/dev/shm:

/tmp:

/var/tmp:
$secret" "$out"
for d in /tmp /var/tmp /dev/shm; do [ ! -e "$d/$secret" ] || fail "the job wrote $d/$secret on the host"; done
out=$(as_nobody timeout 60 srun --chroot=MINIMAL ls -A /tmp /var/tmp /dev/shm)
expect "next job's scratch" "/dev/shm:

/tmp:

/var/tmp:" "$out"
no_mounts_left "after the scratch jobs"

echo "== tasks of one step share their scratch directories"
out=$(as_nobody timeout 60 srun -n 3 --chroot=MINIMAL sh -c \
  'echo "$SLURM_PROCID" > /dev/shm/task.$SLURM_PROCID; n=0; while [ $(ls /dev/shm | wc -l) -lt 3 ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n+1)); done; ls /dev/shm | wc -l' | sort -u)
expect "3 tasks, one /dev/shm" "3" "$(echo "$out" | tr -d ' ')"

echo "== a job array of 20 tasks runs concurrently in the image"
cat > array.sh <<'EOF'
#!/bin/sh
grep ^ID= /etc/os-release
echo "task $SLURM_ARRAY_TASK_ID" > /tmp/mine
touch "started.$SLURM_ARRAY_TASK_ID"
# Nobody ends before all 20 have started: each sees 20 only if all ran at the same time.
n=0
while [ "$(ls started.* | wc -l)" -lt 20 ] && [ $n -lt 900 ]; do sleep 0.1; n=$((n+1)); done
echo "seen $(ls started.* | wc -l) $(cat /tmp/mine)"
EOF
chmod 0755 array.sh
chown nobody:nogroup array.sh
array=$(as_nobody sbatch --parsable --chroot=MINIMAL --array=1-20 -o 'array.%a.out' array.sh)
array=${array%%;*}
for _ in $(seq 1 1200); do
  [ -z "$(squeue -h -j "$array" 2>/dev/null)" ] && break
  sleep 0.1
done
[ -z "$(squeue -h -j "$array" 2>/dev/null)" ] || fail "the array $array did not finish in 120 s"
for i in $(seq 1 20); do
  expect "array task $i" "ID=chrootctl-minimal
seen 20 task $i" "$(cat "array.$i.out")"
done
no_mounts_left "after the array"

echo "== the job epilog removes what a killed slurmstepd left of the job"
held=$(as_nobody sbatch --parsable --hold --chroot=MINIMAL -o held.out --wrap true)
mkdir -p "$cluster/jobdirs/$held.7/tmp" "$cluster/jobdirs/$((held + 1000)).0"
touch "$cluster/jobdirs/$held.7/tmp/left"
scontrol release "$held"
for _ in $(seq 1 300); do
  [ ! -e "$cluster/jobdirs/$held.7" ] && break
  sleep 0.1
done
[ ! -e "$cluster/jobdirs/$held.7" ] || fail "the epilog of job $held left $cluster/jobdirs/$held.7"
[ -d "$cluster/jobdirs/$((held + 1000)).0" ] || fail "the epilog of job $held removed another job's directory"
rmdir "$cluster/jobdirs/$((held + 1000)).0"

echo "== a sealed image: mounted for the step by slurmstepd, released when it ends"
"$ctl" build minimal --sealed --store "$work/store" --register SEALED -q > /dev/null
sha=$(sha256sum "$("$ctl" resolve SEALED --store "$work/store")" | cut -c1-64)
# The job's / is the EROFS image (mountinfo: the filesystem type after " - ").
out=$(as_nobody timeout 60 srun --chroot=SEALED sh -c 'grep ^ID= /etc/os-release; grep " / / " /proc/self/mountinfo | grep -c " - erofs "; pwd')
expect "srun --chroot=SEALED" "ID=chrootctl-minimal
1
$jobs" "$out"
no_mounts_left "after the sealed image's step"
for _ in $(seq 1 100); do
  grep -q "/chrootctl/sealed/$sha/" /proc/self/mountinfo || break
  sleep 0.1
done
if grep "/chrootctl/sealed/$sha/" /proc/self/mountinfo; then fail "the sealed image stayed mounted after its step (above)"; fi

echo "== --chroot=UNKNOWN fails the job with a message naming UNKNOWN"
set +e
out=$(as_nobody timeout 60 srun --chroot=UNKNOWN touch ran.srun 2>&1)
rc=$?
set -e
[ "$rc" != 0 ] || fail "srun --chroot=UNKNOWN exited 0"
grep -qF "error: chrootctl: --chroot=UNKNOWN: 'UNKNOWN' is not in the catalogue $work/store/catalogue.toml; the job was not started" <<<"$out" \
  || fail "srun --chroot=UNKNOWN said: $out"
[ ! -e ran.srun ] || fail "the job of srun --chroot=UNKNOWN ran"
cat > unknown.sh <<'EOF'
#!/bin/sh
touch ran.sbatch
EOF
chmod 0755 unknown.sh
unknown=$(as_nobody sbatch --parsable --chroot=UNKNOWN -o unknown.out unknown.sh)
for _ in $(seq 1 300); do
  [ -z "$(squeue -h -j "$unknown" 2>/dev/null)" ] && break
  sleep 0.1
done
grep -qF "error: chrootctl: --chroot=UNKNOWN: 'UNKNOWN' is not in the catalogue" unknown.out || fail "sbatch --chroot=UNKNOWN wrote: $(cat unknown.out)"
[ ! -e ran.sbatch ] || fail "the batch script of sbatch --chroot=UNKNOWN ran"
set +e
out=$(as_nobody timeout 60 srun --chroot='no/such' true 2>&1)
rc=$?
set -e
[ "$rc" != 0 ] || fail "srun --chroot=no/such exited 0"
grep -qF "srun: error: --chroot=no/such: the name 'no/such' holds '/'" <<<"$out" || fail "srun --chroot=no/such said: $out"

echo "== a job without --chroot runs on the host as before"
out=$(as_nobody timeout 60 srun sh -c 'grep ^ID= /etc/os-release; pwd')
expect "srun without --chroot" "$(grep ^ID= /etc/os-release)
$jobs" "$out"
no_mounts_left "at the end"
echo "PASS: Slurm runs jobs in named roots"
