#!/usr/bin/env bash
# Judges one gtest suite's results from the VM stage (tests/vm/run.sh): ctest's vm.SUITE.
#
#   bash tests/vm/check.sh [--summary] RESULTS-DIR SUITE
#
# Passes only if the guest ran to the end, the suite's process exited 0, and its XML report
# lists at least one test with none failed, in error or skipped (under
# CHROOTCTL_REQUIRE_PRIVILEGED=1 a skip is a failure). On failure it prints the failed tests and
# the suite's log; --summary prints one line either way. Exit 77 (ctest's skip) when the stage
# itself was skipped here.
set -euo pipefail
summary=0
if [ "${1:-}" = --summary ]; then summary=1; shift; fi
[ $# = 2 ] || { echo "usage: $0 [--summary] RESULTS-DIR SUITE" >&2; exit 2; }
results=$1
suite=$2
file=${suite//\//_}
status=$(cat "$results/status" 2>/dev/null || echo "failed: no results in $results: run tests/vm/run.sh (ctest's vm.boot) first")
case $status in
  skipped:*) echo "$suite: the VM stage was ${status}"; exit 77 ;;
esac

fail() {
  echo "$suite: FAILED in the guest: $*"
  if [ "$summary" = 0 ]; then
    if [ -f "$results/$file.xml" ]; then
      grep -o '<testcase name="[^"]*"[^>]*' "$results/$file.xml" | grep -E 'result="(skipped|suppressed)"|status="notrun"' |
        sed 's/^<testcase name="\([^"]*\)".*/  not run: \1/' || true
    fi
    if [ -f "$results/$file.log" ]; then
      echo "---- $file.log (in $results)"
      cat "$results/$file.log"
    fi
    [ "$status" = ran ] || echo "---- the stage: $status (console.log in $results)"
  fi
  exit 1
}

if [ ! -f "$results/$file.rc" ]; then
  if [ "$status" = ran ]; then fail "the guest did not run it (not selected by tests/vm/suites.txt?)"; fi
  fail "the guest did not run it: $status"
fi
rc=$(cat "$results/$file.rc")
[ -f "$results/$file.xml" ] || fail "no XML report (exit $rc$([ "$rc" = 124 ] && echo ": timed out"))"
# The suite's own element: <testsuite name="SUITE" tests="N" failures="N" disabled="N" skipped="N" errors="N" ...>
element=$(grep -m1 "<testsuite name=\"$suite\" " "$results/$file.xml" || true)
[ -n "$element" ] || fail "its XML report has no <testsuite name=\"$suite\">"
count() { sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p" <<<"$element"; }
tests=$(count tests)
failures=$(count failures)
errors=$(count errors)
skipped=$(count skipped)
if [ "$rc" != 0 ] || [ "${tests:-0}" -eq 0 ] || [ "$failures" != 0 ] || [ "$errors" != 0 ] || [ "${skipped:-0}" != 0 ]; then
  fail "exit $rc, $tests tests, $failures failed, $errors errors, $skipped skipped"
fi
[ "$status" = ran ] || fail "$status"
echo "$suite: $tests tests passed in the guest ($(sed -n 's/^kernel //p' "$results/guest.txt" 2>/dev/null))"
