#!/usr/bin/env bash
# The system-call rule of CONTRIBUTING.md ("System calls"), checked: outside the layers, no
# library or command source calls the kernel on a path directly. Path-taking calls are where
# symlink races and missing O_NOFOLLOW/O_CLOEXEC live, so they go through sys:: (common) or the
# launcher's kernel::, which open relative to a held directory, never follow a symlink unless
# the name says so, retry EINTR and name the call in the error.
# Allowed to call them directly:
#  - the layers: common/src/sys.cpp, launcher/src/kernel.cpp, and the two tree walkers that
#    are layers of their own (common/src/tree_writer.cpp, common/src/manifest_fast.cpp);
#  - a line marked `// kernel-direct: WHY`, for code between fork (or clone) and exec, where
#    only async-signal-safe calls may run and a wrapper that allocates an error would not be.
# Calls on a descriptor the code holds (fchmod, fstat, fsync, ...) are not path calls and may
# be made directly, their result checked.
# Usage: tools/check_syscalls.sh   (exit 1 and FILE:LINE for each call that breaks the rule)
set -euo pipefail
cd "$(dirname "$0")/.."
calls='open|openat|openat2|creat|mkdir|mkdirat|rmdir|unlink|unlinkat|rename|renameat|renameat2|chmod|fchmodat|chown|lchown|fchownat|stat|lstat|fstatat|statx|link|linkat|symlink|symlinkat|readlink|readlinkat|mknod|mknodat|mount|umount|umount2|setxattr|lsetxattr|getxattr|lgetxattr|listxattr|llistxattr|removexattr|lremovexattr|utimensat|truncate|access|faccessat|mkdtemp|mkstemp|opendir|chdir|chroot|realpath|pivot_root'
layers='^(common/src/sys\.cpp|launcher/src/kernel\.cpp|common/src/tree_writer\.cpp|common/src/manifest_fast\.cpp):'
found=$(git ls-files -- '*.cpp' '*.hpp' ':!tests/' ':!fuzz/' ':!bench/' |
  xargs grep -nE "(^|[^A-Za-z0-9_:>.])::($calls)\(" |
  grep -vE "$layers" |
  grep -v '// kernel-direct: ' |
  grep -vE '^[^:]+:[0-9]+:[[:space:]]*//' || true)
if [ -n "$found" ]; then
  echo "$found"
  echo "tools/check_syscalls.sh: the calls above take a path outside the sys::/kernel:: layers (CONTRIBUTING.md, \"System calls\")" >&2
  exit 1
fi
echo "tools/check_syscalls.sh: no path-taking system call outside the layers"
