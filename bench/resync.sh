#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The resync benchmarks behind docs/PERFORMANCE.md ("Resync and verify"), on
# one device (a loop device with direct I/O over a file under /var/tmp when
# root, else the file), all in one run:
#   1. the clone's whole-disk digest scan (scan-bench: the daemon's disk
#      workers) against fio's raw O_DIRECT sequential read of the same device
#      and against the single-core speed of the keyed BLAKE2b one message at
#      a time (libsodium), as issue 16 measured it; goal: scan >= 90% of
#      min(read, cores x BLAKE2b); also against all cores hashing cold data
#      at once, one at a time and in the SIMD lanes the scan uses (the
#      hash's real ceiling for a scan); and against the cores' ceiling: all
#      cores busy, each MiB costing the cold hash in lanes plus what fio's
#      read of it cost the machine (/proc/stat);
#   2. resyncs of a clone holding an older copy of the image, in two shapes of
#      change: (a) 0.5% of the 4 KiB blocks scattered plus an 8 MiB zeroed
#      region, (b) one contiguous region of about 2% of the image. Each with
#      the default settings (and --extent 4K and 1M for comparison): time and
#      bytes each way on the link, against rsync --inplace --no-whole-file
#      between the same two image files, and the default's traffic (both
#      ways) against issue 16's goal: <= 1.25 x the changed bytes + 0.3% of
#      the image. A third shape, (c) a clone holding unrelated data (a first
#      copy), shows what the second look costs where everything differs.
# Settings (environment): BENCH_BUILD (build-bench), BENCH_TMP (/var/tmp),
# BENCH_DISK (1G), BENCH_PORT (27400), BENCH_SHAPES (scattered region
# unrelated), BENCH_EXTENTS (default 4K 1M), BENCH_SCAN_REPS (3 rounds of
# figure 1). Needs fio and rsync (installed with
# apt-get when missing and root).
set -euo pipefail
cd "$(dirname "$0")/.."

build=${BENCH_BUILD:-build-bench}
port=${BENCH_PORT:-27400}
tmp_root=${BENCH_TMP:-/var/tmp}
run_limit_s=600
# shellcheck source=bench/lib.sh
source bench/lib.sh

disk_bytes=$(to_bytes "${BENCH_DISK:-1G}")

for tool in fio rsync python3; do
  if ! command -v "$tool" >/dev/null; then
    [[ $(id -u) == 0 ]] || die "$tool is missing (apt-get install $tool)"
    apt-get install -y -q --no-install-recommends "$tool" >/dev/null
  fi
done

[[ -d $build ]] || meson setup "$build" --buildtype=release >/dev/null
ninja -C "$build" cloned/cloned cloned/clonectl origin/clone-origin bench/scan-bench >/dev/null

