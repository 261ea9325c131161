#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Issue 18's benchmark (docs/PERFORMANCE.md, "Staged resync"): the same delta
# resynced onto a clone that holds a whole generation, staged on the stick
# and in place, with the stick's writes limited to a USB stick's speed.
#   - the clone's disk: a loop device (direct I/O) over a file under BENCH_TMP;
#   - the stick: ext4 on a second loop device, holding the clone's directory
#     (configuration, state store, and the stage). cloned runs in a cgroup of
#     its own whose writes to that device are limited to BENCH_STICK_WBPS
#     bytes/s (cgroup v2 io.max wbps, or cgroup v1
#     blkio.throttle.write_bps_device where the io controller is v1's);
#   - baselines: dd's O_DIRECT write to the disk device, and dd to the stick,
#     inside the cgroup (O_DIRECT; buffered ending with fsync) and outside it;
#   - the clone is made consistent (a first resync of an identical copy), then
#     BENCH_DELTA bytes of the source change (whole MiB of random data at
#     seeded random places) and the clone resyncs, from that same state each
#     time (disk and clone directory restored), in each of BENCH_MODES:
#       staged      the default ([resync] stage_max_bytes = 8G);
#       in_place    [resync] stage_max_bytes = 0 (every resync in place);
#       unbootable  a 1M bound and clone-origin resync --in-place-unbootable
#                   (the plan's whole comparison first, then in place);
#     BENCH_REPS times, interleaved. Each run reports its time (clone-origin's
#     start to its exit: the clone is consistent), the window in which the
#     disk is not a whole generation from the clone's events (in place: the
#     resync's begin, or the plan's answer, to its completion; staged: the
#     apply, as the daemon times it) and as seen by polling clonectl status,
#     the stage file's size, and the bytes written to the stick.
# Settings (environment): BENCH_BUILD (build-bench), BENCH_TMP (/var/tmp),
# BENCH_DISK (1G), BENCH_DELTA (256M, whole MiB), BENCH_STICK (the stick's
# size: BENCH_DELTA + 512M), BENCH_STICK_WBPS (30000000 bytes/s; 0: no limit),
# BENCH_MODES ("staged in_place unbootable"), BENCH_REPS (3), BENCH_PORT
# (27500). Needs root (loop devices, mount, cgroups), mkfs.ext4 and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

build=${BENCH_BUILD:-build-bench}
port=${BENCH_PORT:-27500}
tmp_root=${BENCH_TMP:-/var/tmp}
run_limit_s=240
# shellcheck source=bench/lib.sh
source bench/lib.sh

disk_bytes=$(to_bytes "${BENCH_DISK:-1G}")
delta_bytes=$(to_bytes "${BENCH_DELTA:-256M}")
stick_bytes=$(to_bytes "${BENCH_STICK:-$(( (delta_bytes >> 20) + 512 ))M}")
stick_wbps=${BENCH_STICK_WBPS:-30000000}
modes=${BENCH_MODES:-staged in_place unbootable}
reps=${BENCH_REPS:-3}
(( delta_bytes % (1 << 20) == 0 && delta_bytes > 0 && delta_bytes <= disk_bytes )) ||
  die "BENCH_DELTA must be whole MiB, at most BENCH_DISK"
[[ $(id -u) == 0 ]] || die "needs root: loop devices, a mount and a cgroup"
for tool in mkfs.ext4 losetup mount python3 dd; do
  command -v "$tool" >/dev/null || die "$tool is missing"
done

cloned_bin=$build/cloned/cloned
clonectl_bin=$build/cloned/clonectl
origin_bin=$build/origin/clone-origin
[[ -d $build ]] || meson setup "$build" --buildtype=release >/dev/null
ninja -j2 -C "$build" cloned/cloned cloned/clonectl origin/clone-origin >/dev/null

# --- Everything made here, undone on any exit --------------------------------
scratch=$(mktemp -d "$tmp_root/cloned-staged-bench.XXXXXX")
source_img=""
disk_dev=""
stick_dev=""
stick_mnt=""
cgroup_dir=""
cloned_pid=""
poll_pid=""

detach() {
  for _ in $(seq 50); do  # the kernel may hold the device a moment after close
    losetup -d "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  note "could not detach $1; run: losetup -d $1"
}

