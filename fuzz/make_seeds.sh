#!/usr/bin/env bash
# Makes the generated seed corpora, OUT-DIR/TARGET/ (fuzz/CMakeLists.txt runs it at build time):
# what chrootctl's own writers make (chrootctl_fuzz_seeds), export archives written by the
# tests' hostile_export.py, and the shipped recipes and system-call policies.
#   make_seeds.sh SEEDS-PROGRAM SOURCE-DIR OUT-DIR
set -euo pipefail
program=$1 src=$2 out=$3
rm -rf "$out"
mkdir -p "$out/recipe" "$out/seccomp_policy" "$out/import"
"$program" "$out"
cp "$src"/recipes/*.toml "$out/recipe/"
cp "$src"/seccomp/policies/*.toml "$out/seccomp_policy/"
# Imports that succeed, refuse what --strip defuses, and refuse damage of several kinds. Kept
# uncompressed, so that mutations change the tar rather than break zstd's frames; one stays
# compressed, as exports are.
for scenario in clean privileged mismatch sparse control control-toml control-manifest; do
  python3 "$src/tests/privileged/hostile_export.py" "$out/import/$scenario.tar.zst" "$scenario"
  [ "$scenario" = clean ] && cp "$out/import/clean.tar.zst" "$out/import/clean-compressed.tar.zst"
  zstd -q -d --rm "$out/import/$scenario.tar.zst"
done
