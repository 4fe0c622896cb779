#!/usr/bin/env bash
# Job launch against bubblewrap, in one run, on the same roots: a busybox-static tree and the
# debian12 image, and the same two sealed (run by name, their mounts kept). Every chrootctl
# launch has its own user namespace (an id block, the image
# idmapped), a cgroup in every hierarchy with a cgroup namespace, and a launch record; bwrap
# gets a user namespace too (--unshare-user --unshare-pid --unshare-ipc --unshare-uts). Measures
# the median launch of /bin/true as nobody and as root (whose sandbox is idmapped to its owner),
# 200 sequential and 20 concurrent launches with the leftovers counted (host mounts, job cgroups,
# launcher processes, launch records, id blocks), and the peak RSS of chrootctl. Prints a
# markdown section for docs/benchmarks.md. Run as root.
source "$(dirname "$0")/lib.sh"
bench_deps busybox-static erofs-utils
[ "$(id -u)" = 0 ] || { echo "bench/launch.sh: run as root" >&2; exit 1; }
out=$(mktemp -d /tmp/chrootctl-bench-launch.XXXXXX)
# The sealed images' mounts go with the rest (unmount, then cleanup), also on failure.
release() {
  for n in BBS D12S; do CHROOTCTL_CONFIG=$out/keep.toml "$ctl" unmount "$n" --store "$out/sealed-store" >/dev/null 2>&1 || true; done
  "$ctl" cleanup >/dev/null 2>&1 || true
  rm -rf "$out"
}
trap release EXIT

# The busybox root, rebuilt when busybox changes.
busybox_root() {
  local dir=$cache/busybox-root
  if ! cmp -s /bin/busybox "$dir/bin/busybox" 2>/dev/null; then
    rm -rf "$dir"
    mkdir -p "$dir"/{bin,tmp,var/tmp,proc,dev,etc,srv}
    cp /bin/busybox "$dir/bin/busybox"
    for a in sh true false sleep cat ls; do ln -s busybox "$dir/bin/$a"; done
    chmod 0755 "$dir"
  fi
  echo "$dir"
}

# The sandbox: a directory of nobody's below /tmp, a MOUNT_UNDER_SCRATCH directory, so inside
# the root it appears at its own path within SANDBOX/tmp (the job's scratch /tmp). A job as
# root runs for the sandbox's owner, whose ids its writes get through an idmapped mount.
sandbox=$out/sandbox
mkdir -p "$sandbox"
chmod 0755 "$out"
chown 65534:65534 "$sandbox"

