#!/usr/bin/env bash
# The sanitizer and fuzzing stage (docs/sanitizers.md): one clang build in ./build-san (or
# $SAN_BUILD_DIR) with AddressSanitizer, UndefinedBehaviorSanitizer and libFuzzer's coverage
# serves both. It runs the unit, integration and privileged tests (all but those listed below),
# then every fuzz target's regression corpus, then each fuzz target for CHROOTCTL_FUZZ_SECONDS
# (15 here; more by hand: CHROOTCTL_FUZZ_SECONDS=600 bash tools/sanitize.sh). Extra arguments
# go to cmake. Needs clang (tools/install-deps.sh installs it).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${SAN_BUILD_DIR:-$here/build-san}
jobs=$(nproc)
export CHROOTCTL_FUZZ_SECONDS=${CHROOTCTL_FUZZ_SECONDS:-15}

# Tests this stage leaves to the normal build's run (docs/sanitizers.md).
excluded=(
  # ASan cannot run it: the SPANK plugin is a module that slurmd and srun, programs built
  # without ASan, load; an ASan-built module needs the ASan runtime first in the process.
  'privileged\.batch_slurm'
  # Time only (they pass under ASan): each spends minutes in mmdebstrap or debootstrap making a
  # Debian tree (2 to 6 minutes each under ASan on a busy 2-core machine, 17 together), not in
  # chrootctl's code, which other tests reach with the offline recipes.
  'privileged\.builder_debian12'
  'privileged\.builder_debootstrap'
  'privileged\.launcher_root_job_debian12'
  'SeccompDebian12\.'
  'AuditPrivileged\.CleanStrippedDebian12HasNothingHigh'
  # Not about the code ASan checks: the packaging and install tests check the release build's
  # artefacts (the front's dynamic symbols, which ASan's interceptors such as crypt_r add to;
  # the installed tree, which needs the SPANK plugin this stage does not build; the .deb, which
  # dpkg-buildpackage compiles again from scratch). The normal run keeps them.
  'integration\.front_libraries'
  'integration\.install'
  'integration\.package_rpm'
  'privileged\.package_deb'
)
exclude_regex=$(IFS='|'; echo "${excluded[*]}")

# -O1 and line tables only: ASan's reports need no more, and the build is the stage's main cost.
cmake -S "$here" -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Sanitize \
  -DCMAKE_CXX_FLAGS_SANITIZE="-O1 -gline-tables-only" \
  -DCHROOTCTL_SANITIZE=address,undefined -DCHROOTCTL_FUZZ=ON -DCHROOTCTL_WERROR=ON "$@" >/dev/null
cmake --build "$build" -j"$jobs" --target unit_tests integration_tests privileged_tests fuzz

# detect_leaks is ASan's default on Linux; said here because leaks are findings too.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
cd "$build"
ctest --output-on-failure -j"$jobs" -L '^(unit|integration|privileged)$' -E "$exclude_regex"
ctest --output-on-failure -j"$jobs" -L '^fuzz-regression$'
ctest --output-on-failure -j"$jobs" -L '^fuzz$'