scratch=$(mktemp -d "$tmp_root/cloned-resync-bench.XXXXXX")
loop_dev=""
cloned_pid=""
cleanup() {
  [[ -n $cloned_pid ]] && kill -KILL "$cloned_pid" 2>/dev/null
  wait 2>/dev/null
  if [[ -n $loop_dev ]]; then
    for _ in $(seq 50); do losetup -d "$loop_dev" 2>/dev/null && break; sleep 0.1; done
  fi
  rm -rf "$scratch"
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- The images: a random source, a clone that equals it but for 1% --------
note "making a $((disk_bytes >> 20)) MiB random image and its copy in $scratch"
head -c "$disk_bytes" /dev/urandom >"$scratch/source.img"
cp "$scratch/source.img" "$scratch/clone.img"
target=$scratch/clone.img
# Direct I/O on the loop device, as bench/run.sh: its reads then go to the
# file by DMA, as a real disk's do, not by copying from the page cache on the
# cores that also hash.
loop_note=""
if [[ $(id -u) == 0 ]]; then
  if loop_dev=$(losetup --find --show --direct-io=on "$scratch/clone.img" 2>/dev/null); then
    target=$loop_dev loop_note="loop device, direct I/O"
  elif loop_dev=$(losetup --find --show "$scratch/clone.img" 2>/dev/null); then
    target=$loop_dev loop_note="loop device, buffered (no direct I/O here)"
  fi
fi
note "target: $target ${loop_note}"

# --- 1. Digest scan vs raw read vs BLAKE2b ----------------------------------
# BENCH_SCAN_REPS rounds, fio then the scan, each from a cold page cache; the
# medians are reported (fio's read alone moves by a quarter between runs).
cores=$(nproc)
# Busy jiffies of all cores (user, nice, system, irq, softirq, steal), from
# /proc/stat: what reading costs the machine, the loop device's worker and
# the disk's interrupts included, not only the reading process.
busy_jiffies() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
# The cores' ceiling for any scan, MiB/s: every core busy, each MiB costing
# the cold hash's CPU ($1: all cores' cold MiB/s) plus what reading it cost
# the machine ($2: ms per MiB). A scan can go no faster where read and hash
# share the cores, however it is built.
cores_ceiling() { awk -v c="$cores" -v h="$1" -v r="$2" 'BEGIN { printf "%.1f", c / (c / h + r / 1000) }'; }
fio_runs=() scan_runs=() blake_runs=() cold_runs=() round_ratios=() read_cpu_runs=() cpu_ratios=()
lanes_blake_runs=() lanes_cold_runs=() lanes_ratios=()
for round in $(seq "${BENCH_SCAN_REPS:-3}"); do
  sync
  echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
  busy0=$(busy_jiffies)
  fio_out=$(bounded fio --name=read --filename="$target" --rw=read --bs=1M --direct=1 --ioengine=libaio \
    --iodepth=4 --size="$disk_bytes" --output-format=terse --terse-version=3 2>/dev/null)
  busy1=$(busy_jiffies)
  read_kib_s=$(echo "$fio_out" | awk -F';' '{ print $7 }')   # read bandwidth, KiB/s
  fio_runs+=("$(awk -v k="$read_kib_s" 'BEGIN { printf "%.1f", k / 1024 }')")
  # The machine's CPU per MiB read (ms), fio's start-up and exit included:
  # a little more than the reading itself.
  read_cpu_runs+=("$(awk -v b="$((busy1 - busy0))" -v hz="$(getconf CLK_TCK)" -v m="$((disk_bytes >> 20))" \
    'BEGIN { printf "%.3f", b / hz * 1000 / m }')")
  scan_out=$(bounded "$build/bench/scan-bench" "$target" 65536 4)
  blake_runs+=("$(echo "$scan_out" | awk -F= '/^blake2b_single_core_mib_s=/ { print $2 }')")
  scan_runs+=("$(echo "$scan_out" | awk -F= '/^scan_mib_s=/ { print $2 }')")
  cold_runs+=("$(echo "$scan_out" | awk -F= '/^blake2b_all_cores_cold_mib_s=/ { print $2 }')")
  lanes_blake_runs+=("$(echo "$scan_out" | awk -F= '/^blake2b_lanes_single_core_mib_s=/ { print $2 }')")
  lanes_cold_runs+=("$(echo "$scan_out" | awk -F= '/^blake2b_lanes_all_cores_cold_mib_s=/ { print $2 }')")
  lanes_name=$(echo "$scan_out" | awk -F= '/^lanes_name=/ { print $2 }')
  busy=$(echo "$scan_out" | awk -F= '/^scan_machine_busy=/ { print $2 }')
  round_bound=$(awk -v r="${fio_runs[-1]}" -v c="${cold_runs[-1]}" 'BEGIN { printf "%.1f", (r < c ? r : c) }')
  round_ratios+=("$(awk -v s="${scan_runs[-1]}" -v b="$round_bound" 'BEGIN { printf "%.2f", s / b }')")
  # Against the scan's own hash (in lanes) on cold data: its real bound.
  lanes_bound=$(awk -v r="${fio_runs[-1]}" -v c="${lanes_cold_runs[-1]}" 'BEGIN { printf "%.1f", (r < c ? r : c) }')
  lanes_ratios+=("$(awk -v s="${scan_runs[-1]}" -v b="$lanes_bound" 'BEGIN { printf "%.2f", s / b }')")
  round_ceiling=$(cores_ceiling "${lanes_cold_runs[-1]}" "${read_cpu_runs[-1]}")
  cpu_ratios+=("$(awk -v s="${scan_runs[-1]}" -v b="$round_ceiling" 'BEGIN { printf "%.2f", s / b }')")
  note "round $round: fio read ${fio_runs[-1]} MiB/s (machine CPU ${read_cpu_runs[-1]} ms/MiB)," \
    "scan ${scan_runs[-1]} MiB/s (cores busy $busy), BLAKE2b cold on all cores ${cold_runs[-1]} MiB/s" \
    "(in lanes ${lanes_cold_runs[-1]}): scan / min(read, cold) ${round_ratios[-1]}," \
    "scan / min(read, cold in lanes) ${lanes_ratios[-1]}, scan / the cores' ceiling ($round_ceiling MiB/s) ${cpu_ratios[-1]}" \
    "(load $(cut -d' ' -f1 /proc/loadavg))"
done
read_mib_s=$(median "${fio_runs[@]}")
blake=$(median "${blake_runs[@]}")
scan=$(median "${scan_runs[@]}")
cold=$(median "${cold_runs[@]}")
bound=$(awk -v r="$read_mib_s" -v b="$blake" -v c="$cores" 'BEGIN { x = b * c; printf "%.1f", (r < x ? r : x) }')
scan_ratio=$(awk -v s="$scan" -v b="$bound" 'BEGIN { printf "%.2f", s / b }')
cold_bound=$(awk -v r="$read_mib_s" -v c="$cold" 'BEGIN { printf "%.1f", (r < c ? r : c) }')
cold_ratio=$(awk -v s="$scan" -v b="$cold_bound" 'BEGIN { printf "%.2f", s / b }')
read_cpu=$(median "${read_cpu_runs[@]}")
lanes_blake=$(median "${lanes_blake_runs[@]}")
lanes_cold=$(median "${lanes_cold_runs[@]}")
cpu_ceiling=$(cores_ceiling "$lanes_cold" "$read_cpu")

# --- 2. Two shapes of change: resync vs rsync --------------------------------
cp --sparse=never "$target" "$scratch/clone.before" 2>/dev/null || dd if="$target" of="$scratch/clone.before" bs=1M status=none

# Writes source.img = clone.before changed in shape $1 (scattered | region |
# unrelated);
# prints the bytes that differ, counted in 4 KiB blocks.
make_source() {
  cp "$scratch/clone.before" "$scratch/source.img"
  python3 - "$scratch/source.img" "$scratch/clone.before" "$disk_bytes" "$1" <<'EOF'
import random, sys
path, before, size, shape = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
blocks = size // 4096
rng = random.Random(2026)
with open(path, "r+b") as f:
    if shape == "scattered":
        # 0.5% of the 4 KiB blocks, and an 8 MiB stretch zeroed (a deleted file, trimmed)
        for b in sorted(set(rng.randrange(blocks) for _ in range(blocks // 200))):
            f.seek(b * 4096)
            f.write(rng.randbytes(4096))
        f.seek(blocks // 3 * 4096)
        f.write(bytes(8 << 20))
    elif shape == "unrelated":
        # a first copy onto a disk that held something else: every block differs
        for at in range(0, size, 1 << 20):
            f.write(rng.randbytes(min(1 << 20, size - at)))
    else:
        # one region of ~2% of the image, 4 KiB-aligned but not on a 64 KiB boundary
        f.seek(blocks // 2 * 4096 + 12288)
        f.write(rng.randbytes(blocks // 48 * 4096))
changed = 0
with open(path, "rb") as a, open(before, "rb") as b:
    while True:
        x, y = a.read(1 << 20), b.read(1 << 20)
        if not x:
            break
        changed += sum(4096 for i in range(0, len(x), 4096) if x[i:i + 4096] != y[i:i + 4096])
print(changed)
EOF
}

resync_run() {  # extent (or "default") -> "seconds data_bytes wire_bytes_sent wire_bytes_received"
  local extent=$1 dir
  dir=$(mktemp -d "$scratch/pair.XXXXXX")
  dd if="$scratch/clone.before" of="$target" bs=1M conv=notrunc status=none
  port=$((port + 1))
  "$build/cloned/clonectl" pair --clone-dir "$dir/clone" --origin-dir "$dir/origin" --target "$target" \
    --listen "127.0.0.1:$port" >/dev/null
  # (stdout not inherited: this runs in a command substitution, whose pipe it would hold open)
  "$build/cloned/cloned" --config "$dir/clone/cloned.toml" >/dev/null 2>"$dir/cloned.log" &
  cloned_pid=$!
  wait_cloned_started "$dir/cloned.log" "$cloned_pid"
  local t0 out extent_args=()
  [[ $extent == default ]] || extent_args=(--extent "$extent")
  t0=$(now_ns)
  out=$(bounded "$build/origin/clone-origin" --config "$dir/origin/origin.toml" resync --source "$scratch/source.img" \
    "${extent_args[@]}" 2>/dev/null) || { kill -KILL "$cloned_pid"; die "resync failed (log: $dir/cloned.log)"; }
  local t=$(( $(now_ns) - t0 ))
  kill -TERM "$cloned_pid"; wait "$cloned_pid" || true; cloned_pid=""
  cmp -s "$scratch/source.img" "$target" || die "after the resync the clone differs from the source"
  field() { echo "$out" | sed -n "s/.*$1=\([0-9]*\).*/\1/p"; }
  echo "$(secs "$t") $(field data_bytes_sent) $(field wire_bytes_sent) $(field wire_bytes_received)"
}

rsync_run() {  # -> "seconds literal_bytes bytes_sent bytes_received"
  cp "$scratch/clone.before" "$scratch/rsync-dest.img"
  local t0 out
  t0=$(now_ns)
  out=$(bounded rsync --inplace --no-whole-file --stats "$scratch/source.img" "$scratch/rsync-dest.img")
  local t=$(( $(now_ns) - t0 ))
  cmp -s "$scratch/source.img" "$scratch/rsync-dest.img" || die "rsync did not produce the source"
  stat() { echo "$out" | awk -F': ' -v k="$1" '$1 == k { gsub(/,/, "", $2); print $2 + 0 }'; }
  echo "$(secs "$t") $(stat "Literal data") $(stat "Total bytes sent") $(stat "Total bytes received")"
}

pct() { awk -v a="$1" -v b="$disk_bytes" 'BEGIN { printf "%.2f%%", 100 * a / b }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
shape_report=""
for shape in ${BENCH_SHAPES:-scattered region unrelated}; do
  changed=$(make_source "$shape") || exit 1
  goal=$(awk -v c="$changed" -v d="$disk_bytes" 'BEGIN { printf "%.0f", 1.25 * c + 0.003 * d }')
  rows=""
  for extent in ${BENCH_EXTENTS:-default 4K 1M}; do
    run=$(resync_run "$extent") || exit 1
    read -r r_s r_data r_wire r_back <<<"$run"
    both=$((r_wire + r_back))
    verdict=$(awk -v b="$both" -v g="$goal" 'BEGIN { printf "%.2f (%s)", b / g, b <= g ? "met" : "MISSED" }')
    label="(default)"; [[ $extent == default ]] || label="--extent $extent"
    rows+="| clone-origin resync $label | $r_s s | $r_data ($(pct "$r_data"))"
    rows+=" | $r_wire ($(pct "$r_wire")) | $r_back ($(pct "$r_back")) | $(ratio "$both" "$changed") | $verdict |"$'\n'
  done
  run=$(rsync_run) || exit 1
  read -r y_s y_lit y_sent y_back <<<"$run"
  y_both=$((y_sent + y_back))
  rows+="| rsync --inplace --no-whole-file | $y_s s | $y_lit literal ($(pct "$y_lit")) | $y_sent ($(pct "$y_sent"))"
  rows+=" | $y_back ($(pct "$y_back")) | $(ratio "$y_both" "$changed") | $(ratio "$y_both" "$goal") |"$'\n'
  shape_report+=$'\n'"shape $shape: $changed bytes changed ($(pct "$changed") of the image); goal: both ways <="
  shape_report+=" 1.25 x changed + 0.3% of the image = $goal bytes"$'\n\n'
  shape_report+="| run | time | data sent | all bytes to the copy | all bytes back | both ways / changed | both ways / goal |"
  shape_report+=$'\n'"|---|---|---|---|---|---|---|"$'\n'"$rows"
done

echo
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); target $target ${loop_note:+($loop_note) }($((disk_bytes >> 20)) MiB)"
echo
echo "(medians of ${#scan_runs[@]} interleaved rounds: fio ${fio_runs[*]}; scan ${scan_runs[*]} MiB/s)"
echo
echo "| measure | figure |"
echo "|---|---|"
echo "| raw O_DIRECT sequential read (fio, 1 MiB, depth 4) | $read_mib_s MiB/s |"
echo "| keyed BLAKE2b, one core, 64 KiB extents, one at a time (libsodium) | $blake MiB/s (x $cores cores = $(awk -v b="$blake" -v c="$cores" 'BEGIN { printf "%.1f", b * c }') MiB/s) |"
echo "| the same in $lanes_name, as the scan hashes | $lanes_blake MiB/s ($(awk -v a="$lanes_blake" -v b="$blake" 'BEGIN { printf "%.2f", a / b }') x one at a time) |"
echo "| clone's digest scan (4 workers, 8 MiB requests, 8 in flight) | $scan MiB/s |"
echo "| keyed BLAKE2b, all $cores cores at once over 512 MiB (cold data), one at a time | $cold MiB/s |"
echo "| the same in lanes | $lanes_cold MiB/s |"
echo "| scan / min(read, cores x BLAKE2b one at a time) | $scan_ratio (goal >= 0.90) |"
echo "| scan / min(read, all cores' BLAKE2b on cold data, one at a time) | $cold_ratio |"
echo "| the same, round by round (each scan against its own round's fio) | ${round_ratios[*]}: median $(median "${round_ratios[@]}") (goal >= 0.90) |"
echo "| scan / min(read, all cores' BLAKE2b in lanes on cold data), round by round | ${lanes_ratios[*]}: median $(median "${lanes_ratios[@]}") |"
echo "| the machine's CPU per MiB of fio's read (all cores, from /proc/stat) | $read_cpu ms |"
echo "| the cores' ceiling: $cores / ($cores / cold BLAKE2b in lanes + the read's CPU) | $cpu_ceiling MiB/s |"
echo "| scan / the cores' ceiling, round by round | ${cpu_ratios[*]}: median $(median "${cpu_ratios[@]}") |"
echo "$shape_report"
