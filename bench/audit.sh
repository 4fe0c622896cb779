#!/usr/bin/env bash
# `chrootctl audit` against `chrootctl manifest check` on the same tree, in the same run (target:
# audit, drift included, at most 1.5x the check): the debian12 image (built once into the cache
# with `chrootctl build debian12`, which needs the Debian archive the first time) and the larger
# unstripped Debian 12 minbase tree; and `audit --all` over 1, 5 and 10 registered copies of the
# minbase tree (target: linear). Warm cache. Prints a markdown table for docs/benchmarks.md.
source "$(dirname "$0")/lib.sh"
bench_deps
root=$(minbase_tree)
out=$(mktemp -d /tmp/chrootctl-bench-audit.XXXXXX)
trap 'rm -rf "$out"' EXIT
runs=${RUNS:-10}

entries=$(find "$root" | wc -l)
bytes=$(du -sb "$root" | cut -f1)

# One build directory whose root is the tree, with an empty policy so that the site's does not
# change the work done.
mkdir -p "$out/b"
ln -s "$root" "$out/b/root"
"$ctl" manifest create -q "$root" -o "$out/b/manifest" >/dev/null
: > "$out/policy.toml"
chmod 600 "$out/policy.toml"

# The debian12 image, as the builder makes it (stripped, with its own manifest).
"$ctl" build debian12 --store "$cache/debian12-store" -q --json > "$out/d12.json"
d12_path=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["path"])' "$out/d12.json")
d12_entries=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["entries"])' "$out/d12.json")

# Ten images for --all, copies of the tree (kept in the cache), registered in three stores.
images=$cache/audit-images
for i in $(seq 1 10); do
  b=$images/img$i/1
  if [ ! -e "$b/manifest" ]; then
    rm -rf "$images/img$i"
    mkdir -p "$b"
    cp -a "$root" "$b/root"
    "$ctl" manifest create -q "$b/root" -o "$b/manifest" >/dev/null
  fi
done
for n in 1 5 10; do
  for i in $(seq 1 "$n"); do
    "$ctl" add -q "img$i" "$images/img$i/1" --store "$out/s$n" >/dev/null
  done
done

run() {  # name command...
  local name=$1; shift
  hyperfine --style none --warmup 3 --runs "$runs" --export-json "$out/$name.json" "$*" >/dev/null 2>&1
  read -r mean median sd < <(hf_stats "$out/$name.json")
  # CPU time (user + system) as well: on a shared machine it moves much less than wall time.
  cpu=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print("%.1f" % ((r["user"] + r["system"]) * 1000))' "$out/$name.json")
  printf '%s %s %s %s %s\n' "$name" "$mean" "$median" "$sd" "$cpu" >> "$out/results"
}
# --severity high: the unstripped tree has medium findings, and hyperfine wants exit status 0.
run d12check "$ctl manifest check -q $d12_path/root $d12_path/manifest"
run d12audit "$ctl audit -q --severity high --policy $out/policy.toml $d12_path"
run check "$ctl manifest check -q $root $out/b/manifest"
run audit "$ctl audit -q --severity high --policy $out/policy.toml $out/b"
run check2 "$ctl manifest check -q $root $out/b/manifest"
run audit2 "$ctl audit -q --severity high --policy $out/policy.toml $out/b"
for n in 1 5 10; do
  run all$n "$ctl audit -q --all --severity high --policy $out/policy.toml --store $out/s$n"
done
"$ctl" audit -q --policy "$out/policy.toml" "$out/b" | tail -1 > "$out/summary" || true
"$ctl" audit -q --policy "$out/policy.toml" "$d12_path" | tail -1 > "$out/d12summary" || true

python3 - "$out/results" "$entries" "$bytes" "$(cat "$out/summary")" "$d12_entries" "$(cat "$out/d12summary")" <<'PY'
import sys
rows = {l.split()[0]: [float(x) for x in l.split()[1:]] for l in open(sys.argv[1])}
entries, size, summary = sys.argv[2], int(sys.argv[3]), sys.argv[4]
d12_entries, d12_summary = sys.argv[5], sys.argv[6]
print(f"Trees: the debian12 image ({d12_entries} entries, `chrootctl build debian12`) and "
      f"`mmdebstrap --variant=minbase bookworm` unstripped ({entries} entries, {size/2**20:.0f} MiB); "
      f"warm cache; hyperfine, 3 warm-up runs.\n")
print("| command | median ms | mean ms | stddev ms | cpu ms (user+sys) |")
print("|---|---:|---:|---:|---:|")
names = [
  ("d12check", "debian12 image: `chrootctl manifest check ROOT M`"),
  ("d12audit", "debian12 image: `chrootctl audit BUILD` (drift included)"),
  ("check", "minbase: `chrootctl manifest check ROOT M`"),
  ("audit", "minbase: `chrootctl audit BUILD` (drift included)"),
  ("check2", "minbase: `chrootctl manifest check ROOT M` (again)"),
  ("audit2", "minbase: `chrootctl audit BUILD` (again)"),
  ("all1", "`chrootctl audit --all`, 1 image"),
  ("all5", "`chrootctl audit --all`, 5 images"),
  ("all10", "`chrootctl audit --all`, 10 images"),
]
for k, label in names:
  mean, med, sd, cpu = rows[k]
  print(f"| {label} | {med:.1f} | {mean:.1f} | {sd:.1f} | {cpu:.1f} |")
med = lambda k: rows[k][1]
ratio = (med("audit") + med("audit2")) / (med("check") + med("check2"))
print()
cpu = lambda k: rows[k][3]
cpu_ratio = (cpu("audit") + cpu("audit2")) / (cpu("check") + cpu("check2"))
print(f"- debian12 image: audit vs manifest check, same run: {med('d12audit') / med('d12check'):.2f}x wall (median), "
      f"{cpu('d12audit') / cpu('d12check'):.2f}x cpu (target at most 1.5x)")
print(f"- minbase tree: audit vs manifest check, same run: {ratio:.2f}x wall (median), {cpu_ratio:.2f}x cpu (target at most 1.5x)")
per = {n: med(f"all{n}") / n for n in (1, 5, 10)}
cpu_per = {n: cpu(f"all{n}") / n for n in (1, 5, 10)}
print(f"- audit --all per image: {per[1]:.1f} ms (1 image), {per[5]:.1f} ms (5), {per[10]:.1f} ms (10); "
      f"10 images take {med('all10') / med('all1'):.2f}x one image (linear: 10x); "
      f"cpu per image {cpu_per[1]:.1f} / {cpu_per[5]:.1f} / {cpu_per[10]:.1f} ms")
tail = lambda t: t.split(': ', 1)[1] if ': ' in t else t
print(f"- the debian12 image: `{tail(d12_summary)}`; the minbase tree: `{tail(summary)}`")
PY
