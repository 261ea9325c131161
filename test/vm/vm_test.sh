#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The VM test (meson suite "vm"): boots the clone stick image in qemu with a
# second virtual disk as the clone's internal disk and a forwarded port; systemd
# brings cloned up from the pairing material on the CLONECFG partition; the
# reference original on the host replicates a seeded workload into it; the
# virtual disk must end byte-identical to the source and `clonectl status` in
# the VM (written to the serial console by a test-only unit) must say the clone
# is a consistent, bootable copy with no lag.
#
# Usage: vm_test.sh BUILD_DIR SOURCE_DIR
# Environment:
#   CLONED_STICK_IMAGE  the image from dist/stick/build-stick.sh (BUILD_DIR/clone-stick.img)
#   CLONED_VM_TCG=1     run without /dev/kvm, under qemu's TCG emulation (slow)
#   CLONED_VM_EFI=1     boot with OVMF (UEFI) instead of the BIOS
#   CLONED_VM_BYTES     workload size (32M; 8M under TCG)
#   CLONED_VM_KEEP=1    keep the work directory (serial log, images)
# Exit 77 (skipped, with the reason) where it cannot run.
set -euo pipefail
# mtools: loop devices have no disk geometry to check.
export MTOOLS_SKIP_CHECK=1
build=$(realpath "$1")
src=$(realpath "$2")
image=${CLONED_STICK_IMAGE:-$build/clone-stick.img}

. "$src/test/support/requires.sh"
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 is missing (scripts/setup.sh --vm installs it)"
command -v mcopy >/dev/null || skip "mcopy is missing (Debian package mtools; scripts/setup.sh --vm installs it)"
requires_root "loop devices to put the pairing material into the image"
accel=kvm
if [ ! -w /dev/kvm ]; then
  [ "${CLONED_VM_TCG:-}" = 1 ] || skip "/dev/kvm is absent or not writable; CLONED_VM_TCG=1 runs it under TCG emulation (slow)"
  accel=tcg
fi
[ -f "$image" ] || skip "no clone stick image at $image; build it with dist/stick/build-stick.sh (or set CLONED_STICK_IMAGE)"
bios_args=()
if [ "${CLONED_VM_EFI:-}" = 1 ]; then
  [ -f /usr/share/ovmf/OVMF.fd ] || skip "OVMF is missing (Debian package ovmf)"
  bios_args=(-bios /usr/share/ovmf/OVMF.fd)
fi
if [ $accel = tcg ]; then bytes=${CLONED_VM_BYTES:-8M}; boot_limit_s=900; else bytes=${CLONED_VM_BYTES:-32M}; boot_limit_s=180; fi

