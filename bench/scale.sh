#!/usr/bin/env bash
# Sealed images at scale, in one run (docs/sealed.md): a 300,000-file tree and the debian12
# image, as directory images and as sealed images.
#   1. EROFS against squashfs for the image file: build time, size, mount, cold and warm reads
#      of every file, for the debian12 tree and the 300,000-file tree.
#   2. Launching /bin/true by name in the sealed 300,000-file image and in a sealed busybox image,
#      against bubblewrap on the directory tree of the same image (and the directory image by
#      name, as before), with the site keeping mounts and without; hyperfine blocks and the
#      commands taken in turn (bench/interleave.c).
#   3. A full verify of the sealed 300,000-file image against sha256sum of its image file.
#   4. Building the sealed debian12 image against its directory build (--rebuild, taken in turn,
#      BUILDS times each, default 3).
# RUNS (hyperfine runs per launch, default 200) and ROUNDS (launches taken in turn, default 300)
# shorten it; FORMATS=0 leaves out part 1 (the format comparison, about 20 minutes). Prints a markdown section for docs/benchmarks.md. Run as root, on an otherwise
# idle machine.
source "$(dirname "$0")/lib.sh"
bench_deps busybox-static erofs-utils squashfs-tools
[ "$(id -u)" = 0 ] || { echo "bench/scale.sh: run as root" >&2; exit 1; }
out=$(mktemp -d /tmp/chrootctl-bench-scale.XXXXXX)
mnt=$out/mnt
cleanup() {
  if mountpoint -q "$mnt" 2>/dev/null; then umount "$mnt"; fi
  CHROOTCTL_STATE_DIR=$out/state CHROOTCTL_CONFIG=$out/unmount.toml "$ctl" cleanup >/dev/null 2>&1 || true
  rm -rf "$out"
}
trap cleanup EXIT
mkdir -p "$mnt" "$out/state"
chmod 0755 "$out"
# Two site configurations: mounts released with their last launch (the default), and kept.
: > "$out/unmount.toml"
echo "sealed_keep_mounted = true" > "$out/keep.toml"
export CHROOTCTL_STATE_DIR=$out/state
store=$cache/scale-store
mkdir -p "$store"

# ---- the 300,000-file tree (made once, kept in the cache): 300 directories of 1,000 small
# files with distinct contents, and a shell to launch.
tree=$cache/tree300k
if [ ! -e "$tree/.complete" ]; then
  rm -rf "$tree"
  python3 - "$tree" <<'PY'
import os, sys
root = sys.argv[1]
for d in range(300):
    dd = os.path.join(root, "data", f"d{d:03d}")
    os.makedirs(dd)
    for f in range(1000):
        with open(os.path.join(dd, f"f{f:04d}.txt"), "w") as fh:
            fh.write(f"file {d}/{f}\n" * (1 + (d * 7 + f) % 23))
PY
  mkdir -p "$tree"/{bin,tmp,var/tmp,proc,dev,etc}
  cp /bin/busybox "$tree/bin/busybox"
  for a in sh true cat ls; do ln -s busybox "$tree/bin/$a"; done
  find "$tree" -exec touch -h -d @1700000000 {} +
  chmod 0755 "$tree"
  touch "$tree/.complete"
fi
cat > "$cache/big.toml" <<EOF
name = "big"
[base]
directory = { path = "$tree" }
[strip]
remove = ["/.complete"]
EOF
build_json() { "$ctl" build "$@" --store "$store" -q --json; }
json() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
register() { CHROOTCTL_CONFIG=$out/unmount.toml "$ctl" add "$1" "$2" --store "$store" >/dev/null; }
big_dir=$(build_json "$cache/big.toml" | json 'd["path"]')
big_sealed=$(build_json "$cache/big.toml" --sealed | json 'd["path"]')
bb_sealed=$(build_json minimal --sealed | json 'd["path"]')
register BIG "$big_dir"
register BIGS "$big_sealed"
register BBS "$bb_sealed"
big_root=$big_dir/root
entries=$(grep -c '^/' "$big_dir/manifest")

