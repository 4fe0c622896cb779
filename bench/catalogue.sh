#!/usr/bin/env bash
# What the launcher pays per job: 'resolve' (and 'resolve --fast', 'verify --fast') of a
# verified Debian 12 minbase image, warm cache, same run. Targets: resolve median under 5 ms,
# verify --fast under 30 ms. Prints a markdown table for docs/benchmarks.md.
source "$(dirname "$0")/lib.sh"
bench_deps
src=$(minbase_tree)
# The store must pass the same checks as on a worker: root-owned, unwritable by others, under
# /var/tmp (root-owned and sticky). mktemp -d makes it 0700.
work=$(mktemp -d /var/tmp/chrootctl-bench-catalogue.XXXXXX)
trap 'rm -rf "$work"' EXIT
store=$work/store
build=$store/minbase/bench-1
mkdir -p "$build"
cp -a "$src" "$build/root"
chmod 0755 "$build/root"
printf 'name = "minbase"\n' > "$build/recipe.toml"
"$ctl" manifest create -q "$build/root" -o "$build/manifest" >/dev/null
"$ctl" add -q --store "$store" MINBASE "$build" >/dev/null
printf '+RequestedChroot = "MINBASE"\nqueue\n' > "$work/job.sub"

entries=$(($(wc -l < "$build/manifest") - 2))
# Sanity: every command below must succeed, or its timing means nothing.
"$ctl" resolve --store "$store" MINBASE >/dev/null
"$ctl" resolve --fast --store "$store" MINBASE >/dev/null
"$ctl" verify --fast --store "$store" MINBASE >/dev/null
"$ctl" lookup --store "$store" "$work/job.sub" >/dev/null

run() {  # name command...
  local name=$1; shift
  hyperfine --style none --warmup 5 --runs "${RUNS:-50}" --export-json "$work/$name.json" "$*" >/dev/null 2>&1
  read -r mean median sd < <(hf_stats "$work/$name.json")
  printf '%s %s %s %s\n' "$name" "$mean" "$median" "$sd" >> "$work/results"
}
run version "$ctl --version"
run resolve "$ctl resolve --store $store MINBASE"
run lookup "$ctl lookup --store $store $work/job.sub"
run resolve_fast "$ctl resolve --fast --store $store MINBASE"
run verify_fast "$ctl verify --fast --store $store MINBASE"
run check_fast "$ctl manifest check --fast $build/root $build/manifest"
RUNS=${FULL_RUNS:-5} run verify_full "$ctl verify -q --store $store MINBASE"

python3 - "$work/results" "$entries" <<'PY'
import sys
rows = {l.split()[0]: [float(x) for x in l.split()[1:]] for l in open(sys.argv[1])}
entries = sys.argv[2]
print(f"Image: a copy of `mmdebstrap --variant=minbase bookworm` ({entries} entries) registered with `chrootctl add`; warm cache; hyperfine, 5 warm-up runs.\n")
print("| command | median ms | mean ms | stddev ms |")
print("|---|---:|---:|---:|")
names = {
  "version": "`chrootctl --version` (process start, for scale)",
  "resolve": "`chrootctl resolve NAME`",
  "lookup": "`chrootctl lookup job.sub`",
  "resolve_fast": "`chrootctl resolve --fast NAME`",
  "verify_fast": "`chrootctl verify --fast NAME`",
  "check_fast": "`chrootctl manifest check --fast ROOT M`",
  "verify_full": "`chrootctl verify NAME` (full re-hash)",
}
for k, label in names.items():
  mean, med, sd = rows[k]
  print(f"| {label} | {med:.1f} | {mean:.1f} | {sd:.1f} |")
print()
res, vf = rows["resolve"][1], rows["verify_fast"][1]
print(f"- resolve: {res:.1f} ms median (target under 5 ms): {'met' if res < 5 else 'NOT MET'}")
print(f"- verify --fast: {vf:.1f} ms median (target under 30 ms): {'met' if vf < 30 else 'NOT MET'}")
PY
