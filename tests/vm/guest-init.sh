#!/bin/busybox sh
# PID 1 of the VM stage's guest. tests/vm/run.sh copies this script into the guest's root
# filesystem as /chrootctl-vm-init, writes /etc/chrootctl-vm.conf beside it and boots Debian's
# kernel with init=/chrootctl-vm-init. It sets the machine up as systemd would for a service,
# runs each selected gtest suite with CHROOTCTL_REQUIRE_PRIVILEGED=1, writes every suite's XML,
# log and exit status to the results disk, and powers off.
#
# Disks, in the order run.sh attaches them: /dev/vda the root, /dev/vdb an empty ext4 for TMPDIR
# (the tests' temporary directories: ext4, not tmpfs, so idmapped mounts work on 6.1),
# /dev/vdc an empty ext4 without a journal for the results (the host reads it with debugfs).
bb=/bin/busybox
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# VM_TEST_BINARY, VM_SUITES, VM_MODULES, VM_SUITE_TIMEOUT
# shellcheck source=/dev/null  # written by run.sh
. /etc/chrootctl-vm.conf

say() { echo "chrootctl-vm: $*" >/dev/console; }
# Powers off; nothing else is left for PID 1 to do. A kernel panic would reboot, which QEMU's
# -no-reboot turns into an exit too.
finish() {
  [ -n "${1:-}" ] && say "$1"
  $bb sync
  $bb umount /results 2>/dev/null
  $bb umount /scratch 2>/dev/null
  $bb poweroff -f
}
must() { "$@" || finish "failed: $*"; }

# ---- file systems (the initrd has moved /dev, /proc, /sys and /run here already)
[ -e /proc/self ] || must $bb mount -t proc proc /proc
mounted() { $bb grep -q "^[^ ]* $1 " /proc/mounts; }
mounted /sys || must $bb mount -t sysfs sysfs /sys
mounted /dev || must $bb mount -t devtmpfs devtmpfs /dev
$bb mkdir -p /dev/pts /dev/shm
must $bb mount -t devpts -o gid=5,mode=0620,ptmxmode=0666 devpts /dev/pts
must $bb mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
mounted /run || must $bb mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
# A tmpfs on /tmp, unless the checkout and build were staged there (a CI clone below /tmp):
# then /tmp stays the root disk's own directory (mode 1777), which a tmpfs would hide.
[ -n "$($bb ls -A /tmp)" ] || must $bb mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
# systemd makes every mount shared; the launcher must cope with that.
must $bb mount --make-rshared /
must $bb mount -t ext4 /dev/vdb /scratch
must $bb chmod 1777 /scratch
must $bb mount -t ext4 /dev/vdc /results
out=/results/out
must $bb mkdir -p "$out"

# ---- cgroup v2, as systemd sets it up: the unified hierarchy alone, every controller enabled at
# the root and in system.slice (as for a service with Delegate=yes), PID 1 in init.scope, and the
# tests in a service's cgroup that holds processes and so enables no controller itself. The
# launcher, whose own cgroup then cannot delegate, puts job cgroups under the root
# (/sys/fs/cgroup/chrootctl/NAME), which it may do as root.
cg=/sys/fs/cgroup
must $bb mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 $cg
for c in $($bb cat $cg/cgroup.controllers); do
  echo "+$c" >$cg/cgroup.subtree_control || finish "failed: enabling the $c controller"
done
must $bb mkdir $cg/init.scope $cg/system.slice
echo $$ >$cg/init.scope/cgroup.procs || finish "failed: moving PID 1 into init.scope"
for c in $($bb cat $cg/system.slice/cgroup.controllers); do
  echo "+$c" >$cg/system.slice/cgroup.subtree_control || finish "failed: enabling $c in system.slice"
done
service=$cg/system.slice/chrootctl-tests.service
must $bb mkdir $service

# ---- the rest of a booted machine: loopback up, a host name, the kernel modules
must $bb ip link set lo up
must $bb hostname chrootctl-vm
# shellcheck disable=SC2086  # a list of names
must modprobe -a $VM_MODULES

{
  echo "kernel $($bb uname -r)"
  echo "cmdline $($bb cat /proc/cmdline)"
  echo "cgroup2 controllers at the root: $($bb cat $cg/cgroup.controllers)"
  echo "enabled for children of the root: $($bb cat $cg/cgroup.subtree_control)"
  echo "enabled in system.slice: $($bb cat $cg/system.slice/cgroup.subtree_control)"
  echo "modules: $($bb cut -d' ' -f1 /proc/modules | $bb sort | $bb tr '\n' ' ')"
} >"$out/guest.txt"
$bb cat "$out/guest.txt" >/dev/console

# ---- the suites, one process each, in the service's cgroup ("0": the writing process)
(
  echo 0 >$service/cgroup.procs || exit 1
  say "tests run in $($bb cat /proc/self/cgroup), as root with $($bb grep CapEff /proc/self/status)"
  cd "$($bb dirname "$VM_TEST_BINARY")" || exit 1
  for suite in $VM_SUITES; do
    file=$(echo "$suite" | $bb tr / _)
    say "$suite: starting"
    start=$($bb date +%s)
    # The environment of a CI job: the tests compare some of it with what a job sees.
    $bb env -i PATH="$PATH" HOME=/root LANG=C.UTF-8 TERM=dumb TMPDIR=/scratch \
      CHROOTCTL_REQUIRE_PRIVILEGED=1 CHROOTCTL_TEST_EXPECT_CGROUP=v2 \
      $bb timeout -k 10 "$VM_SUITE_TIMEOUT" "$VM_TEST_BINARY" --gtest_filter="$suite.*" \
      --gtest_output="xml:$out/$file.xml" >"$out/$file.log" 2>&1
    rc=$?
    echo $rc >"$out/$file.rc"
    $bb grep -E '^\[  (FAILED|SKIPPED|PASSED) ' "$out/$file.log" >/dev/console
    say "$suite: exit $rc after $(($($bb date +%s) - start)) s"
    $bb sync
  done
) || finish "failed: could not run the tests in $service"

echo "done" >"$out/done"
finish "finished"
