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
    awk -v d="$stick_majmin" '$1 == d { for (i = 2; i <= NF; i++) if ($i ~ /^wbytes=/) { sub(/wbytes=/, "", $i); print $i; exit } }
      END { if (!NR) print 0 }' "$cgroup_dir/io.stat"
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
note "machine: $(nproc) cores, kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u '+%F %H:%M UTC')"
if [[ -d /dev/shm ]]; then source_img=$(mktemp /dev/shm/cloned-staged-source.XXXXXX); else source_img=$scratch/source.img; fi
truncate -s "$disk_bytes" "$scratch/disk.img"
disk_dev=$(losetup --find --show --direct-io=on "$scratch/disk.img" 2>/dev/null || losetup --find --show "$scratch/disk.img")
truncate -s "$stick_bytes" "$scratch/stick.img"
stick_dev=$(losetup --find --show --direct-io=on "$scratch/stick.img" 2>/dev/null || losetup --find --show "$scratch/stick.img")
stick_majmin=$(printf '%d:%d' "0x$(stat -c %t "$stick_dev")" "0x$(stat -c %T "$stick_dev")")
# Inode tables and journal written now, not by ext4lazyinit during the runs.
bounded mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$stick_dev"
stick_mnt=$scratch/stick
mkdir "$stick_mnt"
mount "$stick_dev" "$stick_mnt"
throttle_setup "$stick_majmin"
limit_text="writes limited to $stick_wbps bytes/s by $throttle_kind"
[[ $stick_wbps != 0 ]] || limit_text="writes not limited (BENCH_STICK_WBPS=0: a $throttle_kind cgroup with no rule)"
note "disk $disk_dev ($((disk_bytes >> 20)) MiB), stick $stick_dev ($stick_majmin, $((stick_bytes >> 20)) MiB ext4), $limit_text"

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
  python3 - "$dir" "$mode" "$t0" "$t1" <<'EOF'
