#!/usr/bin/env bash
# Manifest engine against its peers on a Debian 12 minbase tree, warm cache, same run.
# Prints a markdown table for docs/benchmarks.md.
source "$(dirname "$0")/lib.sh"
bench_deps
root=$(minbase_tree)
out=$(mktemp -d /tmp/chrootctl-bench.XXXXXX)
trap 'rm -rf "$out"' EXIT

files=$(find "$root" -type f | wc -l)
entries=$(find "$root" | wc -l)
bytes=$(du -sb "$root" | cut -f1)
"$ctl" manifest create -q "$root" -o "$out/m" >/dev/null

run() {  # name command...
  local name=$1; shift
  hyperfine --style none --warmup 3 --runs "${RUNS:-20}" --export-json "$out/$name.json" "$*" >/dev/null 2>&1
  read -r mean median sd < <(hf_stats "$out/$name.json")
  printf '%s %s %s %s\n' "$name" "$mean" "$median" "$sd" >> "$out/results"
}
run create "$ctl manifest create -q $root -o $out/m2"
run find_sha256sum "find $root -type f -print0 | xargs -0 sha256sum > /dev/null"
run bsdtar_mtree "bsdtar --format=mtree --options=mtree:sha256 -cf /dev/null $root"
run check "$ctl manifest check -q $root $out/m"
run check_fast "$ctl manifest check --fast $root $out/m"
peak=$(/usr/bin/time -f %M "$ctl" manifest create -q "$root" -o "$out/m3" 2>&1 >/dev/null | tail -1)

python3 - "$out/results" "$files" "$entries" "$bytes" "$peak" "$root" <<'PY'
import sys
rows = {l.split()[0]: [float(x) for x in l.split()[1:]] for l in open(sys.argv[1])}
files, entries, size, peak, root = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
med = lambda k: rows[k][1]
print(f"Tree: `mmdebstrap --variant=minbase bookworm`, {entries} entries, {files} files, {size/2**20:.0f} MiB; warm cache; hyperfine, 3 warm-up runs.\n")
print("| command | median ms | mean ms | stddev ms |")
print("|---|---:|---:|---:|")
names = {
  "create": "`chrootctl manifest create ROOT -o M`",
  "find_sha256sum": "`find ROOT -type f -print0 \\| xargs -0 sha256sum`",
  "bsdtar_mtree": "`bsdtar --format=mtree --options=mtree:sha256 -cf /dev/null ROOT`",
  "check": "`chrootctl manifest check ROOT M`",
  "check_fast": "`chrootctl manifest check --fast ROOT M`",
}
for k, label in names.items():
  m, mean, sd = rows[k][1], rows[k][0], rows[k][2]
  print(f"| {label} | {m:.1f} | {mean:.1f} | {sd:.1f} |")
print()
print(f"- create vs find+sha256sum: {med('find_sha256sum')/med('create'):.2f}x faster (target 3x)")
print(f"- create vs bsdtar mtree: {med('bsdtar_mtree')/med('create'):.2f}x faster (target 2.5x)")
print(f"- check --fast vs full check: {med('check')/med('check_fast'):.2f}x faster (target 10x)")
print(f"- peak RSS of create: {peak/1024:.1f} MiB (target under 64 MiB)")
PY
