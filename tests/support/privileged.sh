# Sourced by the privileged shell tests. skip REASON: exit 77 (ctest's skip), or fail when
# CHROOTCTL_REQUIRE_PRIVILEGED=1 (CI), where a privileged test must run. Root is required.
skip() {
  if [ "${CHROOTCTL_REQUIRE_PRIVILEGED:-0}" = 1 ]; then echo "FAIL: $*" >&2; exit 1; fi
  echo "SKIP: $*" >&2; exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root"
