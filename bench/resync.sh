#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The resync benchmarks behind docs/PERFORMANCE.md ("Resync and verify"), on
# one device (a loop device over a file under /var/tmp when root, else the
# file), all in one run:
#   1. the clone's whole-disk digest scan (scan-bench: the daemon's disk
#      workers) against fio's raw O_DIRECT sequential read of the same device
#      and against the single-core speed of the keyed BLAKE2b it uses; goal:
#      scan >= 90% of min(read, cores x BLAKE2b);
#   2. a resync of an image where 1% of the 4 KiB blocks differ, scattered
#      (clone-origin resync --extent 4K and the default 64K): time and bytes on
#      the link, against rsync --inplace --no-whole-file between the same two
#      image files.
# Settings (environment): BENCH_BUILD (build-bench), BENCH_TMP (/var/tmp),
# BENCH_DISK (1G), BENCH_PORT (27400). Needs fio and rsync (installed with
# apt-get when missing and root).
set -euo pipefail
cd "$(dirname "$0")/.."

build=${BENCH_BUILD:-build-bench}
port=${BENCH_PORT:-27400}
tmp_root=${BENCH_TMP:-/var/tmp}
run_limit_s=600

die() { echo "bench: $*" >&2; exit 1; }
note() { echo "bench: $*" >&2; }
bounded() { timeout --kill-after=5 "$run_limit_s" "$@"; }
to_bytes() {
  local v=$1
  case $v in
    *K) echo $(( ${v%K} << 10 )) ;;
    *M) echo $(( ${v%M} << 20 )) ;;
    *G) echo $(( ${v%G} << 30 )) ;;
    *) echo $(( v )) ;;
  esac
}
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

now_ns() { date +%s%N; }
secs() { awk -v ns="$1" 'BEGIN { printf "%.2f", ns / 1e9 }'; }

# --- The images: a random source, a clone that equals it but for 1% --------
note "making a $((disk_bytes >> 20)) MiB random image and its copy in $scratch"
head -c "$disk_bytes" /dev/urandom >"$scratch/source.img"
cp "$scratch/source.img" "$scratch/clone.img"
target=$scratch/clone.img
if [[ $(id -u) == 0 ]] && loop_dev=$(losetup --find --show "$scratch/clone.img" 2>/dev/null); then
  target=$loop_dev
fi
note "target: $target"

# --- 1. Digest scan vs raw read vs BLAKE2b ----------------------------------
sync
echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
fio_out=$(bounded fio --name=read --filename="$target" --rw=read --bs=1M --direct=1 --ioengine=libaio \
  --iodepth=4 --size="$disk_bytes" --output-format=terse --terse-version=3 2>/dev/null)
read_kib_s=$(echo "$fio_out" | awk -F';' '{ print $7 }')   # read bandwidth, KiB/s
read_mib_s=$(awk -v k="$read_kib_s" 'BEGIN { printf "%.1f", k / 1024 }')
cores=$(nproc)
scan_out=$(bounded "$build/bench/scan-bench" "$target" 65536 4)
blake=$(echo "$scan_out" | awk -F= '/^blake2b_single_core_mib_s=/ { print $2 }')
scan=$(echo "$scan_out" | awk -F= '/^scan_mib_s=/ { print $2 }')
bound=$(awk -v r="$read_mib_s" -v b="$blake" -v c="$cores" 'BEGIN { x = b * c; printf "%.1f", (r < x ? r : x) }')
scan_ratio=$(awk -v s="$scan" -v b="$bound" 'BEGIN { printf "%.2f", s / b }')

