#!/usr/bin/env bash
# The VM stage: the privileged tests that depend on the kernel, run on Debian's stock kernel
# (the linux-image-amd64 package) under QEMU, on a real cgroup v2 hierarchy with every
# controller, with the kernel modules that sealed images need (loop, dm-verity, EROFS, ...).
#
#   bash tests/vm/run.sh [--build-dir DIR] [--results DIR] [--fixture]
#       boots once, runs every suite selected by tests/vm/suites.txt, and prints a summary;
#       exits 1 if a suite failed (with --fixture, as ctest's vm.boot: 0 once the results are
#       stored, each suite being judged by its own ctest test vm.SUITE through check.sh)
#   bash tests/vm/run.sh --list-suites [--build-dir DIR]
#       prints the suites of DIR/tests/privileged_tests that suites.txt selects
#
# How: a staging directory gets busybox-static, the commands the tests call and the shared
# libraries they need (ldd), the build directory's programs and this checkout at the same
# absolute paths as here (so paths compiled into the tests hold), /etc/passwd and /etc/group,
# the kernel modules below and their dependencies (depmod run for the staging directory), and
# guest-init.sh as /chrootctl-vm-init. `mkfs.ext4 -d` turns it into the root disk, beside an
# empty scratch disk (the tests' TMPDIR) and an empty results disk. QEMU (TCG: KVM is not
# assumed) boots the kernel with Debian's own initrd and init=/chrootctl-vm-init, which runs
# each suite and powers off; the results are read back with debugfs, so nothing is ever
# loop-mounted. QEMU and the images are removed on every exit (trap).
#
# Without root, QEMU, the kernel package or the build, it skips (exit 77); under
# CHROOTCTL_REQUIRE_PRIVILEGED=1 (CI) it fails instead.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source_dir=$(cd "$here/../.." && pwd)
build_dir=$source_dir/build
results=
mode=run
fixture=0
while [ $# -gt 0 ]; do
  case $1 in
    --build-dir) build_dir=$(cd "$2" && pwd); shift 2 ;;
    --results) results=$2; shift 2 ;;
    --fixture) fixture=1; shift ;;
    --list-suites) mode=list; shift ;;
    *) echo "usage: $0 [--build-dir DIR] [--results DIR] [--fixture] | --list-suites [--build-dir DIR]" >&2; exit 2 ;;
  esac
done
results=${results:-$build_dir/tests/vm-results}
test_binary=$build_dir/tests/privileged_tests

# ---- what goes into the guest
# Kernel modules loaded at boot (with their dependencies): sealed images and overlays.
modules=(loop dm-mod dm-bufio dm-verity squashfs erofs overlay)
# Commands the selected tests run outside the job roots (the fixtures, controls and checks),
# copied from this machine, and kmod's modprobe for the guest's init. A test that calls a new
# command adds it here.
commands=(sh awk cat chmod chown cp cut echo env false find getent grep head hostname id kill ln ls mkdir mktemp
  modprobe mv pgrep printf pwd python3 readlink rm sed setpriv sleep sort stat tail taskset test touch tr true
  unshare wc)
memory_mb=2048
cpus=2
suite_timeout=${CHROOTCTL_VM_SUITE_TIMEOUT:-600}  # seconds, per suite, in the guest
vm_timeout=${CHROOTCTL_VM_TIMEOUT:-840}           # seconds, the whole boot: the stage stays under 15 minutes