work=$(mktemp -d /var/tmp/cloned-vm.XXXXXX)
loop="" qemu_pid="" mnt="$work/mnt"
cleanup() {
  set +e
  [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null && wait "$qemu_pid" 2>/dev/null
  mountpoint -q "$mnt" && umount "$mnt"
  [ -n "$loop" ] && losetup -d "$loop"
  if [ "${CLONED_VM_KEEP:-}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
t0=$SECONDS
stamp() { echo "[$((SECONDS - t0)) s] $*"; }

# The two disks of the clone laptop: the stick (a copy of the image) and the internal disk.
cp --sparse=always "$image" "$work/stick.img"
truncate -s 256M "$work/internal.img" "$work/source.img"

# Pair on the host against a loop device of the same size, then name the VM's disk:
# /dev/vdb with the serial qemu gives it.
port=$(( 20000 + RANDOM % 20000 ))
loop=$(losetup --find --show "$work/internal.img")
"$build/cloned/clonectl" pair --clone-dir "$work/clone" --origin-dir "$work/origin" --target "$loop" \
  --listen 0.0.0.0:7000 >/dev/null
losetup -d "$loop"; loop=""
sed -i -e 's|^path = .*|path = "/dev/vdb"|' -e 's|^serial = .*|serial = "CLONEVMDISK"|' \
  -e 's|^dir = "state"|dir = "/var/lib/cloned"|' -e 's|^runtime_dir = "run"|runtime_dir = "/run/cloned"|' \
  "$work/clone/cloned.toml"
sed -i "s|^address = .*|address = \"127.0.0.1:$port\"|" "$work/origin/origin.toml"

# Into the copy of the image: the pairing material on CLONECFG; this tree's
# binaries (so the test runs the code under test without rebuilding the image);
# and the test-only unit that prints clonectl status on the serial console.
# Partitions by offset: loop devices here may get no partition nodes.
mount_partition() {  # NUMBER
  local start sectors
  read -r start sectors < <(partx -g -o START,SECTORS -n "$1" "$work/stick.img")
  loop=$(losetup --find --show --offset $((start * 512)) --sizelimit $((sectors * 512)) "$work/stick.img")
  mount "$loop" "$mnt"
}
unmount_partition() { umount "$mnt"; losetup -d "$loop"; loop=""; }
mkdir -p "$mnt"
# CLONECFG is FAT: written with mtools, as the kernel here may have no vfat.
read -r cfg_start _ < <(partx -g -o START,SECTORS -n 3 "$work/stick.img")
mcopy -i "$work/stick.img@@$((cfg_start * 512))" "$work/clone/cloned.toml" "$work/clone/pair.secret" ::
mount_partition 4
install -m 0755 "$build/cloned/cloned" "$mnt/usr/sbin/cloned"
install -m 0755 "$build/cloned/clonectl" "$mnt/usr/bin/clonectl"
install -m 0644 "$src/test/vm/cloned-vm-report.service" "$mnt/etc/systemd/system/"
install -m 0755 "$src/test/vm/report-status.sh" "$mnt/usr/local/bin/cloned-vm-report"
ln -sf /etc/systemd/system/cloned-vm-report.service "$mnt/etc/systemd/system/multi-user.target.wants/"
unmount_partition

stamp "booting the stick in qemu ($accel${bios_args:+, UEFI}); the original reaches the clone at 127.0.0.1:$port"
qemu-system-x86_64 -machine q35,accel=$accel -m 1024 -smp 2 "${bios_args[@]}" \
  -display none -monitor none -serial "file:$work/serial.log" \
  -drive "file=$work/stick.img,format=raw,if=none,id=stick" -device virtio-blk-pci,drive=stick,bootindex=0 \
  -drive "file=$work/internal.img,format=raw,if=none,id=internal" \
  -device virtio-blk-pci,drive=internal,serial=CLONEVMDISK \
  -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$port-:7000" -device virtio-net-pci,netdev=n0 \
  >"$work/qemu.log" 2>&1 &
qemu_pid=$!

# The report unit prints a status block every 2 s once cloned answers.
wait_serial() {  # PATTERN LIMIT_S
  local limit=$(( SECONDS + $2 ))
  while ! grep -q "$1" "$work/serial.log" 2>/dev/null; do
    kill -0 "$qemu_pid" 2>/dev/null || { cat "$work/qemu.log"; tail -50 "$work/serial.log" 2>/dev/null; fail "qemu exited"; }
    if ((SECONDS > limit)); then tail -80 "$work/serial.log"; fail "no '$1' on the serial console within $2 s"; fi
    sleep 1
  done
}
wait_serial "daemon:     running" "$boot_limit_s"
stamp "cloned is up in the VM: $(grep -m1 'daemon:     running' "$work/serial.log" | tr -d '\r')"

stamp "replicating a $bytes workload from the host"
"$build/origin/clone-origin" --config "$work/origin/origin.toml" workload --source "$work/source.img" \
  --seed 11 --bytes "$bytes" --write-min 512 --write-max 256K --epoch-max 32 --trim-percent 10 \
  --compare "$work/internal.img" | tee "$work/origin.log"
grep -q identical "$work/origin.log" || fail "the original's compare did not find the disks identical"
cmp "$work/source.img" "$work/internal.img" || fail "the VM's internal disk differs from the source"
stamp "the VM's internal disk is byte-identical to the source"

# A status block printed after the workload finished, showing a consistent clone with no lag.
lines_before=$(wc -l <"$work/serial.log")
limit=$(( SECONDS + 120 ))
while :; do
  block=$(tail -n +"$lines_before" "$work/serial.log" | tr -d '\r' |
          awk '/^=== clonectl status begin/{b="";on=1;next} /^=== clonectl status end/{if(on)last=b;on=0;next} on{b=b $0 "\n"} END{printf "%s", last}')
  if [ -n "$block" ] && grep -q "a bootable copy (consistent)" <<<"$block" && grep -q "lag:        0 records" <<<"$block"; then
    break
  fi
  ((SECONDS < limit)) || { echo "$block"; fail "clonectl status in the VM did not report a consistent clone with no lag"; }
  sleep 2
done
echo "clonectl status in the VM:"
echo "$block" | sed 's/^/  /'
stamp "pass"
