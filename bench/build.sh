#!/usr/bin/env bash
# The builder against plain mmdebstrap, in one run: `chrootctl build debian12 --rebuild` vs
# `mmdebstrap --variant=minbase bookworm DIR` (target: within 1.15x), a cached
# `chrootctl build debian12` (target: under 1 s), and the strip plus manifest steps of the
# debian12 tree, read from the build log of each rebuild (target: under 0.5 s).
# Prints a markdown table for docs/benchmarks.md. RUNS (default 3) network builds each.
source "$(dirname "$0")/lib.sh"
bench_deps
out=$(mktemp -d /var/tmp/chrootctl-bench-build.XXXXXX)
trap 'rm -rf "$out"' EXIT
store=$out/store
runs=${RUNS:-3}

# Warm the host's package cache paths and the store once, outside the measurements.
"$ctl" build debian12 --store "$store" -q >/dev/null

hf() {  # name runs command [prepare]
  local name=$1 n=$2 cmd=$3 prep=${4:-true}
  hyperfine --style none --runs "$n" --prepare "$prep" --export-json "$out/$name.json" "$cmd" >/dev/null 2>&1
  read -r mean median sd < <(hf_stats "$out/$name.json")
  printf '%s %s %s %s\n' "$name" "$mean" "$median" "$sd" >> "$out/results"
}
# Alternate the two network-bound commands so the archive's speed affects both alike.
for i in $(seq "$runs"); do
  hf "mmdebstrap_$i" 1 "mmdebstrap --quiet --variant=minbase bookworm $out/mm" "rm -rf $out/mm"
  hf "rebuild_$i" 1 "$ctl build debian12 --store $store --rebuild -q"
  log=$(ls -t "$store"/debian12/*/build.log 2>/dev/null | head -1)
  python3 - "$log" >> "$out/strip" <<'PY'
import re, sys
t = {}
for line in open(sys.argv[1]):
    m = re.match(r"\[\s*([0-9.]+)s\] (\w+)", line)
    if m and m.group(2) not in t: t[m.group(2)] = float(m.group(1))
print(f'{(t["commit"] - t["strip"]) * 1000:.1f}')
PY
done
rm -rf "$out/mm"
hf cached 20 "$ctl build debian12 --store $store -q"

python3 - "$out/results" "$out/strip" "$store" <<'PY'
import statistics, sys, glob, os
rows = {}
for l in open(sys.argv[1]):
    k, mean, med, sd = l.split()
    rows[k] = (float(mean), float(med), float(sd))
mm = [rows[k][0] for k in rows if k.startswith("mmdebstrap_")]
rb = [rows[k][0] for k in rows if k.startswith("rebuild_")]
strip = [float(x) for x in open(sys.argv[2])]
cached = rows["cached"]
manifest = sorted(glob.glob(f"{sys.argv[3]}/debian12/*/manifest"))[-1]
entries = sum(1 for _ in open(manifest)) - 2
print(f"Tree: debian12 recipe (mmdebstrap minbase bookworm from the host's apt sources, stripped), {entries} entries; "
      f"{len(mm)} alternating runs of each network build, 20 cached runs.\n")
print("| command | median ms | mean ms | stddev ms |")
print("|---|---:|---:|---:|")
def row(label, xs):
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    print(f"| {label} | {statistics.median(xs):.1f} | {statistics.mean(xs):.1f} | {sd:.1f} |")
row("`mmdebstrap --variant=minbase bookworm DIR`", [x * 1 for x in mm])
row("`chrootctl build debian12 --rebuild`", rb)
print(f"| `chrootctl build debian12` (cached) | {cached[1]:.1f} | {cached[0]:.1f} | {cached[2]:.1f} |")
row("strip + manifest steps of the rebuilds (from build.log)", strip)
print()
ratio = statistics.median(rb) / statistics.median(mm)
print(f"- rebuild vs mmdebstrap: {ratio:.2f}x (target within 1.15x)")
print(f"- cached build: {cached[1]:.0f} ms (target under 1000 ms)")
print(f"- strip + manifest: {statistics.median(strip):.0f} ms (target under 500 ms)")
PY
