#!/usr/bin/env bash
# Fuzzes with one target for a while: ctest's fuzz.TARGET tests, and longer runs by hand
# (README, "Sanitizers and fuzzing").
#   run.sh FUZZER SEED-DIR...
# CHROOTCTL_FUZZ_SECONDS   how long (default 30)
# CHROOTCTL_FUZZ_CORPUS    a directory that keeps what the runs find in CORPUS/TARGET, so that
#                          the next run starts from it (default: none, each run starts afresh)
# Inputs that crash are kept in the build tree, in fuzz/artifacts/TARGET/.
set -euo pipefail
fuzzer=$1
shift
name=$(basename "$fuzzer" _fuzz)
seconds=${CHROOTCTL_FUZZ_SECONDS:-30}
artifacts=$(dirname "$fuzzer")/artifacts/$name
# On a tmpfs when there is one: the import target ends every import with syncfs.
parent=/dev/shm
[ -d "$parent" ] && [ -w "$parent" ] || parent=${TMPDIR:-/tmp}
work=$(mktemp -d "$parent/chrootctl-fuzz-$name.XXXXXX")
trap 'rm -rf "$work"' EXIT
corpus=$work/corpus
if [ -n "${CHROOTCTL_FUZZ_CORPUS:-}" ]; then
  corpus=$CHROOTCTL_FUZZ_CORPUS/$name
fi
mkdir -p "$corpus" "$artifacts" "$work/tmp"
# -timeout: an input that takes this long is a finding (a hang), like a crash.
TMPDIR=$work/tmp "$fuzzer" -max_total_time="$seconds" -timeout=20 -print_final_stats=1 \
  -artifact_prefix="$artifacts/" "$corpus" "$@"
