# SPDX-License-Identifier: MIT
# What the VM scenarios share (source it): the checks, a work directory, a
# network namespace with a tap for the VM, the image copy with the pairing
# material and the test-only units, qemu with its QMP sockets and the agent
# port, and a trap that tears all of it down, also on failure.
#
# The original (clone-origin) runs in the namespace: the VM's network is the
# tap cvm0 in it (host 10.213.9.1, guest 10.213.9.2), and nothing else. Its
# magic packets and every other packet stay there.
# shellcheck shell=bash

vm_src=$(realpath "$(dirname "${BASH_SOURCE[0]}")/../..")
. "$vm_src/test/support/requires.sh"
export MTOOLS_SKIP_CHECK=1   # mtools: image files have no disk geometry to check
VM_MAC=52:54:00:c1:0e:01
VM_PORT=7000
VM_CACHE=${CLONED_VM_CACHE:-/var/cache/cloned-vm}

fail() {
  echo "FAIL: $*" >&2
  if [ -n "${work:-}" ] && [ -f "$work/serial.log" ]; then
    echo "--- the guest's serial console: each boot, its random pool, its first 8 lockups or stalls, and any panic:" >&2
    grep -a -E "Linux version|crng init done|Rebooting|soft lockup|rcu.*stall|hung_task|Kernel panic" "$work/serial.log" |
      awk '/Linux version/ { n = 0; print; next } /crng init done|Rebooting|Kernel panic/ { print; next } n < 8 { n++; print }' |
      tr -d '\r' >&2 || true
    echo "--- the guest's serial console, last 40 lines:" >&2
    tail -n 40 "$work/serial.log" | tr -d '\r' >&2
  fi
  if [ -n "${work:-}" ] && [ -f "$work/agent.log" ]; then
    echo "--- the host's last 12 commands to the guest's agent:" >&2
    tail -n 12 "$work/agent.log" >&2
  fi
  exit 1
}
stamp() { echo "[$((SECONDS - vm_t0)) s] $*"; }

# vm_init BUILD_DIR: checks (skip = exit 77 with the reason), then the work
# directory, the namespace and the trap.
vm_init() {
  build=$(realpath "$1")
  vm_t0=$SECONDS
  requires_root "loop devices, a network namespace and a tap for the VM"
  command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 is missing and scripts/setup.sh --vm could not install it"
  command -v python3 >/dev/null || skip "python3 is missing (Debian package python3)"
  command -v mcopy >/dev/null || skip "mcopy is missing (Debian package mtools)"
  [ -e /dev/net/tun ] || skip "no /dev/net/tun: the VM's network is a tap"
  image=$build/vm/stick.img
  [ -f "$image" ] || "$vm_src/test/vm/prepare-image.sh" "$build" || exit $?
  work=$(mktemp -d /var/tmp/cloned-vm.XXXXXX)
  export CLONED_VM_AGENT_LOG=$work/agent.log
  ns=cloned-vm-$$
  qemu_pid="" events_pid="" relay_pid="" loop=""
  trap vm_cleanup EXIT
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip -n "$ns" tuntap add dev cvm0 mode tap
  ip -n "$ns" addr add 10.213.9.1/24 dev cvm0
  ip -n "$ns" link set cvm0 up
  vm_accel=$("$vm_src/test/vm/accel.sh" "$image")
  if [ "$vm_accel" = kvm ]; then boot_limit_s=120; else boot_limit_s=420; fi
}

vm_cleanup() {
  local rc=$?
  set +e
  [ -n "$relay_pid" ] && kill "$relay_pid" 2>/dev/null && wait "$relay_pid" 2>/dev/null
  if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then
    kill -9 "$qemu_pid"; wait "$qemu_pid" 2>/dev/null
  fi
  [ -n "$events_pid" ] && kill "$events_pid" 2>/dev/null && wait "$events_pid" 2>/dev/null
  # A qemu or helper started where its pid could not be kept (a subshell):
  # only processes whose command line names this work directory.
  local stray
  for stray in $(pgrep -f -- "$work/" 2>/dev/null); do kill -9 "$stray" 2>/dev/null; done
  mountpoint -q "$work/mnt" 2>/dev/null && umount "$work/mnt"
  [ -n "$loop" ] && losetup -d "$loop"
  ip netns del "$ns" 2>/dev/null
  if [ "${CLONED_VM_KEEP:-}" = 1 ] || { [ "$rc" -ne 0 ] && [ "${CLONED_VM_KEEP:-}" = failed ]; }; then
    echo "kept $work"
  else
    rm -rf "$work"
  fi
}

