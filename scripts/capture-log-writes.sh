#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Captures a real write stream as a dm-log-writes log (docs/ORIGINS.md), the
# QEMU way, which needs no device-mapper: qemu-storage-daemon's blklogwrites
# driver over IMAGE, exported through FUSE, with a loop device on the export.
# COMMAND runs with $DEVICE set to that loop device (for example mkfs.ext4,
# mount, a workload, umount); every write, flush, FUA and discard it makes
# lands in IMAGE and is logged to LOG. Afterwards everything is torn down, also
# when a step fails: what COMMAND mounted from $DEVICE, the loop device, the
# daemon (whose clean exit writes the log's final super block) and the FUSE
# mount. The exit status is COMMAND's, or 1 if the set-up failed.
#
# Usage: scripts/capture-log-writes.sh [--size SIZE] [--sector-size 512|4096]
#          IMAGE LOG COMMAND [ARGS...]
#   IMAGE is created at SIZE (default 256M) when it does not exist. LOG must
#   not exist: a log is never overwritten. Needs root, qemu-storage-daemon
#   (qemu-system-common) and fuse3: scripts/setup.sh --capture installs them.
set -euo pipefail

size=256M
sector_bytes=512
while (($#)); do
  case "$1" in
    --size) size=$2; shift 2 ;;
    --sector-size) sector_bytes=$2; shift 2 ;;
    --) shift; break ;;
    -*) echo "capture: unknown option $1 (see the usage at the top of $0)" >&2; exit 2 ;;
    *) break ;;
  esac
done
if (($# < 3)); then
  echo "usage: $0 [--size SIZE] [--sector-size 512|4096] IMAGE LOG COMMAND [ARGS...]" >&2
  exit 2
fi
image=$1 log=$2
shift 2
case "$sector_bytes" in 512|4096) ;; *) echo "capture: --sector-size must be 512 or 4096" >&2; exit 2 ;; esac
[ "$(id -u)" -eq 0 ] || { echo "capture: needs root (a loop device over the FUSE export)" >&2; exit 1; }
for tool in qemu-storage-daemon losetup truncate; do
  command -v "$tool" >/dev/null || { echo "capture: $tool is missing; run scripts/setup.sh --capture" >&2; exit 1; }
done
[ -e /dev/fuse ] || { echo "capture: /dev/fuse is missing (modprobe fuse)" >&2; exit 1; }
[ -e "$log" ] && { echo "capture: $log exists; a log is never overwritten (remove it or name another)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/var/tmp}/capture.XXXXXX")
qsd_pid= loop=
teardown() {
  local status=$?
  set +e
  if [ -n "$loop" ]; then
    # Whatever COMMAND left mounted from the device (a failed step).
    findmnt -rn -S "$loop" -o TARGET | while read -r target; do umount "$target"; done
    losetup -d "$loop"
  fi
  if [ -n "$qsd_pid" ] && kill -0 "$qsd_pid" 2>/dev/null; then
    kill -TERM "$qsd_pid"  # a clean exit flushes the log and its super block
    for _ in $(seq 100); do kill -0 "$qsd_pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$qsd_pid" 2>/dev/null && { echo "capture: qemu-storage-daemon did not stop; killing it" >&2; kill -KILL "$qsd_pid"; }
  fi
  mountpoint -q "$work/export.img" 2>/dev/null && umount "$work/export.img"
  rm -rf "$work"
  exit "$status"
}
trap teardown EXIT
trap 'exit 130' INT TERM

[ -e "$image" ] || truncate -s "$size" "$image"
: >"$log"
touch "$work/export.img"
# discard=unmap on every node, or discards are dropped silently.
qemu-storage-daemon \
  --blockdev driver=file,node-name=disk-file,discard=unmap,filename="$image" \
  --blockdev driver=raw,node-name=disk-raw,discard=unmap,file=disk-file \
  --blockdev driver=file,node-name=log-file,filename="$log" \
  --blockdev driver=blklogwrites,node-name=logw,discard=unmap,file=disk-raw,log=log-file,log-sector-size="$sector_bytes" \
  --export type=fuse,id=exp0,node-name=logw,mountpoint="$work/export.img",writable=on \
  --pidfile "$work/qsd.pid" --daemonize
qsd_pid=$(cat "$work/qsd.pid")
loop=$(losetup -f --show --sector-size "$sector_bytes" "$work/export.img")
echo "capture: $image through $loop, logging to $log ($sector_bytes-byte sectors)"
DEVICE=$loop "$@"