leftovers() {  # mounts naming a root or the sandbox, job cgroups, launcher processes, records, id blocks
  local roots="$1"
  local mounts cgroups procs records blocks
  mounts=$(grep -cE "$roots|$sandbox" /proc/self/mountinfo || true)
  cgroups=$(find /sys/fs/cgroup/*/chrootctl /sys/fs/cgroup/chrootctl -mindepth 1 -maxdepth 1 -type d 2>/dev/null | wc -l)
  procs=$(pgrep -fc 'chrootctl (run|init)' || true)
  records=$(find /run/chrootctl/launches -mindepth 1 2>/dev/null | wc -l)
  blocks=$(find /run/chrootctl/idblocks -mindepth 1 -name '[0-9]*' 2>/dev/null | wc -l)
  echo "$mounts $cgroups $procs $records $blocks"
}

hf() {  # name command...
  local name=$1; shift
  hyperfine -N --style none --warmup 10 --runs "${RUNS:-200}" --export-json "$out/$name.json" "$*" >/dev/null 2>&1 ||
    { echo "bench/launch.sh: '$*' failed:" >&2; $* >&2; exit 1; }
  read -r mean median sd < <(hf_stats "$out/$name.json")
  printf '%s %s %s %s\n' "$name" "$mean" "$median" "$sd" >> "$out/results"
}

bb=$(busybox_root)
# The debian12 image as the builder makes it (built once into the cache; the first time needs
# the Debian archive).
mb=$("$ctl" build debian12 --store "$cache/debian12-store" -q --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["root"])')
# The same two images sealed (docs/sealed.md), registered in a catalogue of their own and run by
# name, with the site keeping their mounts (`sealed_keep_mounted`, `chrootctl mount`): a launch
# then only takes its share of the node's mount.
sstore=$out/sealed-store
mkdir -p "$sstore"
echo "sealed_keep_mounted = true" > "$out/keep.toml"
sealed() {  # NAME RECIPE: build sealed, register, mount
  local dir
  dir=$("$ctl" build "$2" --sealed --store "$cache/debian12-store" -q --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["path"])')
  CHROOTCTL_CONFIG=$out/keep.toml "$ctl" add "$1" "$dir" --store "$sstore" >/dev/null
  CHROOTCTL_CONFIG=$out/keep.toml "$ctl" mount "$1" --store "$sstore" >/dev/null
}
sealed BBS minimal
sealed D12S debian12
before=$(leftovers "$bb|$mb")
bwrap_args="--unshare-user --unshare-pid --unshare-ipc --unshare-uts"
for r in bb mb; do
  root=${!r}
  hf "${r}_run" "$ctl run --root $root --sandbox $sandbox --user nobody -- /bin/true"
  hf "${r}_root" "$ctl run --root $root --sandbox $sandbox --user root -- /bin/true"
  hf "${r}_limits" "$ctl run --root $root --sandbox $sandbox --user nobody --memory 1G --cpus 1 --pids 512 -- /bin/true"
  hf "${r}_bwrap" "bwrap $bwrap_args --bind $root / --proc /proc --dev /dev --tmpfs /tmp /bin/true"
done
CHROOTCTL_CONFIG=$out/keep.toml hf bb_sealed "$ctl run BBS --store $sstore --sandbox $sandbox --user nobody -- /bin/true"
CHROOTCTL_CONFIG=$out/keep.toml hf mb_sealed "$ctl run D12S --store $sstore --sandbox $sandbox --user nobody -- /bin/true"

# The launches and bwrap taken in turn (bench/interleave.c), so that the machine's drift between
# hyperfine's blocks does not fall on one of them only.
cc -O2 -o "$out/interleave" "$(dirname "$0")/interleave.c"
for r in bb mb; do
  root=${!r}
  # shellcheck disable=SC2086  # $bwrap_args is four options
  printf '%s %s\n' "$r" "$("$out/interleave" "${ROUNDS:-300}" "$ctl" run --root "$root" --sandbox "$sandbox" --user nobody -- /bin/true \
    ::: "$ctl" run --root "$root" --sandbox "$sandbox" --user root -- /bin/true \
    ::: "$(command -v bwrap)" $bwrap_args --bind "$root" / --proc /proc --dev /dev --tmpfs /tmp /bin/true | tr '\n' ' ')" >> "$out/interleaved"
done

# 200 sequential and 20 concurrent launches, then count what is left.
start=$(date +%s%N)
for i in $(seq 200); do "$ctl" run --root "$bb" --sandbox "$sandbox" --user nobody --memory 256M -- /bin/true || echo "launch $i failed" >&2; done
seq_s=$(( ($(date +%s%N) - start) / 1000000 ))
after_seq=$(leftovers "$bb|$mb")
for i in $(seq 20); do
  sb=$out/sb$i; mkdir -p "$sb"; chown 65534:65534 "$sb"
  "$ctl" run --root "$mb" --sandbox "$sb" --user nobody --memory 256M -- /bin/sh -c 'sleep 0.5' &
done
wait
after_conc=$(leftovers "$bb|$mb")

for n in BBS D12S; do CHROOTCTL_CONFIG=$out/keep.toml "$ctl" unmount "$n" --store "$sstore" >/dev/null; done
"$ctl" cleanup >/dev/null
sealed_left=$(grep -c "/chrootctl/sealed/" /proc/self/mountinfo || true)

rss_front=$(/usr/bin/time -f %M "$ctl" run --root "$mb" --sandbox "$sandbox" --user nobody -- /bin/true 2>&1 >/dev/null | tail -1)
rss_full=$(/usr/bin/time -f %M "$(dirname "$ctl")/chrootctl-full" run --root "$mb" --sandbox "$sandbox" --user nobody -- /bin/true 2>&1 >/dev/null | tail -1)
# shellcheck disable=SC2086
rss_bwrap=$(/usr/bin/time -f %M bwrap $bwrap_args --bind "$mb" / --proc /proc --dev /dev --tmpfs /tmp /bin/true 2>&1 >/dev/null | tail -1)
cg=$(awk '$3=="cgroup2"{v2=1} $3=="cgroup"{v1=1} END{print (v1?"v1":"") (v2?"+v2":"")}' /proc/mounts)

python3 - "$out/results" "$out/interleaved" "$before" "$after_seq" "$after_conc" "$seq_s" "$rss_front" "$rss_full" "$rss_bwrap" "$cg" "$(uname -r)" "$sealed_left" <<'PY'
import os, sys
rows = {l.split()[0]: [float(x) for x in l.split()[1:]] for l in open(sys.argv[1])}
inter = {l.split()[0]: [float(x) for x in l.split()[1:]] for l in open(sys.argv[2])}
before, after_seq, after_conc = (list(map(int, a.split())) for a in sys.argv[3:6])
seq_ms, rss_front, rss_full, rss_bwrap, cg, kernel = int(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8]), int(sys.argv[9]), sys.argv[10], sys.argv[11]
print(f"Roots: a busybox-static tree and the debian12 image (`chrootctl build debian12`); job `/bin/true` as nobody and as root; "
      f"Linux {kernel}, cgroups {cg}; hyperfine -N, 10 warm-up runs. Every chrootctl launch has its own user namespace (an id "
      f"block claimed and freed, the image idmapped), a cgroup in every hierarchy with a cgroup namespace, and a launch record; "
      f"bwrap runs with `{os.environ.get('BWRAP_ARGS', '--unshare-user --unshare-pid --unshare-ipc --unshare-uts')}`.\n")
print("| root | command | median ms | mean ms | stddev ms |")
print("|---|---|---:|---:|---:|")
names = [("run", "`chrootctl run --root ROOT --sandbox S --user nobody -- /bin/true`"),
         ("root", "`chrootctl run --root ROOT --sandbox S --user root -- /bin/true` (sandbox idmapped to its owner)"),
         ("limits", "as nobody, with `--memory 1G --cpus 1 --pids 512`"),
         ("sealed", "the same image sealed, by name: `chrootctl run NAME --sandbox S --user nobody -- /bin/true` (the site keeps its mount)"),
         ("bwrap", "`bwrap --unshare-user --unshare-pid --unshare-ipc --unshare-uts --bind ROOT / --proc /proc --dev /dev --tmpfs /tmp /bin/true`")]
for r, label in (("bb", "busybox"), ("mb", "debian12 image")):
    for k, cmd in names:
        if f"{r}_{k}" not in rows: continue
        mean, med, sd = rows[f"{r}_{k}"]
        print(f"| {label} | {cmd} | {med:.1f} | {mean:.1f} | {sd:.1f} |")
print()
for r, label in (("bb", "busybox"), ("mb", "debian12")):
    b = rows[f"{r}_bwrap"][1]
    print(f"- {label}: chrootctl run as nobody {rows[f'{r}_run'][1]/b:.2f}x bwrap's median (target: at most 1.25x); "
          f"as root {rows[f'{r}_root'][1]/b:.2f}x; the sealed image by name {rows[f'{r}_sealed'][1]/b:.2f}x (target: at most 1.25x)")
for r, label in (("bb", "busybox"), ("mb", "debian12")):
    n_med, n_mean, s_med, s_mean, b_med, b_mean = inter[r]
    print(f"- {label}, the three taken in turn ({os.environ.get('ROUNDS', '300')} rounds), median: chrootctl as nobody "
          f"{n_med:.2f} ms ({n_med/b_med:.2f}x), as root {s_med:.2f} ms ({s_med/b_med:.2f}x), bwrap {b_med:.2f} ms")
def left(a): return (f"{a[0]-before[0]} mounts, {a[1]-before[1]} job cgroups, {a[2]-before[2]} processes, {a[3]-before[3]} records, "
                     f"{a[4]-before[4]} id blocks")
print(f"- 200 sequential launches ({seq_ms/1000:.1f} s, {seq_ms/200:.1f} ms each, busybox, --memory 256M) left {left(after_seq)}")
print(f"- 20 concurrent launches (debian12, 0.5 s jobs) left {left(after_conc)}")
print(f"- the sealed images' mounts, after 'chrootctl unmount' and cleanup: {sys.argv[12]} left")
print(f"- peak RSS (launcher, init and job): chrootctl {rss_front/1024:.1f} MiB (the full tool, chrootctl-full, would be "
      f"{rss_full/1024:.1f} MiB), bwrap {rss_bwrap/1024:.1f} MiB (target under 8 MiB)")
PY
