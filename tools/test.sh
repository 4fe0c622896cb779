#!/usr/bin/env bash
# Installs what the tests need, builds with warnings as errors, checks formatting and runs
# clang-tidy on the last commit's files (tools/lint.sh), and runs the whole suite: unit,
# integration and privileged tests, and the VM stage (ctest labels of the same names, and vm;
# docs/vm.md); then the sanitizer and fuzzing stage, in its own build tree
# (tools/sanitize.sh, docs/sanitizers.md). Arguments go to the first ctest run only.
# CHROOTCTL_REQUIRE_PRIVILEGED=1 turns a skipped privileged test into a failure.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bash "$here/tools/install-deps.sh"
# The same flags as the quick start (tools/build.sh): what it built is not built again.
BUILD_DIR=${BUILD_DIR:-$here/build} bash "$here/tools/build.sh"
# Formatting of every file, clang-tidy of the files the last commit changed (CONTRIBUTING.md).
bash "$here/tools/lint.sh" "${BUILD_DIR:-$here/build}"
(cd "${BUILD_DIR:-$here/build}" && ctest --output-on-failure -j"$(nproc)" "$@")
bash "$here/tools/sanitize.sh"
