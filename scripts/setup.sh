#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what the project needs on Debian 12 (only what is missing), then
# configures and builds it in ./build. Idempotent; safe to run again.
# Usage: scripts/setup.sh [--fuzz] [--stick] [--vm] [--capture] [--no-build]   (CI=true makes warnings errors)
#   --fuzz      also clang and its libFuzzer runtime (scripts/fuzz.sh)
#   --stick     also what dist/deb/build-deb.sh and dist/stick/build-stick.sh need
#               (dpkg-buildpackage and debhelper; debootstrap, GRUB, mkfs)
#   --vm        --stick, and qemu, OVMF and python3 for the VM suite (test/vm/README.md)
#   --capture   qemu-storage-daemon and fuse3 for scripts/capture-log-writes.sh (and sqlite3
#               for e2e-log-writes-capture's workload)
#   --no-build  install only (scripts/fuzz.sh and scripts/sanitize.sh build elsewhere)
set -euo pipefail
cd "$(dirname "$0")/.."

fuzz=false
stick=false
vm=false
capture=false
build=true
for arg in "$@"; do
  case "$arg" in
    --fuzz) fuzz=true ;;
    --stick) stick=true ;;
    --vm) vm=true; stick=true ;;
    --capture) capture=true ;;
    --no-build) build=false ;;
    *) echo "setup: unknown option $arg (use --fuzz, --stick, --vm, --capture, --no-build)" >&2; exit 2 ;;
  esac
done

packages=(
  g++ pkg-config meson ninja-build cmake
  libuv1-dev libsodium-dev libssl-dev libsqlite3-dev libtomlplusplus-dev nlohmann-json3-dev doctest-dev
  libnl-3-dev libnl-genl-3-dev libnl-route-3-dev libsystemd-dev
  util-linux mount iproute2 fio netcat-openbsd time systemd
  git clang-format  # scripts/tidy.py (CI): the ratchet on the house rules
  e2fsprogs ntfs-3g fdisk  # the diverge tests: mkfs.ext4, mkfs.ntfs + ntfs-3g, sfdisk
  dbus-daemon  # e2e-wake: a private bus for its stand-in for logind
)
# The gcc sanitizer runtimes (ASan, UBSan, TSan) come with g++. libFuzzer is
# clang's: libclang-rt-14-dev holds libclang_rt.fuzzer (and clang's ASan).
if $fuzz; then packages+=(clang-14 libclang-rt-14-dev); fi
# The clone stick image and the VM test: opt-in, they are large.
if $stick; then
  packages+=(dpkg-dev debhelper fakeroot)  # dpkg-buildpackage -b of debian/
  packages+=(debootstrap grub-pc-bin grub-efi-amd64-bin dosfstools mtools e2fsprogs fdisk)
fi
if $vm; then packages+=(qemu-system-x86 ovmf python3); fi
if $capture; then packages+=(qemu-system-common fuse3 sqlite3); fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: these Debian packages are missing and installing them needs root: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

$build || exit 0

werror=false
[ "${CI:-}" = "true" ] && werror=true
if [ ! -f build/build.ninja ]; then
  meson setup build -Dwerror="$werror"
else
  meson configure build -Dwerror="$werror" >/dev/null
fi
ninja -C build -j "$(nproc)"
