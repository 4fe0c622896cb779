#!/usr/bin/env bash
# Style and static checks (CONTRIBUTING.md, "Formatting and static checks"):
#  - clang-format (.clang-format) on every C and C++ file of the tree: it is cheap, and the tree
#    is kept formatted, so any difference is a mistake of the change;
#  - tools/check_syscalls.sh on every source file: no path-taking system call outside the
#    sys::/kernel:: layers;
#  - clang-tidy (.clang-tidy: bugprone-*, cert-err33-c, performance-*) on the C++ files the
#    change touches, against the build's compile_commands.json: the checks are slow, and a file
#    is made clean when it is next changed.
# The change is LINT_BASE..HEAD (LINT_BASE defaults to HEAD~1, the commit under test in CI).
# Usage: tools/lint.sh [BUILD_DIR]   (BUILD_DIR defaults to ./build, which must be configured)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-${BUILD_DIR:-$here/build}}
cd "$here"

command -v clang-format >/dev/null && command -v clang-tidy >/dev/null ||
  { echo "tools/lint.sh: clang-format and clang-tidy are needed (bash tools/install-deps.sh)" >&2; exit 2; }
[ -f "$build/compile_commands.json" ] || { echo "tools/lint.sh: no $build/compile_commands.json (build first)" >&2; exit 2; }

status=0
mapfile -t sources < <(git ls-files '*.cpp' '*.hpp' '*.c' '*.h' | grep -v '^tests/data/')
if ! clang-format --dry-run --Werror "${sources[@]}"; then
  echo "tools/lint.sh: clang-format: the files above differ from .clang-format (run: clang-format -i FILE)" >&2
  status=1
fi

# The system-call rule (CONTRIBUTING.md, "System calls") on every source file: cheap, like the
# formatting.
if ! bash "$here/tools/check_syscalls.sh"; then
  status=1
fi

base=${LINT_BASE:-HEAD~1}
if git rev-parse -q --verify "$base^{commit}" >/dev/null; then
  # Translation units only (headers are checked through them, see HeaderFilterRegex); files the
  # build does not compile (fuzz targets without CHROOTCTL_FUZZ, the Slurm plugin's C) are left out.
  mapfile -t changed < <(git diff --name-only --diff-filter=d "$base" HEAD -- '*.cpp' |
    while read -r f; do grep -q "\"file\": \"$here/$f\"" "$build/compile_commands.json" && echo "$f"; done)
  if [ "${#changed[@]}" -gt 0 ]; then
    echo "tools/lint.sh: clang-tidy on ${#changed[@]} changed file(s) since $base"
    # -Wno-unknown-warning-option: the build's flags are GCC's (-Wno-restrict).
    if ! clang-tidy -p "$build" --quiet --warnings-as-errors='*' --extra-arg=-Wno-unknown-warning-option "${changed[@]}" 2>/dev/null; then
      echo "tools/lint.sh: clang-tidy found the problems above" >&2
      status=1
    fi
  else
    echo "tools/lint.sh: no changed C++ file since $base for clang-tidy"
  fi
else
  echo "tools/lint.sh: $base is not a commit here; clang-tidy skipped" >&2
fi
exit "$status"
