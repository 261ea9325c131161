#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Prints the accelerator the VM tests use: "kvm" only where /dev/kvm is there
# and a guest was seen to boot under it on this machine (kernel and qemu
# version), else "tcg". On the machines this project runs on a KVM guest hangs
# early in boot, so KVM is proven once (45 s at most) and the answer kept in
# the cache. CLONED_VM_ACCEL=kvm|tcg chooses without a probe.
# Usage: accel.sh IMAGE
set -euo pipefail
image=$1
if [ -n "${CLONED_VM_ACCEL:-}" ]; then echo "$CLONED_VM_ACCEL"; exit 0; fi
[ -w /dev/kvm ] || { echo tcg; exit 0; }
cache=${CLONED_VM_CACHE:-/var/cache/cloned-vm}
mkdir -p "$cache"
key=$( { uname -r; qemu-system-x86_64 --version | head -1; } | sha256sum | cut -c1-16)
verdict="$cache/kvm-$key"
if [ ! -f "$verdict" ]; then
  probe=$(mktemp -d /var/tmp/cloned-kvm-probe.XXXXXX)
  qemu-system-x86_64 -machine pc,accel=kvm -m 512 -display none -monitor none -serial "file:$probe/serial.log" \
    -snapshot -drive "file=$image,format=raw,if=virtio" -nic none >"$probe/qemu.log" 2>&1 &
  pid=$!
  result=hangs
  for _ in $(seq 45); do
    if grep -q "Welcome to" "$probe/serial.log" 2>/dev/null; then result=boots; break; fi
    kill -0 "$pid" 2>/dev/null || { result=fails; break; }
    sleep 1
  done
  kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
  rm -rf "$probe"
  echo "$result" >"$verdict"
  echo "accel: a guest under KVM here $result (kept in $verdict)" >&2
fi
if [ "$(cat "$verdict")" = boots ]; then echo kvm; else echo tcg; fi
