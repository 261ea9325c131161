#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The real-write-stream benchmark behind docs/PERFORMANCE.md ("A real write
# stream"), all in one run:
#   1. capture test/e2e/ext4_workload.sh (mkfs.ext4, a tree copied, an archive
#      extracted, sqlite transactions, deletes, fstrim) through
#      scripts/capture-log-writes.sh;
#   2. the histogram of the record sizes it makes (log-writes-bench), and a
#      bare local replay of the log onto a file (pread, O_DIRECT pwrite,
#      fdatasync at each barrier): the baseline;
#   3. clone-origin replay --log-writes of the same log to a running cloned
#      over loopback: records/s, MiB/s, and cloned's CPU seconds per GiB of
#      writes against the bare replay's; the clone must end identical.
# Settings (environment): BENCH_BUILD (build-bench), BENCH_TMP (/var/tmp),
# BENCH_IMAGE (256M), BENCH_PORT (27450). Needs root and the capture tools
# (scripts/setup.sh --capture).
set -euo pipefail
cd "$(dirname "$0")/.."

build=${BENCH_BUILD:-build-bench}
port=${BENCH_PORT:-27450}
tmp_root=${BENCH_TMP:-/var/tmp}
image=${BENCH_IMAGE:-256M}
die() { echo "bench: $*" >&2; exit 1; }
note() { echo "bench: $*" >&2; }
[[ $(id -u) == 0 ]] || die "needs root (the capture puts a loop device on a FUSE export)"
command -v qemu-storage-daemon >/dev/null || die "qemu-storage-daemon is missing: scripts/setup.sh --capture"

[[ -d $build ]] || meson setup "$build" --buildtype=release >/dev/null
ninja -C "$build" cloned/cloned cloned/clonectl origin/clone-origin bench/log-writes-bench >/dev/null

scratch=$(mktemp -d "$tmp_root/cloned-log-writes-bench.XXXXXX")
cloned_pid=""
cleanup() {
  [[ -n $cloned_pid ]] && kill -KILL "$cloned_pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$scratch"
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }   # utime + stime
now_ns() { date +%s%N; }

note "capturing the ext4 workload on a $image image"
MNT=$scratch/mnt scripts/capture-log-writes.sh --size "$image" "$scratch/orig.img" "$scratch/log.bin" \
  bash test/e2e/ext4_workload.sh >"$scratch/capture.log" 2>&1 || { cat "$scratch/capture.log" >&2; die "capture failed"; }
disk_bytes=$(stat -c %s "$scratch/orig.img")

truncate -s "$disk_bytes" "$scratch/bare.img"
sync
stats=$("$build/bench/log-writes-bench" "$scratch/log.bin" "$scratch/bare.img" "$disk_bytes")
get() { echo "$stats" | awk -F= -v k="$1" '$1 == k { print $2 }'; }
cmp -s "$scratch/bare.img" "$scratch/orig.img" || die "the bare replay differs from the original's image"

truncate -s "$disk_bytes" "$scratch/clone.img"
"$build/cloned/clonectl" pair --clone-dir "$scratch/clone" --origin-dir "$scratch/origin" \
  --target "$scratch/clone.img" --listen "127.0.0.1:$port" >/dev/null
"$build/cloned/cloned" --config "$scratch/clone/cloned.toml" >"$scratch/cloned.log" 2>&1 &
cloned_pid=$!
for _ in $(seq 100); do "$build/cloned/clonectl" status --config "$scratch/clone/cloned.toml" >/dev/null 2>&1 && break; sleep 0.1; done
before=$(cpu_ticks "$cloned_pid")
t0=$(now_ns)
/usr/bin/time -f "origin_cpu_s=%U+%S" -o "$scratch/origin.time" \
  "$build/origin/clone-origin" --config "$scratch/origin/origin.toml" replay --log-writes "$scratch/log.bin" \
  >"$scratch/replay.out" 2>"$scratch/replay.err" || { cat "$scratch/replay.err" >&2; die "replay failed"; }
t1=$(now_ns)
after=$(cpu_ticks "$cloned_pid")
cmp -s "$scratch/clone.img" "$scratch/orig.img" || die "the clone differs from the original's image"
hz=$(getconf CLK_TCK)

awk -v records="$(get records)" -v bytes="$(get write_bytes)" -v entries="$(get entries)" \
  -v barriers="$(get barriers)" -v bare_cpu="$(get bare_cpu_s)" -v bare_wall="$(get bare_wall_s)" \
  -v ticks=$((after - before)) -v hz="$hz" -v wall_ns=$((t1 - t0)) -v load="$(cut -d' ' -f1-3 /proc/loadavg)" '
BEGIN {
  gib = bytes / 2^30; wall = wall_ns / 1e9; cpu = ticks / hz
  printf "log: %d entries, %d records (%d barriers), %.1f MiB of writes; load %s\n", entries, records, barriers, bytes / 2^20, load
  printf "clone:  %.2f s wall, %.0f records/s, %.1f MiB/s; cloned %.2f CPU s = %.1f CPU s/GiB\n", wall, records / wall, bytes / 2^20 / wall, cpu, cpu / gib
  printf "bare:   %.2f s wall, %.1f MiB/s; %.2f CPU s = %.1f CPU s/GiB\n", bare_wall, bytes / 2^20 / bare_wall, bare_cpu, bare_cpu / gib
  printf "ratio:  cloned CPU / bare CPU = %.2f; clone wall / bare wall = %.2f\n", (bare_cpu > 0 ? cpu / bare_cpu : 0), wall / bare_wall
}'
cat "$scratch/origin.time"
echo "record sizes (writes and trims, by the power of two at or above):"
echo "$stats" | grep -E '^(write|trim)_size_le_' | sed 's/^/  /'
echo "identical: yes"
