#!/usr/bin/env bash
# The sanitizer and fuzzing stage (README, "Sanitizers and fuzzing"): one clang build in
# ./build-san (or $SAN_BUILD_DIR) with AddressSanitizer, UndefinedBehaviorSanitizer and
# libFuzzer's coverage serves both. It runs the unit, integration and privileged tests that
# ASan allows (see the exclusions below), then every fuzz target's regression corpus, then each
# fuzz target for CHROOTCTL_FUZZ_SECONDS (30) seconds. Extra arguments go to cmake.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${SAN_BUILD_DIR:-$here/build-san}
jobs=$(nproc)

# -O1 and line tables only: ASan's reports need no more, and the build is the stage's main cost.
cmake -S "$here" -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Sanitize \
  -DCMAKE_CXX_FLAGS_SANITIZE="-O1 -gline-tables-only" \
  -DCHROOTCTL_SANITIZE=address,undefined -DCHROOTCTL_FUZZ=ON -DCHROOTCTL_WERROR=ON "$@" >/dev/null
cmake --build "$build" -j"$jobs" --target unit_tests integration_tests privileged_tests fuzz

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
cd "$build"
ctest --output-on-failure -j"$jobs" -L 'unit|integration|privileged'
ctest --output-on-failure -j"$jobs" -L 'fuzz'
