#!/usr/bin/env bash
# The builder against plain mmdebstrap, in one run: `chrootctl build debian12 --rebuild` vs
# `mmdebstrap --variant=minbase bookworm DIR` (target: within 1.15x), a cached
# `chrootctl build debian12` (target: under 1 s), and the strip plus manifest steps of the
# debian12 tree, from each rebuild's --json step times (target: under 0.5 s).
# Prints a markdown table for docs/benchmarks.md. RUNS (default 3) network builds each.
source "$(dirname "$0")/lib.sh"
bench_deps
out=$(mktemp -d /var/tmp/chrootctl-bench-build.XXXXXX)
trap 'rm -rf "$out"' EXIT
store=$out/store
runs=${RUNS:-3}

# Warm the host's package cache paths and the store once, outside the measurements.
"$ctl" build debian12 --store "$store" -q >/dev/null

wall() {  # name command...: one timed run, milliseconds appended to $out/results
  local name=$1; shift
  local t0 t1
  t0=$(date +%s%N)
  "$@" >/dev/null 2>&1
  t1=$(date +%s%N)
  echo "$name $(( (t1 - t0) / 1000000 ))" >> "$out/results"
}
# Alternate the two network-bound commands so the archive's speed affects both alike.
for i in $(seq "$runs"); do
  rm -rf "$out/mm"
  wall mmdebstrap mmdebstrap --quiet --variant=minbase bookworm "$out/mm"
  t0=$(date +%s%N)
  "$ctl" build debian12 --store "$store" --rebuild --json > "$out/rebuild.json"
  t1=$(date +%s%N)
  echo "rebuild $(( (t1 - t0) / 1000000 ))" >> "$out/results"
  python3 - "$out/rebuild.json" >> "$out/strip" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["step_seconds"]
d = json.load(open(sys.argv[1]))
print(f"{(s['strip'] + s['manifest']) * 1000:.1f} {(d['seconds'] - s['base']) * 1000:.1f}")
PY
done
rm -rf "$out/mm"
hyperfine --style none --warmup 2 --runs 20 --export-json "$out/cached.json" "$ctl build debian12 --store $store -q" >/dev/null 2>&1
read -r c_mean c_median c_sd < <(hf_stats "$out/cached.json")

python3 - "$out/results" "$out/strip" "$store" "$c_mean" "$c_median" "$c_sd" <<'PY'
import statistics, sys, glob, os
mm, rb = [], []
for l in open(sys.argv[1]):
    k, ms = l.split()
    (mm if k == "mmdebstrap" else rb).append(float(ms))
pairs = [l.split() for l in open(sys.argv[2])]
strip = [float(a) for a, _ in pairs]
overhead = [float(b) for _, b in pairs]
cached = (float(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]))
manifest = sorted(glob.glob(f"{sys.argv[3]}/debian12/*/manifest"))[-1]
entries = sum(1 for _ in open(manifest)) - 2
print(f"Tree: debian12 recipe (mmdebstrap minbase bookworm from the host's apt sources, stripped), {entries} entries; "
      f"{len(mm)} alternating runs of each network build, 20 cached runs.\n")
print("| command | median ms | mean ms | stddev ms |")
print("|---|---:|---:|---:|")
def row(label, xs):
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    print(f"| {label} | {statistics.median(xs):.1f} | {statistics.mean(xs):.1f} | {sd:.1f} |")
row("`mmdebstrap --variant=minbase bookworm DIR`", mm)
row("`chrootctl build debian12 --rebuild`", rb)
print(f"| `chrootctl build debian12` (cached) | {cached[1]:.1f} | {cached[0]:.1f} | {cached[2]:.1f} |")
row("strip + manifest steps of each rebuild (`--json` step_seconds)", strip)
row("each rebuild minus its own mmdebstrap step", overhead)
print()
ratio = statistics.median(rb) / statistics.median(mm)
print(f"- rebuild vs mmdebstrap: {ratio:.2f}x (target within 1.15x); the builder's own work beyond mmdebstrap: "
      f"{statistics.median(overhead):.0f} ms, {statistics.median(overhead) / statistics.median(rb) * 100:.1f}% of a rebuild")
print(f"- cached build: {cached[1]:.0f} ms (target under 1000 ms)")
print(f"- strip + manifest: {statistics.median(strip):.0f} ms (target under 500 ms)")
PY