cleanup() {
  [[ -n $poll_pid ]] && kill "$poll_pid" 2>/dev/null
  [[ -n $cloned_pid ]] && kill -KILL "$cloned_pid" 2>/dev/null
  wait 2>/dev/null
  if [[ -n $stick_mnt ]] && mountpoint -q "$stick_mnt"; then
    for _ in $(seq 50); do umount "$stick_mnt" 2>/dev/null && break; sleep 0.1; done
  fi
  [[ -n $stick_dev ]] && detach "$stick_dev"
  [[ -n $disk_dev ]] && detach "$disk_dev"
  if [[ -n $cgroup_dir ]]; then
    for _ in $(seq 50); do rmdir "$cgroup_dir" 2>/dev/null && break; sleep 0.1; done
    [[ -d $cgroup_dir ]] && note "could not remove the cgroup $cgroup_dir"
  fi
  rm -rf "$scratch"
  [[ -n $source_img ]] && rm -f "$source_img"
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- The stick's speed limit ---------------------------------------------------
# A cgroup of our own: cgroup v2's io.max where the io controller is on the
# unified hierarchy, else v1's blkio throttle (a hybrid hierarchy, as on this
# VM). Either counts what its processes write to the device, including the
# write-back their fsync/fdatasync starts; write-back the kernel's flusher
# starts on its own is not charged to it under v1 (the counters show how much
# went through the limit).
throttle_kind=""
throttle_setup() {  # MAJ:MIN
  if grep -qw io /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
    grep -qw io /sys/fs/cgroup/cgroup.subtree_control || echo +io >/sys/fs/cgroup/cgroup.subtree_control
    cgroup_dir=/sys/fs/cgroup/cloned-bench-$$
    mkdir "$cgroup_dir"
    [[ $stick_wbps == 0 ]] || echo "$1 wbps=$stick_wbps" >"$cgroup_dir/io.max"
    throttle_kind="cgroup v2 io.max wbps"
  elif [[ -f /sys/fs/cgroup/blkio/blkio.throttle.write_bps_device ]]; then
    cgroup_dir=/sys/fs/cgroup/blkio/cloned-bench-$$
    mkdir "$cgroup_dir"
    [[ $stick_wbps == 0 ]] || echo "$1 $stick_wbps" >"$cgroup_dir/blkio.throttle.write_bps_device"
    throttle_kind="cgroup v1 blkio.throttle.write_bps_device"
  else
    die "no cgroup io controller (v2 io or v1 blkio) to limit the stick with"
  fi
}

# Bytes the cgroup's processes have written to the stick (through the limit).
throttled_bytes() {
  if [[ -f $cgroup_dir/io.stat ]]; then
    awk -v d="$stick_majmin" '$1 == d { for (i = 2; i <= NF; i++) if (sub(/^wbytes=/, "", $i)) w = $i }
      END { print w + 0 }' "$cgroup_dir/io.stat"
  else
    awk -v d="$stick_majmin" '$1 == d && $2 == "Write" { print $3; f = 1 } END { if (!f) print 0 }' \
      "$cgroup_dir/blkio.throttle.io_service_bytes"
  fi
}

# Bytes written to the stick's device by anyone (sectors written x 512).
device_written_bytes() { awk '{ printf "%.0f\n", $7 * 512 }' "/sys/block/${stick_dev#/dev/}/stat"; }

# Runs a command in the cgroup: sh joins it, then becomes the command (same
# pid, so $! of a backgrounded call is the command's).
# shellcheck disable=SC2016
join_cgroup='echo $$ >"$0/cgroup.procs" && exec "$@"'

# MB/s (10^6 bytes a second) of a dd of MIB MiB of zeroes to TO, run in the
# cgroup or not (WHERE: cgroup | free); the rest are dd's flags.
dd_mb_s() {
  local to=$1 mib=$2 where=$3 t0 wrap=()
  shift 3
  [[ $where == cgroup ]] && wrap=(sh -c "$join_cgroup" "$cgroup_dir")
  t0=$(now_ns)
  bounded "${wrap[@]}" dd if=/dev/zero of="$to" bs=1M count="$mib" status=none "$@"
  awk -v b=$((mib << 20)) -v ns=$(($(now_ns) - t0)) 'BEGIN { printf "%.1f", b / 1e6 / (ns / 1e9) }'
}

# --- cloned and clone-origin ------------------------------------------------
clone_dir=""
clone_config=""
origin_config=""

start_cloned() {  # LOG
  sh -c "$join_cgroup" "$cgroup_dir" "$cloned_bin" --config "$clone_config" >/dev/null 2>"$1" &
  cloned_pid=$!
  wait_cloned_started "$1" "$cloned_pid"
}

stop_cloned() {
  kill -TERM "$cloned_pid"
  for _ in $(seq 100); do kill -0 "$cloned_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$cloned_pid" 2>/dev/null && note "cloned did not stop within 10 s: killed"
  wait "$cloned_pid" || true
  cloned_pid=""
}

# Polls clonectl status (bootable or not) and the stage file's size until
# killed: "ns stage_file_bytes bootable" per line.
poll_status() {
  local out=$1 t j s b
  while :; do
    t=$(now_ns)
    j=$(timeout 5 "$clonectl_bin" status --config "$clone_config" --json 2>/dev/null) || j=""
    s=$(stat -c %s "$clone_dir/state/stage" 2>/dev/null) || s=0
    b=$(grep -o '"bootable": *[a-z]*' <<<"$j" | sed 's/.*: *//') || b=unknown
    echo "$t $s ${b:-unknown}" >>"$out"
    sleep 0.05
  done
}

# --- Setup --------------------------------------------------------------------
started=$(date -u '+%F %H:%M UTC')
note "machine: $(nproc) cores, kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg), $started"
source_img=$scratch/source.img
[[ -d /dev/shm ]] && source_img=$(mktemp /dev/shm/cloned-staged-source.XXXXXX)
# A loop device over a new file of $2 bytes, with direct I/O where the kernel allows it.
new_loop() {
  truncate -s "$2" "$1"
  losetup --find --show --direct-io=on "$1" 2>/dev/null || losetup --find --show "$1"
}
disk_dev=$(new_loop "$scratch/disk.img" "$disk_bytes")
stick_dev=$(new_loop "$scratch/stick.img" "$stick_bytes")
stick_majmin=$(printf '%d:%d' "0x$(stat -c %t "$stick_dev")" "0x$(stat -c %T "$stick_dev")")
# Inode tables and journal written now, not by ext4lazyinit during the runs.
bounded mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$stick_dev"
stick_mnt=$scratch/stick
mkdir "$stick_mnt"
mount "$stick_dev" "$stick_mnt"
throttle_setup "$stick_majmin"
limit_text="writes limited to $stick_wbps bytes/s by $throttle_kind"
[[ $stick_wbps != 0 ]] || limit_text="writes not limited (BENCH_STICK_WBPS=0: a $throttle_kind cgroup with no rule)"
note "disk $disk_dev ($((disk_bytes >> 20)) MiB), stick $stick_dev ($stick_majmin," \
  "$((stick_bytes >> 20)) MiB ext4), $limit_text"

# Baselines. The disk's first: the disk is overwritten with the image next.
base_mib=$(( delta_bytes >> 20 < 256 ? delta_bytes >> 20 : 256 ))
disk_mb_s=$(dd_mb_s "$disk_dev" "$base_mib" free oflag=direct conv=fsync)
stick_free_mb_s=$(dd_mb_s "$stick_mnt/dd.test" 64 free oflag=direct conv=fsync)
rm -f "$stick_mnt/dd.test"
stick_direct_mb_s=$(dd_mb_s "$stick_mnt/dd.test" 64 cgroup oflag=direct conv=fsync)
rm -f "$stick_mnt/dd.test"
stick_fsync_mb_s=$(dd_mb_s "$stick_mnt/dd.test" 64 cgroup conv=fsync)
rm -f "$stick_mnt/dd.test"
note "dd O_DIRECT to the disk: $disk_mb_s MB/s; to the stick: $stick_direct_mb_s MB/s O_DIRECT and" \
  "$stick_fsync_mb_s MB/s buffered + fsync in the cgroup, $stick_free_mb_s MB/s O_DIRECT outside it"

# --- The images, the pair, generation 1 ---------------------------------------
note "making a $((disk_bytes >> 20)) MiB random image, the clone's disk a copy of it"
head -c "$disk_bytes" /dev/urandom >"$source_img"
bounded dd if="$source_img" of="$disk_dev" bs=1M oflag=direct conv=fsync status=none
clone_dir=$stick_mnt/clone
clone_config=$clone_dir/cloned.toml
origin_config=$scratch/origin/origin.toml
port=$((port + 1))
"$clonectl_bin" pair --clone-dir "$clone_dir" --origin-dir "$scratch/origin" --target "$disk_dev" \
  --listen "127.0.0.1:$port" >/dev/null || die "clonectl pair failed"
start_cloned "$scratch/cloned-first.log"
bounded "$origin_bin" --config "$origin_config" resync --source "$source_img" >"$scratch/first.out" 2>&1 ||
  { cat "$scratch/first.out" >&2; die "the first resync failed"; }
stop_cloned
bounded cmp -s "$source_img" "$disk_dev" || die "after the first resync the clone's disk differs from the source"
grep -q '"bootable": *true' <(bounded "$clonectl_bin" status --config "$clone_config" --json) ||
  die "the clone is not consistent after the first resync"
# What every run starts from: the disk as it is now (the source before the
# change) and the clone's directory.
cp --sparse=never "$source_img" "$scratch/disk.before"
cp -a "$clone_dir" "$scratch/clone.before"

# The delta: BENCH_DELTA / 1 MiB distinct MiB of the source, at seeded random
# places, get new random data.
python3 - "$source_img" "$disk_bytes" "$delta_bytes" <<'EOF'
import random, sys
path, size, delta = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(18)
with open(path, "r+b") as f:
    for mib in sorted(rng.sample(range(size >> 20), delta >> 20)):
        f.seek(mib << 20)
        f.write(rng.randbytes(1 << 20))
EOF
note "changed $((delta_bytes >> 20)) MiB of the source in 1 MiB pieces; the clone holds the rest"

# --- One resync in one mode ------------------------------------------------------
# Restores the disk and the clone's directory, sets the mode, resyncs, checks
# the result, and leaves run.json (the figures) in $scratch/MODE-REP.
resync_run() {  # MODE REP
  local mode=$1 rep=$2 dir=$scratch/$1-$2 origin_args=()
  mkdir "$dir"
  bounded dd if="$scratch/disk.before" of="$disk_dev" bs=1M oflag=direct conv=fsync status=none
  rm -rf "$clone_dir"
  cp -a "$scratch/clone.before" "$clone_dir"
  case $mode in
    staged) ;;
    in_place) printf '\n[resync]\nstage_max_bytes = 0\n' >>"$clone_config" ;;
    unbootable)
      printf '\n[resync]\nstage_max_bytes = "1M"\n' >>"$clone_config"
      origin_args=(--in-place-unbootable)
      ;;
    *) die "unknown mode '$mode' in BENCH_MODES (staged, in_place, unbootable)" ;;
  esac
  sync -f "$clone_dir"
  start_cloned "$dir/cloned.log"
  local dev0 cg0 t0 t1
  dev0=$(device_written_bytes)
  cg0=$(throttled_bytes)
  poll_status "$dir/poll" &
  poll_pid=$!
  t0=$(now_ns)
  bounded "$origin_bin" --config "$origin_config" resync --source "$source_img" "${origin_args[@]}" \
    >"$dir/origin.out" 2>&1 || { cat "$dir/origin.out" >&2; die "the $mode resync failed (log: $dir/cloned.log)"; }
  t1=$(now_ns)
  sleep 0.2  # a sample or two after the end
  kill "$poll_pid"
  wait "$poll_pid" 2>/dev/null || true
  poll_pid=""
  stop_cloned
  sync -f "$clone_dir"  # what the run left dirty on the stick is written now, and counted
  echo "$(($(device_written_bytes) - dev0)) $(($(throttled_bytes) - cg0))" >"$dir/stick_bytes"
  bounded "$clonectl_bin" events --config "$clone_config" --json --limit 200 >"$dir/events.json"
  bounded cmp -s "$source_img" "$disk_dev" || die "after the $mode resync the clone's disk differs from the source"
  python3 bench/staged_resync.py run "$dir" "$mode" "$t0" "$t1"
  note "$(python3 bench/staged_resync.py line "$dir" "$rep") (load $(cut -d' ' -f1 /proc/loadavg))"
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for rep in $(seq "$reps"); do
  for mode in $modes; do resync_run "$mode" "$rep"; done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# --- The report --------------------------------------------------------------------
echo
echo "started $started, $(nproc) cores, load at the start of the runs $load_start, at the end $load_end"
under=$(findmnt -n -o SOURCE,FSTYPE -T "$scratch" | tr -s ' ')
echo "disk $((disk_bytes >> 20)) MiB (loop, direct I/O, over $under);" \
  "delta $((delta_bytes >> 20)) MiB in 1 MiB pieces; stick $((stick_bytes >> 20)) MiB ext4 on a loop device," \
  "$limit_text; $reps run(s) per mode, medians"
echo
echo "| baseline | MB/s |"
echo "|---|---:|"
echo "| dd O_DIRECT to the clone's disk device, ${base_mib} MiB | $disk_mb_s |"
echo "| dd O_DIRECT to the stick, in cloned's cgroup, 64 MiB | $stick_direct_mb_s |"
echo "| dd buffered + fsync to the stick, in cloned's cgroup, 64 MiB | $stick_fsync_mb_s |"
echo "| dd O_DIRECT to the stick, outside the cgroup (no limit), 64 MiB | $stick_free_mb_s |"
echo
# shellcheck disable=SC2086  # one argument a mode
python3 bench/staged_resync.py table "$scratch" "$reps" $modes
note "done in ${SECONDS} s"