# ---- 1. EROFS against squashfs. Each image is made from the same tree by the tool alone (as
# the seal step runs mkfs.erofs), mounted through a loop device here; "cold" reads follow an
# unmount and POSIX_FADV_DONTNEED on the image file, so neither the filesystem's nor the image
# file's pages are cached.
d12_dir=$(build_json debian12 | json 'd["root"]')
fmt_row() {  # label tree format
  local label=$1 src=$2 fmt=$3 img=$out/img
  local t0 t1 best=
  for i in 1 2 3; do
    rm -f "$img"
    t0=$(date +%s%N)
    case $fmt in
      erofs) SOURCE_DATE_EPOCH=1700000000 mkfs.erofs --quiet -U 00000000-0000-0000-0000-000000000001 "$img" "$src" ;;
      erofs-lz4hc) SOURCE_DATE_EPOCH=1700000000 mkfs.erofs --quiet -zlz4hc -U 00000000-0000-0000-0000-000000000001 "$img" "$src" ;;
      squashfs-gzip) SOURCE_DATE_EPOCH=1700000000 mksquashfs "$src" "$img" -quiet -no-progress -noappend >/dev/null ;;
      squashfs-zstd) SOURCE_DATE_EPOCH=1700000000 mksquashfs "$src" "$img" -quiet -no-progress -noappend -comp zstd >/dev/null ;;
      squashfs-none) SOURCE_DATE_EPOCH=1700000000 mksquashfs "$src" "$img" -quiet -no-progress -noappend -noI -noD -noF -noX >/dev/null ;;
    esac
    t1=$(date +%s%N)
    local ms=$(( (t1 - t0) / 1000000 ))
    if [ -z "$best" ] || [ "$ms" -lt "$best" ]; then best=$ms; fi
  done
  local size
  size=$(stat -c %s "$img")
  local mount_ms
  mount_ms=$(hyperfine -N --style none --warmup 3 --runs 20 --export-json "$out/m.json" "sh -c 'mount -o ro,loop $img $mnt && umount $mnt'" >/dev/null 2>&1 &&
    hf_stats "$out/m.json" | cut -d' ' -f2)
  local cold=() warm=()
  for i in 1 2 3; do
    python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)' "$img"
    mount -o ro,loop "$img" "$mnt"
    t0=$(date +%s%N); tar -C "$mnt" -cf - . | cat >/dev/null; t1=$(date +%s%N)
    cold+=($(( (t1 - t0) / 1000000 )))
    t0=$(date +%s%N); tar -C "$mnt" -cf - . | cat >/dev/null; t1=$(date +%s%N)
    warm+=($(( (t1 - t0) / 1000000 )))
    umount "$mnt"
  done
  local cold_med warm_med
  cold_med=$(printf '%s\n' "${cold[@]}" | sort -n | sed -n 2p)
  warm_med=$(printf '%s\n' "${warm[@]}" | sort -n | sed -n 2p)
  echo "$label $fmt $best $size $mount_ms $cold_med $warm_med" >> "$out/formats"
}
if [ "${FORMATS:-1}" != 0 ]; then
  for f in erofs erofs-lz4hc squashfs-gzip squashfs-zstd squashfs-none; do
    fmt_row debian12 "$d12_dir" "$f"
    fmt_row 300k "$big_root" "$f"
  done
  # The trees themselves, warm, for scale.
  for t in "debian12 $d12_dir" "300k $big_root"; do
    set -- $t
    tar -C "$2" -cf - . | cat >/dev/null
    t0=$(date +%s%N); tar -C "$2" -cf - . | cat >/dev/null; t1=$(date +%s%N)
    echo "$1 directory - $(du -sb "$2" | cut -f1) - - $(( (t1 - t0) / 1000000 ))" >> "$out/formats"
  done
fi

# ---- 2. Launches. The sandbox belongs to nobody; jobs run as nobody.
sandbox=$out/sandbox
mkdir -p "$sandbox"
chown 65534:65534 "$sandbox"
hf() {  # name config command...
  local name=$1 cfg=$2; shift 2
  CHROOTCTL_CONFIG=$cfg hyperfine -N --style none --warmup 10 --runs "${RUNS:-200}" --export-json "$out/$name.json" "$*" >/dev/null 2>&1 ||
    { echo "bench/scale.sh: '$*' failed:" >&2; CHROOTCTL_CONFIG=$cfg $* >&2; exit 1; }
  read -r mean median sd < <(hf_stats "$out/$name.json")
  printf '%s %s %s %s\n' "$name" "$mean" "$median" "$sd" >> "$out/results"
}
run_args="--store $store --sandbox $sandbox --user nobody -- /bin/true"
bwrap_args="--unshare-user --unshare-pid --unshare-ipc --unshare-uts"
for cfg in keep unmount; do
  if [ "$cfg" = keep ]; then
    CHROOTCTL_CONFIG=$out/keep.toml "$ctl" mount BIGS --store "$store" >/dev/null
    CHROOTCTL_CONFIG=$out/keep.toml "$ctl" mount BBS --store "$store" >/dev/null
  fi
  hf "bigs_$cfg" "$out/$cfg.toml" "$ctl run BIGS $run_args"
  hf "bbs_$cfg" "$out/$cfg.toml" "$ctl run BBS $run_args"
  if [ "$cfg" = keep ]; then
    CHROOTCTL_CONFIG=$out/keep.toml "$ctl" unmount BIGS --store "$store" >/dev/null
    CHROOTCTL_CONFIG=$out/keep.toml "$ctl" unmount BBS --store "$store" >/dev/null
    CHROOTCTL_CONFIG=$out/unmount.toml "$ctl" cleanup >/dev/null
  fi