import json, re, sys
d, mode, t0, t1 = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
# This run's events (the first resync's are older than t0), oldest first.
events = sorted((e for e in json.load(open(d + "/events.json")) if e["unix_ms"] >= t0 // 1000000), key=lambda e: e["id"])
def at(prefix):
    hits = [e for e in events if e["message"].startswith(prefix)]
    return hits[0] if hits else None
began, plan, applying, complete = at("began generation"), at("plan "), at("applying generation"), at("complete: generation")
copied = next((e for e in events if " from the stage to the disk in " in e["message"]), None)
r = {"mode": mode, "total_s": (t1 - t0) / 1e9}
if mode == "staged":
    m = re.search(r"in (\d+) ms", copied["message"])
    r["window_s"] = int(m.group(1)) / 1000
    r["compare_s"] = (plan["unix_ms"] - began["unix_ms"]) / 1000
    r["staging_s"] = (applying["unix_ms"] - plan["unix_ms"]) / 1000
    r["apply_to_complete_s"] = (complete["unix_ms"] - applying["unix_ms"]) / 1000
    r["copied"] = copied["message"].split(" from the stage")[0].replace("copied ", "")
else:
    start = plan if mode == "unbootable" else began
    if plan:
        r["compare_s"] = (plan["unix_ms"] - began["unix_ms"]) / 1000
    r["window_s"] = (complete["unix_ms"] - start["unix_ms"]) / 1000
# Polled: from the first sample that says not bootable to the first after it
# that says bootable again.
samples = [l.split() for l in open(d + "/poll") if len(l.split()) == 3]
samples = [(int(t), int(s), b) for t, s, b in samples if b in ("true", "false")]
first_false = next((i for i, x in enumerate(samples) if x[2] == "false"), None)
if first_false is not None:
    back = next((i for i in range(first_false, len(samples)) if samples[i][2] == "true"), len(samples) - 1)
    r["polled_window_s"] = (samples[back][0] - samples[first_false][0]) / 1e9
else:
    r["polled_window_s"] = None  # shorter than the polls: not caught
gaps = sorted(b[0] - a[0] for a, b in zip(samples, samples[1:]))
r["poll_interval_s"] = gaps[len(gaps) // 2] / 1e9 if gaps else 0.0
r["stage_file_bytes"] = max((s for _, s, _ in samples), default=0)
out = open(d + "/origin.out").read()
m = re.search(r"data_bytes_sent=(\d+)", out)
r["data_bytes_sent"] = int(m.group(1)) if m else 0
dev, cg = open(d + "/stick_bytes").read().split()
r["stick_device_bytes"], r["stick_throttled_bytes"] = int(dev), int(cg)
json.dump(r, open(d + "/run.json", "w"))
EOF
  note "$(printf '%-10s run %s: %6.2f s, not a whole generation for %6.2f s (load %s)' "$mode" "$rep" \
    "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["total_s"])' "$dir/run.json")" \
    "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["window_s"])' "$dir/run.json")" \
    "$(cut -d' ' -f1 /proc/loadavg)")"
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for rep in $(seq "$reps"); do
  for mode in $modes; do resync_run "$mode" "$rep"; done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# --- The report --------------------------------------------------------------------
echo
echo "$(date -u '+%F %H:%M UTC'), $(nproc) cores, load at the start of the runs $load_start, at the end $load_end"
echo "disk $((disk_bytes >> 20)) MiB (loop, direct I/O, over $(findmnt -n -o SOURCE,FSTYPE -T "$scratch" | tr -s ' '));" \
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
python3 - "$scratch" "$modes" "$reps" <<'EOF'
import json, statistics, sys
scratch, modes, reps = sys.argv[1], sys.argv[2].split(), int(sys.argv[3])
runs = {m: [json.load(open(f"{scratch}/{m}-{r}/run.json")) for r in range(1, reps + 1)] for m in modes}
med = lambda m, k: statistics.median(x[k] for x in runs[m])
mib = lambda b: f"{b / 1048576:.1f} MiB"
exact = lambda b: f"{b:,.0f} B" if b else "0"
def polled(m):
    caught = [x["polled_window_s"] for x in runs[m] if x["polled_window_s"] is not None]
    if not caught:
        return "not caught"
    return f"{statistics.median(caught):.2f} s" + (f" ({len(caught)} of {reps} caught)" if len(caught) < reps else "")
names = {"staged": "staged (default)", "in_place": "in place (stage_max_bytes = 0)",
         "unbootable": "in place (--in-place-unbootable, 1M bound)"}
print("| mode | resync time | not a whole generation (events) | same, polled | data sent | stage file | written to the stick (device) | of it through the limit |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for m in modes:
    each = lambda k: " / ".join(f"{x[k]:.2f}" for x in runs[m])
    print(f"| {names[m]} | {med(m, 'total_s'):.2f} s ({each('total_s')}) | {med(m, 'window_s'):.2f} s ({each('window_s')})"
          f" | {polled(m)} | {mib(med(m, 'data_bytes_sent'))} | {exact(med(m, 'stage_file_bytes'))}"
          f" | {mib(med(m, 'stick_device_bytes'))} | {mib(med(m, 'stick_throttled_bytes'))} |")
print()
if "staged" in runs:
    s = runs["staged"]
    sm = lambda k: statistics.median(x[k] for x in s)
    print(f"staged, medians: the comparison (begin to plan) {sm('compare_s'):.2f} s; staging the data (plan to apply)"
          f" {sm('staging_s'):.2f} s, {sm('stage_file_bytes') / 1e6 / sm('staging_s'):.1f} MB/s onto the stick;"
          f" the apply as the daemon times it {sm('window_s'):.2f} s ({', '.join(x['copied'] for x in s)} copied,"
          f" {sm('stage_file_bytes') / 1e6 / sm('window_s'):.0f} MB/s); apply to completion (events)"
          f" {sm('apply_to_complete_s'):.2f} s; median poll interval {sm('poll_interval_s'):.3f} s")
    if "unbootable" in runs:
        print(f"unbootable, median: the comparison (begin to plan) {med('unbootable', 'compare_s'):.2f} s")
    for m in modes:
        if m == "staged":
            continue
        print(f"staged / {m}: resync time {med('staged', 'total_s') / med(m, 'total_s'):.2f},"
              f" window not a whole generation {med('staged', 'window_s') / med(m, 'window_s'):.3f}")
EOF
note "done in ${SECONDS} s"
