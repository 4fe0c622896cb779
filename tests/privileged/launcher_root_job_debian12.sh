#!/usr/bin/env bash
# A job as root in the debian12 image: `chrootctl run DEBIAN12 --user root -- id` says uid 0,
# and apt-get installs a package from a local repository that the test builds, as root of the
# job's user namespace, into a writable bind of the job's own directory (the image stays
# read-only). Every file the job leaves there belongs, on disk, to the sandbox's owner.
# Needs root, mmdebstrap and the Debian archive (about a minute).
set -euo pipefail
ctl=${CHROOTCTL_BIN:?run through ctest}
source "${CHROOTCTL_SOURCE_DIR:?run through ctest}/tests/support/privileged.sh"
command -v mmdebstrap >/dev/null || skip "mmdebstrap is not installed"
command -v dpkg-deb >/dev/null || skip "dpkg-deb is not installed"

work=$(mktemp -d /var/tmp/chrootctl-root-job-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work"
store=$work/store
"$ctl" build debian12 --store "$store" --register DEBIAN12 -q >/dev/null

# The sandbox and the job's directory belong to the user the job runs for (nobody).
mkdir -p "$work/sandbox" "$work/job/repo"
chown -R nobody:nogroup "$work/sandbox" "$work/job"
out=$("$ctl" run DEBIAN12 --store "$store" --sandbox "$work/sandbox" --user root -- id)
[ "$out" = "uid=0(root) gid=0(root) groups=0(root)" ] || { echo "FAIL: id in a root job said: $out" >&2; exit 1; }

# A package and a flat repository of it.
pkg=$work/pkg
mkdir -p "$pkg/DEBIAN" "$pkg/usr/bin"
cat > "$pkg/DEBIAN/control" <<'EOF'
Package: chrootctl-hello
Version: 1.0
Architecture: all
Maintainer: chrootctl tests <tests@localhost>
Description: a package the chrootctl tests install in a root job
EOF
printf '#!/bin/sh\necho hello from a package\n' > "$pkg/usr/bin/chrootctl-hello"
chmod 0755 "$pkg/usr/bin/chrootctl-hello"
dpkg-deb --root-owner-group --build "$pkg" "$work/job/repo/chrootctl-hello_1.0_all.deb" >/dev/null
python3 - "$work/job/repo" <<'PY'
import hashlib, os, subprocess, sys
repo = sys.argv[1]
deb = "chrootctl-hello_1.0_all.deb"
data = open(os.path.join(repo, deb), "rb").read()
control = subprocess.run(["dpkg-deb", "-f", os.path.join(repo, deb)], check=True, capture_output=True, text=True).stdout
with open(os.path.join(repo, "Packages"), "w") as f:
    f.write(control.rstrip("\n") + f"\nFilename: ./{deb}\nSize: {len(data)}\nSHA256: {hashlib.sha256(data).hexdigest()}\n\n")
PY
chown -R nobody:nogroup "$work/job"

# apt-get as root of the job, installing into /job/root: the image's own dpkg database and /usr
# are read-only, so apt and dpkg are pointed at the job's directory.
cat > "$work/job/install.sh" <<'EOF'
set -e
cd /job
mkdir -p root/var/lib/dpkg/info root/var/lib/dpkg/updates state/lists/partial cache/archives/partial log
: > root/var/lib/dpkg/status
echo 'deb [trusted=yes] file:/job/repo ./' > sources.list
set -- -o Dir::Etc::SourceList=/job/sources.list -o Dir::Etc::SourceParts=/job/none -o Dir::State=/job/state \
  -o Dir::Cache=/job/cache -o Dir::Log=/job/log -o Dir::State::status=/job/root/var/lib/dpkg/status \
  -o APT::Sandbox::User=root -o DPkg::Options::=--instdir=/job/root -o DPkg::Options::=--admindir=/job/root/var/lib/dpkg
apt-get -q "$@" update >/dev/null
apt-get -q -y "$@" install chrootctl-hello >/dev/null
/job/root/usr/bin/chrootctl-hello
id -u
EOF
chown nobody:nogroup "$work/job/install.sh"
out=$("$ctl" run DEBIAN12 --store "$store" --sandbox "$work/sandbox" --user root --bind "$work/job:/job" -- /bin/sh /job/install.sh)
[ "$out" = "$(printf 'hello from a package\n0')" ] || { echo "FAIL: the root job's apt-get said: $out" >&2; exit 1; }
[ -x "$work/job/root/usr/bin/chrootctl-hello" ] || { echo "FAIL: the package was not installed" >&2; exit 1; }
# Root of the job is the sandbox's owner on disk: nothing it made belongs to anyone else.
others=$(find "$work/job" "$work/sandbox" ! -uid 65534 -o ! -gid 65534)
[ -z "$others" ] || { echo "FAIL: files the root job left that are not nobody's:" >&2; echo "$others" >&2; exit 1; }

# A root job's sandbox must belong to the user it runs for, not to root.
mkdir "$work/root-owned"
if err=$("$ctl" run DEBIAN12 --store "$store" --sandbox "$work/root-owned" --user root -- true 2>&1); then
  echo "FAIL: a root job ran with a root-owned sandbox" >&2; exit 1
fi
case $err in
  *"the sandbox belongs to root; a job as root writes its files as its sandbox's owner"*) ;;
  *) echo "FAIL: unexpected refusal: $err" >&2; exit 1 ;;
esac
echo "root job in debian12: id, apt-get install into the job's directory, owners on disk: ok"