# --- 2. The 1% delta: resync vs rsync --------------------------------------
python3 - "$scratch/source.img" "$disk_bytes" <<'EOF'
import random, sys
path, size = sys.argv[1], int(sys.argv[2])
blocks = size // 4096
rng = random.Random(2026)
picked = sorted(set(rng.randrange(blocks) for _ in range(blocks // 100)))
with open(path, "r+b") as f:
    for b in picked:
        f.seek(b * 4096)
        f.write(rng.randbytes(4096))
print(len(picked), file=open(path + ".changed", "w"))
EOF
changed_blocks=$(cat "$scratch/source.img.changed")
cp --sparse=never "$target" "$scratch/clone.before" 2>/dev/null || dd if="$target" of="$scratch/clone.before" bs=1M status=none

resync_run() {  # extent -> "seconds data_bytes wire_bytes_sent wire_bytes_received"
  local extent=$1 dir=$scratch/pair-$1
  dd if="$scratch/clone.before" of="$target" bs=1M conv=notrunc status=none
  port=$((port + 1))
  "$build/cloned/clonectl" pair --clone-dir "$dir/clone" --origin-dir "$dir/origin" --target "$target" \
    --listen "127.0.0.1:$port" >/dev/null
  "$build/cloned/cloned" --config "$dir/clone/cloned.toml" 2>"$dir/cloned.log" &
  cloned_pid=$!
  for _ in $(seq 200); do grep -q "cloned started" "$dir/cloned.log" && break; sleep 0.05; done
  local t0 out
  t0=$(now_ns)
  out=$(bounded "$build/origin/clone-origin" --config "$dir/origin/origin.toml" resync --source "$scratch/source.img" \
    --extent "$extent" 2>/dev/null) || die "resync failed (log: $dir/cloned.log)"
  local t=$(( $(now_ns) - t0 ))
  kill -TERM "$cloned_pid"; wait "$cloned_pid" || true; cloned_pid=""
  cmp -s "$scratch/source.img" "$target" || die "after the resync the clone differs from the source"
  field() { echo "$out" | sed -n "s/.*$1=\([0-9]*\).*/\1/p"; }
  echo "$(secs "$t") $(field data_bytes_sent) $(field wire_bytes_sent) $(field wire_bytes_received)"
}
read -r r4_s r4_data r4_wire r4_back <<<"$(resync_run 4K)"
read -r r64_s r64_data r64_wire r64_back <<<"$(resync_run 64K)"

cp "$scratch/clone.before" "$scratch/rsync-dest.img"
t0=$(now_ns)
rsync_out=$(bounded rsync --inplace --no-whole-file --stats "$scratch/source.img" "$scratch/rsync-dest.img")
rsync_s=$(secs $(( $(now_ns) - t0 )))
rsync_sent=$(echo "$rsync_out" | awk -F': ' '/^Total bytes sent/ { gsub(/,/, "", $2); print $2 + 0 }')
rsync_literal=$(echo "$rsync_out" | awk -F': ' '/^Literal data/ { gsub(/,/, "", $2); print $2 + 0 }')
rsync_back=$(echo "$rsync_out" | awk -F': ' '/^Total bytes received/ { gsub(/,/, "", $2); print $2 + 0 }')
cmp -s "$scratch/source.img" "$scratch/rsync-dest.img" || die "rsync did not produce the source"

pct() { awk -v a="$1" -v b="$disk_bytes" 'BEGIN { printf "%.2f%%", 100 * a / b }'; }
echo
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); target $target ($((disk_bytes >> 20)) MiB)"
echo
echo "| measure | figure |"
echo "|---|---|"
echo "| raw O_DIRECT sequential read (fio, 1 MiB, depth 4) | $read_mib_s MiB/s |"
echo "| keyed BLAKE2b, one core, 64 KiB extents | $blake MiB/s (x $cores cores = $(awk -v b="$blake" -v c="$cores" 'BEGIN { printf "%.1f", b * c }') MiB/s) |"
echo "| clone's digest scan (4 workers, 8 MiB requests, 8 in flight) | $scan MiB/s |"
echo "| scan / min(read, cores x BLAKE2b) | $scan_ratio (goal >= 0.90) |"
echo
echo "1% delta: $changed_blocks of $((disk_bytes / 4096)) 4 KiB blocks changed ($(pct $((changed_blocks * 4096))) of the image)"
echo
echo "| tool | time | data sent | all bytes to the copy | all bytes back (digests, checksums) |"
echo "|---|---|---|---|---|"
echo "| clone-origin resync --extent 4K | $r4_s s | $r4_data ($(pct "$r4_data")) | $r4_wire ($(pct "$r4_wire")) | $r4_back ($(pct "$r4_back")) |"
echo "| clone-origin resync --extent 64K | $r64_s s | $r64_data ($(pct "$r64_data")) | $r64_wire ($(pct "$r64_wire")) | $r64_back ($(pct "$r64_back")) |"
echo "| rsync --inplace --no-whole-file | $rsync_s s | $rsync_literal literal ($(pct "$rsync_literal")) | $rsync_sent ($(pct "$rsync_sent")) | $rsync_back ($(pct "$rsync_back")) |"
