#!/usr/bin/env bash
# Installs every Debian package chrootctl needs to build, test and run its quick start.
# Safe to run again; needs root (apt-get).
set -euo pipefail

packages=(
  # build
  cmake g++ make pkg-config
  libarchive-dev libssl-dev libtomlplusplus-dev libgtest-dev libexpected-dev
  # system-call policies: compiled to BPF with libseccomp (chrootctl-full only)
  libseccomp-dev
  # tests and the quick start
  python3 python3-jsonschema mtree-netbsd libcap2-bin attr busybox-static procps util-linux openssl gcc
  mmdebstrap debootstrap
  zstd xz-utils bzip2 libarchive-tools
  # packages: the .deb is built, checked with lintian and installed in a fresh root
  # (tests/privileged/package_deb.sh); the installed man page is rendered (tests/integration/install.sh)
  dpkg-dev debhelper lintian man-db
  # the seccomp tests' 32-bit static programs (gcc -m32 -static)
  gcc-multilib
  # RPM images: dnf bases, rpm databases in audits, and their tests
  rpm dnf createrepo-c db5.3-util
  # Slurm: the SPANK plugin builds against libslurm-dev; tests and the quick start run a
  # single-node cluster
  munge slurmctld slurmd slurm-client libslurm-dev
  # the VM stage (tests/vm/run.sh): Debian's stock kernel (and its initrd) under QEMU, a root
  # filesystem made with mkfs.ext4 -d, results read back with debugfs, modules indexed by depmod
  qemu-system-x86 linux-image-amd64 e2fsprogs kmod
  # sealed images: the image file (mkfs.erofs, mksquashfs for the format comparison), its
  # dm-verity hash tree and activation (libcryptsetup), manual checks (veritysetup)
  erofs-utils squashfs-tools libcryptsetup-dev cryptsetup-bin
  # the sanitizer and fuzzing stage (tools/sanitize.sh): clang, its sanitizer runtimes and libFuzzer
  clang libclang-rt-dev
  # formatting and static checks (tools/lint.sh)
  clang-format clang-tidy
)

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: run as root (apt-get installs packages)" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