# vm_pair_disk IMAGE NAME PORT BY_ID SERIAL MODEL: pairs a cloned for the disk
# the guest will see as /dev/disk/by-id/BY_ID (the host pairs against a loop
# device on IMAGE, then the config is pointed at the guest's names): the
# material in $work/clone-NAME and $work/origin-NAME ("" = clone, origin),
# state in /var/lib/cloned-NAME, listening on PORT.
vm_pair_disk() {
  local img=$1 suffix=${2:+-$2} port=$3 by_id=$4 serial=$5 model=$6
  loop=$(losetup --find --show "$img")
  "$build/cloned/clonectl" pair --clone-dir "$work/clone$suffix" --origin-dir "$work/origin$suffix" --target "$loop" \
    --listen "0.0.0.0:$port" >/dev/null
  losetup -d "$loop"; loop=""
  sed -i -e "s|^path = .*|path = \"/dev/disk/by-id/$by_id\"|" \
    -e "s|^serial = .*|serial = \"$serial\"|" -e "s|^model = .*|model = \"$model\"|" \
    -e "s|^dir = \"state\"|dir = \"/var/lib/cloned$suffix\"|" \
    -e "s|^runtime_dir = \"run\"|runtime_dir = \"/run/cloned$suffix\"|" \
    "$work/clone$suffix/cloned.toml"
}

# vm_pair SIZE [CLONED_TOML_EXTRA]: blank disks, the pairing material for the
# NVMe disk (by its /dev/disk/by-id name and identity) and the stick copy.
vm_pair() {
  local size=$1 extra=${2:-}
  cp --sparse=always "$image" "$work/stick.img"
  truncate -s "$size" "$work/internal.img" "$work/source.img"
  vm_pair_disk "$work/internal.img" "" "$VM_PORT" nvme-QEMU_NVMe_Ctrl_CLONEVMNVME CLONEVMNVME "QEMU NVMe Ctrl"
  [ -z "$extra" ] || printf '%s\n' "$extra" >>"$work/clone/cloned.toml"
  sed -i "s|^address = .*|address = \"10.213.9.2:$VM_PORT\"|" "$work/origin/origin.toml"
  vm_write_stick
}

# Into the copy of the image: the pairing material on CLONECFG, the guest's
# static address on the test network, and the test agent. Partitions by
# offset: loop devices here may get no partition nodes.
vm_write_stick() {
  local start sectors
  read -r start _ < <(partx -g -o START,SECTORS -n 3 "$work/stick.img")
  mcopy -o -i "$work/stick.img@@$((start * 512))" "$work/clone/cloned.toml" "$work/clone/pair.secret" ::
  read -r start sectors < <(partx -g -o START,SECTORS -n 4 "$work/stick.img")
  mkdir -p "$work/mnt"
  loop=$(losetup --find --show --offset $((start * 512)) --sizelimit $((sectors * 512)) "$work/stick.img")
  mount "$loop" "$work/mnt"
  local m=$work/mnt
  # Only the test's network, matched by MAC: the NIC's name follows its slot.
  printf '[Match]\nMACAddress=%s\n\n[Network]\nAddress=10.213.9.2/24\n' "$VM_MAC" >"$m/etc/systemd/network/10-vmtest.network"
  install -m 0755 "$vm_src/test/vm/guest-agent.sh" "$m/usr/local/bin/cloned-vm-agent"
  install -m 0644 "$vm_src/test/vm/cloned-vm-agent.service" "$m/etc/systemd/system/"
  ln -sf /etc/systemd/system/cloned-vm-agent.service "$m/etc/systemd/system/multi-user.target.wants/"
  umount "$m"
  losetup -d "$loop"; loop=""
}

