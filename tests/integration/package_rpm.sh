#!/usr/bin/env bash
# packaging/chrootctl.spec, as far as Debian's rpm can check an EL9 spec: rpmspec -P parses it
# (its version must be CMake's), and rpmbuild -bs makes a source rpm from a tarball of this
# checkout whose header carries the spec's name, version and build requirements. The binary rpm
# is not built here: EL9's macros (%cmake, %systemd_post, ...) and its -devel packages are not
# on Debian.
set -euo pipefail
src=${CHROOTCTL_SOURCE_DIR:?run through ctest}
for tool in rpmspec rpmbuild rpm; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed (apt-get install rpm)" >&2; exit 77; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
spec="$src/packaging/chrootctl.spec"

echo "== rpmspec -P"
rpmspec -P "$spec" >"$work/parsed" 2>"$work/parsed.err" || { cat "$work/parsed.err" >&2; fail "rpmspec -P failed"; }
version=$(sed -n 's/^Version: *//p' "$work/parsed")
cmake_version=$(sed -n 's/^project(chrootctl VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
[ -n "$version" ] && [ "$version" = "$cmake_version" ] || fail "the spec's Version ($version) is not CMake's ($cmake_version)"
changelog_version=$(sed -n '1s/^chrootctl (\([^)-]*\).*/\1/p' "$src/debian/changelog")
[ "$version" = "$changelog_version" ] || fail "the spec's Version ($version) is not debian/changelog's ($changelog_version)"

echo "== rpmbuild -bs"
mkdir -p "$work/top/SOURCES" "$work/tree/chrootctl-$version"
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
  git -C "$src" ls-files -z --cached --others --exclude-standard | (cd "$src" && tar --null -T - -cf -) |
    tar -C "$work/tree/chrootctl-$version" -xf -
else
  tar -C "$src" --exclude='./build*' --exclude='./images/*' -cf - . | tar -C "$work/tree/chrootctl-$version" -xf -
fi
tar -C "$work/tree" -czf "$work/top/SOURCES/chrootctl-$version.tar.gz" "chrootctl-$version"
rpmbuild -bs --define "_topdir $work/top" "$spec" >"$work/rpmbuild.log" 2>&1 || { cat "$work/rpmbuild.log" >&2; fail "rpmbuild -bs failed"; }
srpm=$(echo "$work"/top/SRPMS/chrootctl-"$version"-1*.src.rpm)
[ -f "$srpm" ] || fail "no source rpm: $(ls "$work/top/SRPMS")"
[ "$(rpm -qp --qf '%{NAME} %{VERSION}' "$srpm" 2>/dev/null)" = "chrootctl $version" ] || fail "the source rpm is not chrootctl $version"
requires=$(rpm -qp --requires "$srpm" 2>/dev/null)
for r in cmake libarchive-devel openssl-devel tomlplusplus-devel expected-devel libseccomp-devel slurm-devel; do
  grep -q "^$r\b" <<<"$requires" || fail "the source rpm does not require $r: $requires"
done
# Read whole before grep -q looks (grep stopping early would kill rpm with SIGPIPE: pipefail).
files=$(rpm -qpl "$srpm" 2>/dev/null)
grep -qx "chrootctl-$version.tar.gz" <<<"$files" || fail "the source rpm does not hold the tarball: $files"
echo "PASS: rpmspec -P and rpmbuild -bs accept packaging/chrootctl.spec ($(basename "$srpm"))"