done
hf big_dir "$out/unmount.toml" "$ctl run BIG $run_args"
hf bwrap_big "$out/unmount.toml" "bwrap $bwrap_args --bind $big_root / --proc /proc --dev /dev --tmpfs /tmp /bin/true"
# In turn: the sealed images (kept mounted) and bwrap on the directory tree.
cc -O2 -o "$out/interleave" "$(dirname "$0")/interleave.c"
CHROOTCTL_CONFIG=$out/keep.toml "$ctl" mount BIGS --store "$store" >/dev/null
CHROOTCTL_CONFIG=$out/keep.toml "$ctl" mount BBS --store "$store" >/dev/null
# shellcheck disable=SC2086  # word lists
CHROOTCTL_CONFIG=$out/keep.toml "$out/interleave" "${ROUNDS:-300}" "$ctl" run BIGS $run_args ::: "$ctl" run BBS $run_args \
  ::: "$(command -v bwrap)" $bwrap_args --bind "$big_root" / --proc /proc --dev /dev --tmpfs /tmp /bin/true | tr '\n' ' ' > "$out/interleaved"
CHROOTCTL_CONFIG=$out/keep.toml "$ctl" unmount BIGS --store "$store" >/dev/null
CHROOTCTL_CONFIG=$out/keep.toml "$ctl" unmount BBS --store "$store" >/dev/null
CHROOTCTL_CONFIG=$out/unmount.toml "$ctl" cleanup >/dev/null
left=$(grep -c "$out/state" /proc/self/mountinfo || true)
# (no loop device left at all: the glob matches nothing and grep says so with status 2)
loops=$( (grep -lF "$big_sealed/image.erofs" /sys/block/loop*/loop/backing_file 2>/dev/null || true) | wc -l)

# ---- 3. verify of the sealed 300,000-file image against sha256sum of its file (warm).
image=$big_sealed/image.erofs
CHROOTCTL_CONFIG=$out/unmount.toml hyperfine -N --style none --warmup 1 --runs 5 --export-json "$out/verify.json" \
  "$ctl verify BIGS --store $store -q" "sha256sum $image" >/dev/null 2>&1
python3 - "$out/verify.json" >> "$out/verify" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(r["median"] * 1000, r["mean"] * 1000, r["stddev"] * 1000)
PY
image_size=$(stat -c %s "$image")

# ---- 4. debian12: directory build and sealed build, --rebuild, taken in turn.
for _ in $(seq "${BUILDS:-3}"); do
  build_json debian12 --rebuild | json 'd["seconds"]' >> "$out/d12_dir"
  build_json debian12 --rebuild --sealed | json '"%s %s" % (d["seconds"], dict(d["step_seconds"]).get("seal", 0))' >> "$out/d12_sealed"
done