# ---- the suites suites.txt selects, from the test binary's own list
list_suites() {
  local patterns=() excluded=() line suite pattern
  while read -r line; do
    line=${line%%#*}
    line=${line//[[:space:]]/}
    if [ -z "$line" ]; then continue; fi
    if [ "${line:0:1}" = '!' ]; then excluded+=("${line:1}"); else patterns+=("$line"); fi
  done <"$here/suites.txt"
  # --gtest_list_tests prints each suite as "Suite." (or "Instance/Suite.  # TypeParam = ...")
  # followed by its tests, indented.
  "$test_binary" --gtest_list_tests | while IFS= read -r line; do
    [[ $line =~ ^([A-Za-z0-9_/]+)\.(\ |$) ]] || continue
    suite=${BASH_REMATCH[1]}
    for pattern in "${excluded[@]}"; do
      # shellcheck disable=SC2053  # the patterns are globs
      if [[ $suite == $pattern || ${suite##*/} == $pattern ]]; then continue 2; fi
    done
    for pattern in "${patterns[@]}"; do
      # shellcheck disable=SC2053
      if [[ $suite == $pattern || ${suite##*/} == $pattern ]]; then
        echo "$suite"
        break
      fi
    done
  done
}

if [ "$mode" = list ]; then
  [ -x "$test_binary" ] || { echo "$test_binary is not built" >&2; exit 1; }
  list_suites
  exit 0
fi

# ---- the results directory: a status line, then the guest's files
rm -rf "$results"
mkdir -p "$results"
echo "failed: the VM stage did not finish (see its output)" >"$results/status"

skip() {
  if [ "${CHROOTCTL_REQUIRE_PRIVILEGED:-0}" = 1 ]; then
    echo "failed: $*" >"$results/status"
    echo "FAIL: $*" >&2
    exit 1
  fi
  echo "skipped: $*" >"$results/status"
  echo "SKIP: $*" >&2
  exit 77
}

[ "$(id -u)" = 0 ] || skip "needs root (the root disk keeps the owners of the files it is made from)"
for tool in qemu-system-x86_64 mkfs.ext4 debugfs depmod modprobe ldd; do
  PATH=/usr/sbin:/usr/bin:/sbin:/bin command -v "$tool" >/dev/null || skip "$tool is not installed (bash tools/install-deps.sh)"
done
[ -x /bin/busybox ] || skip "busybox-static is not installed (bash tools/install-deps.sh)"
# The newest Debian kernel with its initrd and modules.
kernel=
while read -r k; do
  v=${k#/boot/vmlinuz-}
  if [ -f "/boot/initrd.img-$v" ] && [ -d "/lib/modules/$v" ]; then kernel=$v; fi
done < <(printf '%s\n' /boot/vmlinuz-* | sort -V)
[ -n "$kernel" ] || skip "no kernel with an initrd in /boot (linux-image-amd64; bash tools/install-deps.sh)"
[ -x "$test_binary" ] || skip "$test_binary is not built"
mapfile -t suites < <(list_suites)
[ "${#suites[@]}" -gt 0 ] || { echo "failed: suites.txt selects no suite of $test_binary" >"$results/status"; exit 1; }

# ---- a work directory for the staging tree and the disks, and QEMU: removed on every exit
work=$(mktemp -d /var/tmp/chrootctl-vm.XXXXXX)
qemu_pid=
tail_pid=
cleanup() {
  local pid
  for pid in $qemu_pid $tail_pid; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
started=$(date +%s)
echo "vm: kernel $kernel, suites: ${suites[*]}"

# ---- the root filesystem
stage=$work/root
mkdir -p "$stage"/{proc,sys,dev,run,tmp,scratch,results,etc,root,srv,mnt,var/tmp,usr/bin,usr/sbin,usr/lib}
chmod 1777 "$stage/tmp" "$stage/var/tmp"
chmod 0700 "$stage/root"
# Debian 12 has merged /usr: /bin, /sbin, /lib and /lib64 are symlinks into /usr, here as there.
for d in bin sbin lib lib32 lib64 libx32; do
  if [ -L "/$d" ]; then
    ln -s "$(readlink "/$d")" "$stage/$d"
    mkdir -p "$stage/$(readlink -f "/$d")"
  fi
done

# copy FILE...: each file (symlinks followed) to its own path in the guest.
copy() {
  local f
  for f; do
    mkdir -p "$stage$(dirname "$f")"
    cp -L --preserve=mode,ownership,timestamps "$f" "$stage$f"
  done
}
programs=()  # the programs and libraries copied, for ldd to list what they load
copy_program() {
  copy "$1"
  programs+=("$1")
}

copy_program /bin/busybox
for c in "${commands[@]}"; do
  p=$(PATH=/usr/sbin:/usr/bin:/sbin:/bin type -P "$c") || skip "$c is not installed (bash tools/install-deps.sh)"
  copy_program "$p"
done
# python3's standard library (the tests parse JSON with it).
pystdlib=$(/usr/bin/python3 -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')
mkdir -p "$stage$pystdlib"
cp -a "$pystdlib/." "$stage$pystdlib/"

# The build's programs and libraries, and this checkout, at their paths here.
while IFS= read -r -d '' f; do
  copy_program "$f"
done < <(find "$build_dir" -path '*/CMakeFiles' -prune -o -type f \( -perm -u+x -o -name '*.so' \) -print0)
if git -C "$source_dir" rev-parse --git-dir >/dev/null 2>&1; then
  mkdir -p "$stage$source_dir"
  git -C "$source_dir" ls-files -z --cached --others --exclude-standard |
    (cd "$source_dir" && tar --null --no-recursion -T - -cf -) | tar -C "$stage$source_dir" -xf -
fi

# Shared libraries, found by ldd ("not a dynamic executable" for static ones and scripts).
for f in "${programs[@]}"; do
  ldd "$f" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' || true
done | sort -u | while read -r lib; do
  [ -e "$stage$lib" ] || copy "$lib"
done
cp -a /etc/ld.so.conf /etc/ld.so.conf.d "$stage/etc/" 2>/dev/null || true
ldconfig -r "$stage"

# Users and groups as here (the tests chown to them and compare with `id`), read from files.
cp /etc/passwd /etc/group "$stage/etc/"
for f in /etc/subuid /etc/subgid; do [ -f "$f" ] && cp "$f" "$stage/etc/"; done
printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files\n' >"$stage/etc/nsswitch.conf"
printf '127.0.0.1 localhost\n127.0.1.1 chrootctl-vm\n' >"$stage/etc/hosts"
ln -s ../proc/self/mounts "$stage/etc/mtab"

# Kernel modules and their dependencies, indexed for this tree.
copy "/lib/modules/$kernel"/modules.{order,builtin,builtin.modinfo}
for m in "${modules[@]}"; do
  modprobe -S "$kernel" --show-depends "$m" | awk '$1 == "insmod" { print $2 }'
done | sort -u | while read -r ko; do copy "$ko"; done
depmod -b "$stage" "$kernel"

install -m 0755 "$here/guest-init.sh" "$stage/chrootctl-vm-init"
{
  echo "VM_TEST_BINARY='$test_binary'"
  echo "VM_SUITES='${suites[*]}'"
  echo "VM_MODULES='${modules[*]}'"
  echo "VM_SUITE_TIMEOUT=$suite_timeout"
} >"$stage/etc/chrootctl-vm.conf"

# ---- the disks: sparse files, made without mounting anything
staged_mb=$(du -sm --apparent-size "$stage" | cut -f1)
truncate -s "$((staged_mb + staged_mb / 4 + 1024))M" "$work/root.img"
mkfs.ext4 -q -F -L chrootctl-vm -d "$stage" "$work/root.img"
rm -rf "$stage"
truncate -s 8G "$work/scratch.img"
mkfs.ext4 -q -F -L scratch "$work/scratch.img"
truncate -s 256M "$work/results.img"
mkfs.ext4 -q -F -L results -O ^has_journal "$work/results.img"
echo "vm: root disk of ${staged_mb} MiB made in $(($(date +%s) - started)) s; booting"

# ---- boot: the guest's console is shown as it runs and kept with the results
: >"$work/console.log"
timeout -k 10 "$vm_timeout" qemu-system-x86_64 \
  -accel tcg,thread=multi -cpu max -smp "$cpus" -m "$memory_mb" \
  -nodefaults -display none -no-reboot -serial "file:$work/console.log" \
  -kernel "/boot/vmlinuz-$kernel" -initrd "/boot/initrd.img-$kernel" \
  -append "root=/dev/vda rw init=/chrootctl-vm-init console=ttyS0 quiet fsck.mode=skip noresume panic=-1" \
  -drive "file=$work/root.img,format=raw,if=virtio,cache=unsafe" \
  -drive "file=$work/scratch.img,format=raw,if=virtio,cache=unsafe" \
  -drive "file=$work/results.img,format=raw,if=virtio" &
qemu_pid=$!
# In the background too, so that a signal to this script is handled at once (by the traps).
tail -n +1 -f --pid="$qemu_pid" "$work/console.log" &
tail_pid=$!
qemu_rc=0
wait "$qemu_pid" || qemu_rc=$?
qemu_pid=
wait "$tail_pid" || true
tail_pid=
cp "$work/console.log" "$results/console.log"

# ---- the results, read from the disk image with debugfs
debugfs -R "rdump /out $work" "$work/results.img" >/dev/null 2>&1 || true
if [ -d "$work/out" ]; then
  cp -a "$work/out/." "$results/"
fi
elapsed=$(($(date +%s) - started))
if [ "$qemu_rc" = 124 ] || [ "$qemu_rc" = 137 ]; then
  echo "failed: the guest did not finish within ${vm_timeout} s" >"$results/status"
elif [ ! -f "$results/done" ]; then
  echo "failed: the guest stopped before running every suite (QEMU exit $qemu_rc; see console.log)" >"$results/status"
else
  echo ran >"$results/status"
fi
echo "vm: stage finished in ${elapsed} s: $(cat "$results/status")"

failed=0
for suite in "${suites[@]}"; do
  bash "$here/check.sh" --summary "$results" "$suite" || failed=1
done
[ "$(cat "$results/status")" = ran ] || exit 1
[ "$fixture" = 1 ] || exit "$failed"
