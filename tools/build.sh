#!/usr/bin/env bash
# Configures and builds chrootctl in ./build (or $BUILD_DIR).
#   tools/build.sh [--target T]... [CMAKE-ARGS]...
# --target builds only T (repeatable; the quick start builds only what its job needs); other
# arguments go to cmake.
# Warnings are errors in every build made here, the quick start's as well as the tests': the
# flags are part of each object's command line, and a build with other flags would recompile
# everything the quick start compiled when tools/test.sh runs after it.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$here/build}
cmake_args=()
targets=()
while [ $# -gt 0 ]; do
  case $1 in
    --target)
      targets+=(--target "$2")
      shift 2
      ;;
    *)
      cmake_args+=("$1")
      shift
      ;;
  esac
done
cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCHROOTCTL_WERROR=ON "${cmake_args[@]}" >/dev/null
cmake --build "$build" -j"$(nproc)" "${targets[@]}"