python3 - "$out" "$entries" "$image_size" "$left" "$loops" "$(uname -r)" <<'PY'
import json, os, statistics, sys
out, entries, image_size, left, loops, kernel = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
print(f"Trees: the debian12 image and a directory recipe of 300,000 small files ({entries} entries); Linux {kernel}, "
      f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end; no device-mapper here (sealed images are checked "
      f"by SHA-256 once per boot, docs/sealed.md); hyperfine -N, {os.environ.get('RUNS', '200')} runs per launch command.\n")
if os.path.exists(f"{out}/formats"):
    print("### EROFS or squashfs\n")
    print("| tree | format | build ms (best of 3) | size MiB | mount+umount ms | cold read ms | warm read ms |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for line in open(f"{out}/formats"):
        t, fmt, build, size, mnt, cold, warm = line.split()
        mib = f"{int(size) / 2**20:.1f}"
        print(f"| {t} | {fmt} | {build} | {mib} | {mnt} | {cold} | {warm} |")
    print("\nReads: `tar -C MOUNT -cf - . | cat >/dev/null`, median of 3; cold after an unmount and POSIX_FADV_DONTNEED on the image file.\n")
rows = {l.split()[0]: [float(x) for x in l.split()[1:]] for l in open(f"{out}/results")}
print("### Launch\n")
print("| command | site keeps mounts | median ms | mean ms | stddev ms |")
print("|---|---|---:|---:|---:|")
labels = [("bigs_keep", "`chrootctl run BIGS ... -- /bin/true` (sealed, 300,000 files)", "yes"),
          ("bbs_keep", "`chrootctl run BBS ... -- /bin/true` (sealed busybox)", "yes"),
          ("bigs_unmount", "`chrootctl run BIGS ... -- /bin/true`", "no (mounted and unmounted by each launch)"),
          ("bbs_unmount", "`chrootctl run BBS ... -- /bin/true`", "no (mounted and unmounted by each launch)"),
          ("big_dir", "`chrootctl run BIG ... -- /bin/true` (the directory image, metadata check of every entry)", "-"),
          ("bwrap_big", "`bwrap --unshare-user --unshare-pid --unshare-ipc --unshare-uts --bind BIGROOT / --proc /proc --dev /dev --tmpfs /tmp /bin/true`", "-")]
for k, label, keep in labels:
    mean, med, sd = rows[k]
    print(f"| {label} | {keep} | {med:.1f} | {mean:.1f} | {sd:.1f} |")
b = rows["bwrap_big"][1]
print()
print(f"- sealed 300,000 files vs sealed busybox, kept mounts: {rows['bigs_keep'][1] / rows['bbs_keep'][1]:.2f}x (target at most 1.2x); "
      f"mounted by each launch: {rows['bigs_unmount'][1] / rows['bbs_unmount'][1]:.2f}x")
print(f"- vs bwrap on the directory tree, kept mounts: 300,000 files {rows['bigs_keep'][1] / b:.2f}x, busybox {rows['bbs_keep'][1] / b:.2f}x "
      f"(target at most 1.25x); mounted by each launch: {rows['bigs_unmount'][1] / b:.2f}x, {rows['bbs_unmount'][1] / b:.2f}x")
inter = [float(x) for x in open(f"{out}/interleaved").read().split()]
big_med, _, bb_med, _, bw_med, _ = inter
print(f"- taken in turn ({os.environ.get('ROUNDS', '300')} rounds, kept mounts), median: sealed 300,000 files {big_med:.2f} ms, "
      f"sealed busybox {bb_med:.2f} ms ({big_med / bb_med:.2f}x), bwrap {bw_med:.2f} ms ({big_med / bw_med:.2f}x and {bb_med / bw_med:.2f}x)")
print(f"- the directory image by name: {rows['big_dir'][1]:.1f} ms ({rows['big_dir'][1] / b:.1f}x bwrap)")
print(f"- left after the launches and cleanup: {left} mounts, {loops} loop devices")
v = [list(map(float, l.split())) for l in open(f"{out}/verify")]
print()
print("### Verify\n")
print("| command | median ms | mean ms | stddev ms |")
print("|---|---:|---:|---:|")
print(f"| `chrootctl verify BIGS` (the file's SHA-256 and dm-verity tree, and its manifest) | {v[0][0]:.1f} | {v[0][1]:.1f} | {v[0][2]:.1f} |")
print(f"| `sha256sum IMAGE` ({image_size / 2**20:.1f} MiB) | {v[1][0]:.1f} | {v[1][1]:.1f} | {v[1][2]:.1f} |")
print(f"\n- verify vs sha256sum: {v[0][0] / v[1][0]:.2f}x (target at most 1.2x)\n")
d = [float(x) for x in open(f"{out}/d12_dir")]
s = [list(map(float, l.split())) for l in open(f"{out}/d12_sealed")]
print("### Building the sealed debian12 image\n")
print("| build | runs (s) | median s |")
print("|---|---|---:|")
print(f"| `chrootctl build debian12 --rebuild` | {', '.join(f'{x:.1f}' for x in d)} | {statistics.median(d):.1f} |")
print(f"| `chrootctl build debian12 --rebuild --sealed` | {', '.join(f'{x[0]:.1f}' for x in s)} | {statistics.median([x[0] for x in s]):.1f} |")
seal = statistics.median([x[1] for x in s])
print(f"\n- sealed vs directory build: {statistics.median([x[0] for x in s]) / statistics.median(d):.2f}x (target at most 1.25x); "
      f"the seal step (mkfs.erofs, the hash tree, the file's SHA-256): {seal:.2f} s")
PY
