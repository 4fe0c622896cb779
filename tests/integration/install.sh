#!/usr/bin/env bash
# What `cmake --install` puts in place, from this build: the front and full binaries (the front
# finds the full one through ../libexec), the SPANK plugin, the man page, the bash completion
# (the one `chrootctl completion bash` prints, offering every option each verb's --help lists),
# the commented configuration (valid once uncommented), the tmpfiles.d entry (the directories
# systemd-tmpfiles makes from it) and chrootctl-cleanup.service.
set -euo pipefail
ctl=${CHROOTCTL_BIN:?run through ctest}
src=${CHROOTCTL_SOURCE_DIR:?run through ctest}
build=$(cd "$(dirname "$ctl")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")
dest="$work/dest"

echo "== cmake --install into DESTDIR"
DESTDIR="$dest" cmake --install "$build" >"$work/install.log" || { cat "$work/install.log" >&2; fail "cmake --install failed"; }
expected=(
  "$prefix/bin/chrootctl" "$prefix/libexec/chrootctl/chrootctl-full" "$prefix/share/man/man1/chrootctl.1"
  "$prefix/share/bash-completion/completions/chrootctl" "$prefix/lib/tmpfiles.d/chrootctl.conf"
  "$prefix/lib/systemd/system/chrootctl-cleanup.service" /etc/chrootctl/config.toml
)
[ -f "$build/batch/chrootctl_spank.so" ] && expected+=("$prefix/lib/chrootctl/chrootctl_spank.so")
for f in "${expected[@]}"; do [ -f "$dest$f" ] || fail "cmake --install did not install $f"; done
grep -qx "ExecStart=$prefix/bin/chrootctl cleanup" "$dest$prefix/lib/systemd/system/chrootctl-cleanup.service" ||
  fail "chrootctl-cleanup.service does not run $prefix/bin/chrootctl cleanup"
# A second install keeps the site's configuration and puts the example beside it.
echo "# the site's" >"$dest/etc/chrootctl/config.toml"
DESTDIR="$dest" cmake --install "$build" >/dev/null
[ "$(cat "$dest/etc/chrootctl/config.toml")" = "# the site's" ] || fail "a second install replaced the site's config.toml"
[ -f "$dest/etc/chrootctl/config.toml.example" ] || fail "a second install did not put config.toml.example beside config.toml"

echo "== the installed front runs the installed full tool"
installed="$dest$prefix/bin/chrootctl"
[ "$("$installed" --version)" = "$("$ctl" --version)" ] || fail "the installed chrootctl says $("$installed" --version)"
usage=$("$installed" doctor --help)
grep -qx 'Usage: chrootctl doctor \[--sandbox DIR\] \[--store DIR\] \[--json\]' <<<"${usage%%$'\n'*}" ||
  fail "the installed front did not reach chrootctl-full for doctor --help"
manpage="$dest$prefix/share/man/man1/chrootctl.1"
cmp -s "$manpage" "$src/docs/chrootctl.1" || fail "the installed man page is not docs/chrootctl.1"
# Rendered on one line per paragraph, with justification's extra spaces squeezed out.
man_text=$(MANWIDTH=1000 man -l "$manpage" 2>"$work/man.err" | tr -s ' ')
[ ! -s "$work/man.err" ] || fail "man -l warns: $(cat "$work/man.err")"

echo "== the completion is the verbs' own option tables"
completion="$dest$prefix/share/bash-completion/completions/chrootctl"
cmp -s "$completion" <("$ctl" completion bash) || fail "the installed completion differs from 'chrootctl completion bash'"
bash -n "$completion" || fail "the completion is not valid bash"
# For every verb and subcommand: each option its --help lists is offered after a '-'.
commands=$(bash -c "source '$completion'; COMP_WORDS=(chrootctl ''); COMP_CWORD=1; _chrootctl; printf '%s\n' \"\${COMPREPLY[@]}\"" | grep -v '^-')
[ "$(wc -l <<<"$commands")" -gt 20 ] || fail "the completion offers too few verbs: $commands"
# The man page documents every verb, with its exit status.
for verb in $commands; do
  [ "$verb" = help ] && continue
  grep -q "chrootctl $verb\b" <<<"$man_text" || fail "the man page does not document chrootctl $verb"
done
for verb in doctor log completion; do
  grep -A12 "^ *chrootctl $verb\b" <<<"$man_text" | grep -q "Exit status: 0" || fail "the man page gives no exit status for chrootctl $verb"