# vm_start [EXTRA_QEMU_ARGS...]: boots the stick; the NVMe disk (id nvme0) is
# the clone's internal disk. RDRAND, as on the laptops: the guest's random
# pool is ready at boot, and nothing early in a boot waits on entropy.
vm_start() {
  if pgrep -f "file=$work/stick.img" >/dev/null; then fail "a qemu still runs on $work/stick.img"; fi
  rm -f "$work"/*.sock
  ip netns exec "$ns" qemu-system-x86_64 -machine pc,accel="$vm_accel" -m 1024 -smp 2 \
    -display none -monitor none -serial "file:$work/serial.log" \
    -global PIIX4_PM.disable_s3=0 \
    -qmp "unix:$work/qmp.sock,server=on,wait=off" -qmp "unix:$work/qmp-events.sock,server=on,wait=off" \
    -chardev "socket,id=agent,path=$work/agent.sock,server=on,wait=off" \
    -device virtio-serial -device virtserialport,chardev=agent,name=vmtest \
    -drive "file=$work/stick.img,format=raw,if=none,id=stick" -device virtio-blk-pci,drive=stick,bootindex=0 \
    -drive "file=$work/internal.img,format=raw,if=none,id=nvm" -device nvme,id=nvme0,serial=CLONEVMNVME,drive=nvm \
    -netdev tap,id=n0,ifname=cvm0,script=no,downscript=no -device "virtio-net-pci,netdev=n0,mac=$VM_MAC" \
    -cpu qemu64,+rdrand \
    "$@" </dev/null >>"$work/qemu.log" 2>&1 &
  qemu_pid=$!
  echo "$(date +%T) qemu $qemu_pid started" >>"$work/vm.log"
  local limit=$((SECONDS + 20))
  until [ -S "$work/qmp-events.sock" ]; do
    kill -0 "$qemu_pid" 2>/dev/null || { cat "$work/qemu.log" >&2; fail "qemu exited at start"; }
    ((SECONDS < limit)) || fail "qemu made no QMP socket within 20 s"
    sleep 0.2
  done
  # Background helpers get no pipe of the caller's: a command substitution
  # around vm_start must not wait for them.
  python3 "$vm_src/test/vm/vmctl.py" events "$work/qmp-events.sock" "$work/events.log" </dev/null >>"$work/helpers.log" 2>&1 &
  events_pid=$!
}

# g CMD...: runs a shell command in the guest (60 s at most); its output on
# stdout, its exit status returned.
g() { python3 "$vm_src/test/vm/vmctl.py" agent "$work/agent.sock" 60 "$*"; }
qmp() { python3 "$vm_src/test/vm/vmctl.py" qmp "$work/qmp.sock" "$@"; }
origin() { ip netns exec "$ns" "$build/origin/clone-origin" --config "$work/origin/origin.toml" "$@"; }

# vm_wait_cloned: until the agent answers and cloned is active and answering.
vm_wait_cloned() {
  local limit=$((SECONDS + boot_limit_s))
  until g true >/dev/null 2>&1; do
    kill -0 "$qemu_pid" 2>/dev/null || fail "qemu exited while the guest booted"
    ((SECONDS < limit)) || fail "the guest's agent did not answer within $boot_limit_s s"
    sleep 2
  done
  until g 'systemctl is-active cloned && clonectl status --config /etc/cloned/cloned.toml | grep -q "daemon:     running"' \
      >/dev/null 2>&1; do
    ((SECONDS < limit)) || { g systemctl status cloned; g journalctl -b -u cloned --no-pager | tail -20; fail "cloned did not come up within $boot_limit_s s"; }
    sleep 2
  done
}

# vm_power_cut: kill -9 of qemu, the whole machine gone at once.
vm_power_cut() {
  echo "$(date +%T) qemu $qemu_pid killed" >>"$work/vm.log"
  kill -9 "$qemu_pid" 2>/dev/null || true
  wait "$qemu_pid" 2>/dev/null || true
  qemu_pid=""
  wait "$events_pid" 2>/dev/null || true
  events_pid=""
}

# vm_quit: QMP quit (no guest shutdown), for the end of a scenario.
vm_quit() {
  qmp quit >/dev/null 2>&1 || true
  local limit=$((SECONDS + 20))
  while kill -0 "$qemu_pid" 2>/dev/null && ((SECONDS < limit)); do sleep 0.5; done
  vm_power_cut
}

status_line() {  # KEY: one line of clonectl status in the guest
  g clonectl status --config /etc/cloned/cloned.toml | tr -d '\r' | grep "^$1:" || true
}