done
checked=0
for verb in $commands; do
  [ "$verb" = help ] && continue
  subs=$(bash -c "source '$completion'; COMP_WORDS=(chrootctl $verb ''); COMP_CWORD=2; _chrootctl; printf '%s\n' \"\${COMPREPLY[@]}\"" |
    grep -v '^-' || true)
  # A verb with subcommands offers them at its first argument; files are offered otherwise.
  if "$ctl" "$verb" --help 2>/dev/null | grep -q '^Options:'; then subs=""; fi
  # A verb with subcommands has its options on theirs.
  if [ -n "$subs" ]; then cmds=$(for s in $subs; do echo "$verb:$s"; done); else cmds=$verb; fi
  for cmd in $cmds; do
    words=(${cmd//:/ })
    help=$("$ctl" "${words[@]}" --help)
    offered=$(bash -c "source '$completion'; COMP_WORDS=(chrootctl ${words[*]} -); COMP_CWORD=${#words[@]}; COMP_CWORD=\$((COMP_CWORD+1)); _chrootctl; printf '%s\n' \"\${COMPREPLY[@]}\"")
    listed=$(sed -n 's/^  \(-[a-zA-Z], \)\{0,1\} *\(--[a-z][a-z0-9-]*\).*/\2/p' <<<"$help")
    [ -n "$listed" ] || fail "no option read from 'chrootctl ${words[*]} --help'"
    for opt in $listed; do
      grep -qx -- "$opt" <<<"$offered" || fail "'chrootctl ${words[*]} -<TAB>' does not offer $opt, which --help lists"
    done
    checked=$((checked + 1))
  done
done
[ "$checked" -ge 30 ] || fail "only $checked verbs and subcommands were checked"
echo "$checked verbs and subcommands: every option of --help is completed"

echo "== the configuration example, uncommented, is valid and holds the defaults"
sed -e 's/^#\([a-z_]* = \)/\1/' -e 's/^#\(\[[a-z]*\]\)$/\1/' "$dest/etc/chrootctl/config.toml.example" >"$work/config.toml"
grep -q '^\[accounting\]' "$work/config.toml" || fail "uncommenting the example failed"
CHROOTCTL_CONFIG="$work/config.toml" "$ctl" doctor --json >"$work/doctor.json" || true
python3 - "$work/doctor.json" "$work/config.toml" <<'PY' || fail "the uncommented example is not what the defaults are (above)"
import json, sys
doc = json.load(open(sys.argv[1]))
checks = {c["id"]: c for c in doc["checks"]}
assert checks["config"]["verdict"] == "ok" and doc["config_file"] == sys.argv[2], checks["config"]
acct = checks["accounting"]["facts"]
assert (acct["path"], acct["max_bytes"], acct["keep"], acct["enabled"]) == ("/var/log/chrootctl/launches.jsonl", 64 << 20, 4, True), acct
ids = checks["job-ids"]["facts"]
assert (ids["start"], ids["count"]) == (1879048192, 1024 * 65536), ids
assert checks["store"]["facts"]["path"] == "/var/lib/chrootctl", checks["store"]["facts"]["path"]
assert checks["seccomp"]["facts"]["policy"] == "default"
PY

echo "== the tmpfiles.d entry makes the state, store and log directories"
if [ "$(id -u)" = 0 ] && command -v systemd-tmpfiles >/dev/null; then
  mkdir "$work/root"
  systemd-tmpfiles --create --root="$work/root" "$dest$prefix/lib/tmpfiles.d/chrootctl.conf"
  for d in /run/chrootctl:755 /var/lib/chrootctl:755 /var/log/chrootctl:755 /var/log/chrootctl/users:1733; do
    mode=$(stat -c '%a %U' "$work/root${d%%:*}") || fail "systemd-tmpfiles did not make ${d%%:*}"
    [ "$mode" = "${d##*:} root" ] || fail "${d%%:*} is $mode, not ${d##*:} root"
  done
elif [ "${CHROOTCTL_REQUIRE_PRIVILEGED:-}" = 1 ]; then
  fail "the tmpfiles.d entry needs root and systemd-tmpfiles to be checked (CHROOTCTL_REQUIRE_PRIVILEGED=1)"
else
  echo "(not checked: needs root and systemd-tmpfiles)"
fi
echo "PASS: cmake --install installs everything a site needs"
