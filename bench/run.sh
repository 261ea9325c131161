#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The benchmarks behind docs/PERFORMANCE.md. On a file target in a scratch
# directory under /var/tmp and then (as root) on a loop device over that same
# file, it measures, each BENCH_REPS times, interleaved, and reports medians:
#   1. end-to-end replication of 1 MiB sequential records (clone-origin ->
#      cloned -> target) against (a) stream-bench, the same crypto with no
#      disk, (b) fio sequential O_DIRECT writes, (c) nc | dd oflag=direct;
#      and clone-origin's CPU in those runs against (a)'s sender's (issue 16,
#      item 5);
#   2. 4 KiB random records with a barrier every 32 against fio doing the same
#      (randwrite, fdatasync every 32 writes, 32 in flight), and against fio
#      draining its writes before each fdatasync (the order cloned keeps);
#      and the same with the original and the clone each on a CPU of its
#      own (taskset: the real pair is two laptops; here they share two vCPUs),
#      with the original's generator and then from a spool it captured
#      beforehand (the generator off the clock: cloned's own pace);
#   3. the same 4 KiB run with every state-store commit slowed by 20 ms;
#   4. cloned's peak RSS (VmHWM) in every run;
#   5. by record size (BENCH_SIZES), random records with a barrier every 32,
#      sent to a cloned in service (it has taken BENCH_WARM_BYTES of the same
#      records first, off the clock and off its CPU figure; what a daemon just
#      started spends on those is a row of its own): cloned against fio doing
#      the same (wall clock), and against fio draining its 32 writes before
#      each fdatasync (the order cloned keeps), and cloned's CPU per record
#      against a bare receiver's (stream-bench recv TARGET: decrypt,
#      re-hash, one O_DIRECT pwrite per record, no fsync); and the floor, the
#      CPU per record of the bare sender and receiver without a disk plus
#      fio's own CPU per write, with the rate all cores would reach at it,
#      and the no-disk receiver's CPU per record against the bare receiver's
#      (the least CPU ratio any receiver that decrypts and re-hashes reaches);
#      at each size in between, cloned's CPU per record on the straight line
#      through its smallest and largest size's, and cloned against that line;
#      and cloned taking the same records from a spool the original captured
#      beforehand (clone-origin replay: its generator off the clock).
# Settings (environment): BENCH_BUILD (build-bench), BENCH_TMP (/var/tmp),
# BENCH_DISK (1G), BENCH_SEQ_BYTES (1G), BENCH_RAND_BYTES (256M),
# BENCH_SIZES ("4K 16K 64K 256K 1M"), BENCH_SIZE_BYTES (256M, per size),
# BENCH_WARM_BYTES (32M: figure 5's cloned first takes this much of the same
# records, off the clock and off its CPU figure; 0 for none),
# BENCH_REPS (3), BENCH_PORT (first TCP port on 127.0.0.1, 27300),
# BENCH_TARGETS ("file loop"), BENCH_FIGURES ("seq rand size").
set -euo pipefail
cd "$(dirname "$0")/.."

build=${BENCH_BUILD:-build-bench}
reps=${BENCH_REPS:-3}
port=${BENCH_PORT:-27300}
targets=${BENCH_TARGETS:-file loop}
# cloned keeps up to io_depth_max = 16 x [apply] writer_threads (4) = 64 writes
# submitted (in AIO batches since the disk workers batch), and with a barrier
# every 32 records never more than 32: the fio baselines get that depth.
io_depth=32
seq_epoch_records=64     # 64 MiB between barriers for the 1 MiB stream
rand_epoch_records=32    # the 4 KiB pattern: a barrier every 32 records
slow_commit_ms=20

# Every run is bounded: a stuck one is killed and the bench fails.
run_limit_s=300
# shellcheck source=bench/lib.sh
source bench/lib.sh

disk_bytes=$(to_bytes "${BENCH_DISK:-1G}")
seq_bytes=$(to_bytes "${BENCH_SEQ_BYTES:-1G}")
rand_bytes=$(to_bytes "${BENCH_RAND_BYTES:-256M}")
size_bytes=$(to_bytes "${BENCH_SIZE_BYTES:-256M}")
warm_bytes=$(to_bytes "${BENCH_WARM_BYTES:-32M}")
sizes=${BENCH_SIZES:-4K 16K 64K 256K 1M}
figures=${BENCH_FIGURES:-seq rand size}
(( seq_bytes % (1 << 20) == 0 && seq_bytes <= disk_bytes )) || die "BENCH_SEQ_BYTES must be whole MiB, at most BENCH_DISK"
(( rand_bytes % (4096 * rand_epoch_records) == 0 )) || die "BENCH_RAND_BYTES must be a multiple of 128 KiB"

cloned_bin=$build/cloned/cloned
clonectl_bin=$build/cloned/clonectl
origin_bin=$build/origin/clone-origin
stream_bin=$build/bench/stream-bench

# Release, as the other benches: the figures in docs/PERFORMANCE.md are of
# -O3 with the asserts on (b_ndebug=false in meson.build). A build directory
# that exists is used as it is; its build type is printed with the machine.
build_binaries() {
  [[ -d $build ]] || meson setup "$build" --buildtype=release >/dev/null
  ninja -C "$build" cloned/cloned cloned/clonectl origin/clone-origin bench/stream-bench >/dev/null
}

# --- Scratch space, and everything that must be undone on any exit ---------
scratch=""
source_img=""
loop_dev=""
cloned_pid=""
helper_pids=()

detach_loop() {
  [[ -n $loop_dev ]] || return 0
  for _ in $(seq 50); do  # the kernel may hold the device a moment after close
    losetup -d "$loop_dev" 2>/dev/null && break
    sleep 0.1
  done
  losetup "$loop_dev" >/dev/null 2>&1 && note "could not detach $loop_dev; run: losetup -d $loop_dev"
  loop_dev=""
}

cleanup() {
  [[ -n $cloned_pid ]] && kill -KILL "$cloned_pid" 2>/dev/null
  for p in "${helper_pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  detach_loop
  [[ -n $scratch ]] && rm -rf "$scratch"
  [[ -n $source_img ]] && rm -f "$source_img" "$source_img".*.spool
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- Small helpers -----------------------------------------------------------
mib_per_s() { awk -v b="$1" -v ns="$2" 'BEGIN { printf "%.1f", b / 1048576 / (ns / 1e9) }'; }
max_of() { printf '%s\n' "$@" | sort -g | tail -1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
next_port() { port=$((port + 1)); }

# Waits (5 s at most) until something listens on 127.0.0.1:$1 over IPv4.
# Reading /proc avoids connecting, which would use up a one-shot listener.
wait_listen() {
  local hex
  hex=$(printf ':%04X' "$1")
  for _ in $(seq 100); do
    awk -v p="$hex" '$2 ~ p"$" && $4 == "0A" { found = 1 } END { exit !found }' /proc/net/tcp && return 0
    sleep 0.05
  done
  die "nothing listens on 127.0.0.1:$1"
}

# Writes the whole target once, so that no run pays for block allocation.
prefill() {
  dd if=/dev/zero of="$1" bs=1M count=$((disk_bytes >> 20)) oflag=direct conv=notrunc,fdatasync status=none
}

# Measurements leave their figure in $R rather than printing it: a command
# substitution would run them in a subshell, and the processes they start
# (and the port counter) must stay known to this shell for the cleanup.
R=""

# --- (a) the bare encrypted, digested stream ---------------------------------
# The receiver's own clock: from accept to the end of the stream. The
# sender's CPU seconds go to $scratch/stream_send_cpu: the bare sender that
# issue 16's item 5 holds clone-origin against.
run_stream() {
  local out=$scratch/stream.out
  next_port
  "$stream_bin" recv "$port" >"$out" &
  helper_pids=($!)
  wait_listen "$port"
  bounded "$stream_bin" send 127.0.0.1 "$port" "$seq_bytes" \
    | sed -n 's/.*cpu_s=\([0-9.]*\).*/\1/p' >"$scratch/stream_send_cpu" || die "stream-bench send failed"
  wait "${helper_pids[0]}" || die "stream-bench recv failed"
  helper_pids=()
  R=$(sed -n 's/.*mib_per_s=\([0-9.]*\).*/\1/p' "$out")
}

# --- fio: its own bandwidth figure (its ~0.3 s start-up is not I/O) ---------
# Terse v3: field 48 is the write bandwidth in KiB/s, 50 the write runtime in
# ms, 88 and 89 the user and system CPU in % of the runtime (group-reported).
# The CPU seconds of the I/O itself go to $scratch/fio_cpu.
run_fio() {
  bounded fio --name=bench --filename="$1" --output-format=terse --terse-version=3 --group_reporting "${@:2}" \
    | awk -F';' -v cpu_file="$scratch/fio_cpu" \
      '{ printf "%.1f", $48 / 1024; printf "%.4f\n", ($88 + $89) / 100 * $50 / 1000 >cpu_file }'
}

fio_seq() {
  R=$(run_fio "$1" --rw=write --bs=1M --direct=1 --ioengine=psync --size="$seq_bytes" --end_fsync=1) || die "fio failed on $1"
}

# The same pattern as the 4 KiB workload: uniform offsets aligned to the
# logical block (512 bytes on both targets), with repeats, a data sync every
# 32 writes, 4 writes in flight from one ordered stream (see PERFORMANCE.md).
fio_rand() {
  R=$(run_fio "$1" --rw=randwrite --bs="${2:-4k}" --blockalign=512 --norandommap --randrepeat=0 --fdatasync=32 \
    --direct=1 --ioengine=libaio --iodepth="$io_depth" --size="$disk_bytes" --io_size="${3:-$rand_bytes}" \
    "${@:4}") || die "fio failed on $1"
}

# fio_rand with write-order fidelity, as cloned must keep it (invariant 5):
# each batch of 32 writes is submitted together and all of it completes
# before the fdatasync, and the next batch only after that. Plain fio_rand
# keeps writing while its fdatasync runs.
fio_rand_drained() {
  fio_rand "$1" "$2" "$3" --iodepth_batch_submit="$rand_epoch_records" --iodepth_batch_complete_min="$rand_epoch_records"
}

# The bare pair of the size figures: stream-bench sending records of $1 at
# the workload's random offsets, the receiver writing each one to $2 with one
# O_DIRECT pwrite, or with no $2 discarding it. R = the receiver's MiB/s; the
# CPU seconds of each side go to $scratch/bare_send_cpu and bare_recv_cpu.
run_bare() {
  local record=$1 target=${2:-} out=$scratch/bare.out
  next_port
  "$stream_bin" recv "$port" ${target:+"$target"} >"$out" &
  helper_pids=($!)
  wait_listen "$port"
  bounded "$stream_bin" send 127.0.0.1 "$port" "$size_bytes" "$record" "$disk_bytes" \
    | sed -n 's/.*cpu_s=\([0-9.]*\).*/\1/p' >"$scratch/bare_send_cpu" || die "stream-bench send failed"
  wait "${helper_pids[0]}" || die "stream-bench recv failed"
  helper_pids=()
  R=$(sed -n 's/.*mib_per_s=\([0-9.]*\).*/\1/p' "$out")
  sed -n 's/.*cpu_s=\([0-9.]*\).*/\1/p' "$out" >"$scratch/bare_recv_cpu"
}

# --- (c) an unencrypted stream to the disk -----------------------------------
# nc -l | dd, with a named pipe for the | so that both pids are known (a
# listener nobody connects to would otherwise outlive a failed run). Timed
# from the sender's start to the sink's exit; conv=notrunc keeps the target's
# blocks allocated, conv=fdatasync ends with a flush as every run here does.
run_nc_dd() {
  local target=$1 mib=$((seq_bytes >> 20)) fifo=$scratch/nc.fifo
  next_port
  rm -f "$fifo"
  mkfifo "$fifo"
  nc -l 127.0.0.1 "$port" >"$fifo" &
  helper_pids=($!)
  dd if="$fifo" of="$target" bs=1M oflag=direct iflag=fullblock conv=notrunc,fdatasync status=none &
  helper_pids+=($!)
  wait_listen "$port"
  local t0
  t0=$(now_ns)
  dd if=/dev/zero bs=1M count="$mib" status=none | bounded nc -N 127.0.0.1 "$port" || die "nc to 127.0.0.1:$port failed"
  wait "${helper_pids[0]}" || die "nc -l failed"
  wait "${helper_pids[1]}" || die "dd to $target failed"
  helper_pids=()
  R=$(mib_per_s "$seq_bytes" $(($(now_ns) - t0)))
}

# --- cloned and clone-origin -------------------------------------------------
# A fresh pair in a fresh directory per run, so that every run starts from the same state and
# cloned's peak RSS belongs to that run alone. Extra lines go to cloned.toml.
make_pair() {
  local dir=$1 target=$2 extra=$3
  rm -rf "$dir"
  mkdir -p "$dir"
  next_port
  "$clonectl_bin" pair --clone-dir "$dir/clone" --origin-dir "$dir/origin" --target "$target" \
    --listen "127.0.0.1:$port" >/dev/null || die "clonectl pair failed for $target"
  [[ -z $extra ]] || printf '\n%s\n' "$extra" >>"$dir/clone/cloned.toml"
}

# Command prefixes for cloned and clone-origin: empty (both share every core,
# as everywhere else here) or, for the "own CPU" row of figure 2, taskset
# pinning each to a CPU of its own, the nearest this one machine comes to the
# real pair's two laptops.
cloned_prefix=()
origin_prefix=()

start_cloned() {
  local dir=$1
  "${cloned_prefix[@]}" "$cloned_bin" --config "$dir/clone/cloned.toml" 2>"$dir/cloned.log" &
  cloned_pid=$!
  wait_cloned_started "$dir/cloned.log" "$cloned_pid"
}

# cloned's CPU seconds so far (user + system, every thread).
cloned_cpu_now() {
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$cloned_pid/stat"
}

# Reads the peak RSS (KiB) and CPU time of cloned (since the warm-up, if
# there was one: $dir/warm_cpu_s), then stops it cleanly.
stop_cloned() {
  local dir=$1
  awk '/^VmHWM:/ { print $2 }' "/proc/$cloned_pid/status" >"$dir/hwm_kib"
  awk -v now="$(cloned_cpu_now)" -v warm="$(cat "$dir/warm_cpu_s" 2>/dev/null || echo 0)" \
    'BEGIN { printf "%.2f", now - warm }' >"$dir/cpu_s"
  kill -TERM "$cloned_pid"
  wait "$cloned_pid" || die "cloned did not stop cleanly (log: $dir/cloned.log)"
  cloned_pid=""
}

# One replication run: R = MiB/s over clone-origin's wall time (it returns once
# every record is durable on the clone); hwm_kib and cpu_s are left in $dir,
# and clone-origin's own CPU seconds (user + system) in origin_cpu_s. With
# WARM=BYTES (figure 5), cloned first takes that much of the same workload in
# a session of its own, off the clock: cpu_s is then cloned's CPU from the
# measured session's start, its cost per record in service, and warm_cpu_s
# what it spent before (starting, and its first BYTES: the one-time costs, such
# as first touching the huge pages its frames live on).
run_replication() {
  local target=$1 name=$2 bytes=$3 extra=$4
  shift 4
  local dir=$scratch/$name
  make_pair "$dir" "$target" "$extra"
  start_cloned "$dir"
  if [[ ${WARM:-0} -gt 0 ]]; then
    bounded "$origin_bin" --config "$dir/origin/origin.toml" workload --source "$source_img" --bytes "$WARM" "$@" \
      >"$dir/warm.log" 2>&1 || { cat "$dir/warm.log" >&2; die "clone-origin warm-up failed ($name)"; }
    cloned_cpu_now >"$dir/warm_cpu_s"
  fi
  local t0 elapsed
  t0=$(now_ns)
  bounded /usr/bin/time -f '%U %S' -o "$dir/origin_time" \
    "${origin_prefix[@]}" "$origin_bin" --config "$dir/origin/origin.toml" workload --source "$source_img" --bytes "$bytes" "$@" \
    >"$dir/origin.log" 2>&1 || { cat "$dir/origin.log" >&2; die "clone-origin failed ($name)"; }
  elapsed=$(($(now_ns) - t0))
  awk '{ printf "%.2f", $1 + $2 }' "$dir/origin_time" >"$dir/origin_cpu_s"
  stop_cloned "$dir"
  R=$(mib_per_s "$bytes" "$elapsed")
}

e2e_seq() {
  run_replication "$1" "$2" "$seq_bytes" "" --seed "$3" --write-min 1M --write-max 1M \
    --pattern sequential --epoch-records "$seq_epoch_records"
}

e2e_rand() {
  run_replication "$1" "$2" "$rand_bytes" "$4" --seed "$3" --write-min 4K --write-max 4K \
    --pattern random --epoch-records "$rand_epoch_records"
}

e2e_size() {
  WARM=$warm_bytes run_replication "$1" "$2" "$size_bytes" "" --seed "$3" --write-min "$4" --write-max "$4" \
    --pattern random --epoch-records "$rand_epoch_records"
}

# The same records from a spool: clone-origin captures them first (not
# timed), then replays them; R is over replay's own clock, which starts once
# it has validated the spool. The original's generator and its own image
# writes are then off the clock (its sealing, and reading the spool, are not).
e2e_spool() {
  local target=$1 name=$2 seed=$3 size=$4 bytes=${5:-$size_bytes}
  local dir=$scratch/$name
  make_pair "$dir" "$target" ""
  # In RAM beside the original's image; cleanup removes it on any exit.
  local spool=$source_img.$name.spool
  bounded "$origin_bin" --config "$dir/origin/origin.toml" capture --source "$source_img" --spool "$spool" \
    --seed "$seed" --bytes "$bytes" --write-min "$size" --write-max "$size" --pattern random \
    --epoch-records "$rand_epoch_records" >"$dir/capture.log" 2>&1 ||
    { cat "$dir/capture.log" >&2; die "clone-origin capture failed ($name)"; }
  start_cloned "$dir"
  bounded "${origin_prefix[@]}" "$origin_bin" --config "$dir/origin/origin.toml" replay --spool "$spool" >"$dir/origin.log" 2>&1 ||
    { cat "$dir/origin.log" >&2; die "clone-origin replay failed ($name)"; }
  rm -f "$spool"
  stop_cloned "$dir"
  local s
  s=$(sed -n 's/^replay done: .* in \([0-9.]*\) s .*/\1/p' "$dir/origin.log")
  [[ -n $s ]] || die "no time in replay's output ($dir/origin.log)"
  R=$(mib_per_s "$bytes" "$(awk -v s="$s" 'BEGIN { printf "%.0f", s * 1e9 }')")
}

# --- Results -----------------------------------------------------------------
rows=()
# row TARGET FIGURE VALUE UNIT [BASELINE_NAME BASELINE_VALUE GOAL], kept as
# one string with unit separators (figure names contain "|").
row() { rows+=("$(printf '%s\x1f' "$@")"); }

# The 1-minute load average goes with every run: the machine may be shared.
print_run() { note "$(printf '%-5s run %s  %-58s %-14s load %s' "$1" "$3" "$2" "$4" "$(cut -d' ' -f1 /proc/loadavg)")"; }

# Samples of every run, keyed "target:figure"; med and peak_mib sum them up.
# A sample list is space-separated numbers: splitting it is the point.
declare -A samples
add_sample() { samples[$1]="${samples[$1]:-} $2"; }
# shellcheck disable=SC2086
med() { median ${samples[$1]}; }
# shellcheck disable=SC2086
peak_mib() { awk -v k="$(max_of ${samples[$1]})" 'BEGIN { printf "%.1f", k / 1024 }'; }

# Records $R under "target:figure" and says it.
keep() {
  add_sample "$1:$2" "$R"
  print_run "$1" "$3" "$4" "$R MiB/s"
}

# Also keeps the run's cloned peak RSS and CPU time.
keep_replication() {
  local dir=$scratch/$5
  add_sample "$1:$2_hwm" "$(cat "$dir/hwm_kib")"
  add_sample "$1:$2_cpu" "$(cat "$dir/cpu_s")"
  keep "$1" "$2" "$3 (RSS $(cat "$dir/hwm_kib") KiB, CPU $(cat "$dir/cpu_s") s)" "$4"
}

bench_seq() {
  local t=$1 target=$2 rep=$3
  local cpu
  run_stream
  cpu=$(cat "$scratch/stream_send_cpu")
  add_sample "$t:stream_send_cpu" "$cpu"
  keep "$t" stream "bare stream (no disk, sender CPU $cpu s)" "$rep"
  fio_seq "$target";                        keep "$t" fio_seq "fio seq 1M O_DIRECT" "$rep"
  run_nc_dd "$target";                      keep "$t" nc_dd "nc | dd oflag=direct" "$rep"
  e2e_seq "$target" "$t-seq-$rep" "$rep"
  cpu=$(cat "$scratch/$t-seq-$rep/origin_cpu_s")
  add_sample "$t:e2e_origin_cpu" "$cpu"
  keep_replication "$t" e2e "end to end 1M sequential (clone-origin CPU $cpu s)" "$rep" "$t-seq-$rep"
}

# Two CPUs to give the original and the clone one each (taskset, util-linux).
own_cpus() { [[ $(nproc) -ge 2 ]] && command -v taskset >/dev/null; }

bench_rand() {
  local t=$1 target=$2 rep=$3
  local slow_config
  slow_config=$(printf '[apply]\nstore_commit_delay_ms = %s' "$slow_commit_ms")
  fio_rand "$target";                                     keep "$t" fio_rand "fio 4K randwrite" "$rep"
  fio_rand_drained "$target" 4k "$rand_bytes";            keep "$t" fio_rand_drained "fio 4K randwrite, drained" "$rep"
  e2e_rand "$target" "$t-rand-$rep" "$rep" "";            keep_replication "$t" rand "cloned 4K random" "$rep" "$t-rand-$rep"
  e2e_rand "$target" "$t-slow-$rep" "$rep" "$slow_config"; keep_replication "$t" slow "cloned 4K random, slow store" "$rep" "$t-slow-$rep"
  if own_cpus; then
    cloned_prefix=(taskset -c 1)
    origin_prefix=(taskset -c 0)
    e2e_rand "$target" "$t-own-$rep" "$rep" ""; keep_replication "$t" own "cloned 4K random, original on its own CPU" "$rep" "$t-own-$rep"
    e2e_spool "$target" "$t-ownspool-$rep" "$rep" 4K "$rand_bytes"
    keep_replication "$t" own_spool "cloned 4K random, own CPU, from a spool" "$rep" "$t-ownspool-$rep"
    cloned_prefix=()
    origin_prefix=()
  fi
}

# Figure 5, one size: fio, the bare receiver, cloned. CPU per record in µs.
bench_size() {
  local t=$1 target=$2 rep=$3 size=$4 records
  records=$(($(to_bytes "$size") > 0 ? size_bytes / $(to_bytes "$size") : 1))
  fio_rand "$target" "$size" "$size_bytes";  keep "$t" "fio_$size" "fio $size randwrite" "$rep"
  local fio_cpu
  fio_cpu=$(cat "$scratch/fio_cpu")
  run_bare "$size"
  # The floor: the CPU any pair speaking this protocol spends per record on
  # this machine (the bare sender's and receiver's crypto, the socket, and
  # the kernel's side of the disk write as fio pays it), in µs.
  local pair_cpu floor_us
  # The no-disk receiver's CPU alone: what any receiver spends per record on
  # the crypto it must do (decrypt, re-hash) and the socket, before writing.
  add_sample "$t:nodisk_us_$size" "$(awk -v c="$(cat "$scratch/bare_recv_cpu")" -v n="$records" 'BEGIN { printf "%.1f", c * 1e6 / n }')"
  pair_cpu=$(awk -v a="$(cat "$scratch/bare_send_cpu")" -v b="$(cat "$scratch/bare_recv_cpu")" \
    'BEGIN { printf "%.3f", a + b }')
  floor_us=$(awk -v p="$pair_cpu" -v f="$fio_cpu" -v n="$records" 'BEGIN { printf "%.1f", (p + f) * 1e6 / n }')
  add_sample "$t:floor_us_$size" "$floor_us"
  print_run "$t" "floor $size: bare pair $pair_cpu s + fio $fio_cpu s of CPU" "$rep" "$floor_us us/rec"
  fio_rand_drained "$target" "$size" "$size_bytes";  keep "$t" "fiod_$size" "fio $size randwrite, drained" "$rep"
  run_bare "$size" "$target"
  add_sample "$t:bare_us_$size" "$(awk -v c="$(cat "$scratch/bare_recv_cpu")" -v n="$records" 'BEGIN { printf "%.1f", c * 1e6 / n }')"
  keep "$t" "bare_$size" "bare receiver $size (CPU $(cat "$scratch/bare_recv_cpu") s)" "$rep"
  e2e_size "$target" "$t-size-$size-$rep" "$rep" "$size"
  add_sample "$t:cloned_us_$size" "$(awk -v c="$(cat "$scratch/$t-size-$size-$rep/cpu_s")" -v n="$records" 'BEGIN { printf "%.1f", c * 1e6 / n }')"
  if ((warm_bytes > 0)); then
    # What the same cloned spent starting and on its first warm_bytes: the
    # CPU per record a daemon just started pays, its one-time costs included.
    add_sample "$t:cold_us_$size" "$(awk -v c="$(cat "$scratch/$t-size-$size-$rep/warm_cpu_s")" \
      -v n="$((warm_bytes / $(to_bytes "$size")))" 'BEGIN { printf "%.1f", c * 1e6 / (n > 0 ? n : 1) }')"
  fi
  keep_replication "$t" "size_$size" "cloned $size random" "$rep" "$t-size-$size-$rep"
  e2e_spool "$target" "$t-spool-$size-$rep" "$rep" "$size"
  keep_replication "$t" "spool_$size" "cloned $size random, from a spool" "$rep" "$t-spool-$size-$rep"
}

# Interpolates, linearly in log2(record size), between the ratios at the
# smallest and the largest size: the bound no size in between may fall under.
interpolated() {
  awk -v s="$(to_bytes "$1")" -v lo="$(to_bytes "$2")" -v hi="$(to_bytes "$3")" -v a="$4" -v b="$5" \
    'BEGIN { f = (log(s) - log(lo)) / (log(hi) - log(lo)); printf "%.2f", a + f * (b - a) }'
}

# A straight line in the record size itself through two points: the CPU per
# record of a receiver that pays a fixed cost per record plus a fixed cost
# per byte, fitted to the smallest and the largest size.
affine() {
  awk -v s="$(to_bytes "$1")" -v lo="$(to_bytes "$2")" -v hi="$(to_bytes "$3")" -v a="$4" -v b="$5" \
    'BEGIN { printf "%.1f", a + (s - lo) * (b - a) / (hi - lo) }'
}

size_rows() {
  local t=$1 size first last cloned fio_s cl_us bare_us
  first=${sizes%% *}; last=${sizes##* }
  local r_first r_last c_first c_last
  r_first=$(ratio "$(med "$t:size_${first}")" "$(med "$t:fio_${first}")")
  r_last=$(ratio "$(med "$t:size_${last}")" "$(med "$t:fio_${last}")")
  c_first=$(ratio "$(med "$t:cloned_us_${first}")" "$(med "$t:bare_us_${first}")")
  c_last=$(ratio "$(med "$t:cloned_us_${last}")" "$(med "$t:bare_us_${last}")")
  for size in $sizes; do
    cloned=$(med "$t:size_$size"); fio_s=$(med "$t:fio_$size")
    cl_us=$(med "$t:cloned_us_$size"); bare_us=$(med "$t:bare_us_$size")
    local goal_wall="" goal_cpu=""
    if [[ $size == "$first" ]]; then goal_wall=">= 0.80"; goal_cpu="<= 1.50"; fi
    if [[ $size != "$first" && $size != "$last" ]]; then
      goal_wall=">= $(interpolated "$size" "$first" "$last" "$r_first" "$r_last")"
      goal_cpu="<= $(interpolated "$size" "$first" "$last" "$c_first" "$c_last")"
    fi
    row "$t" "5. fio $size randwrite, qd $io_depth" "$fio_s" "MiB/s"
    row "$t" "   bare receiver $size (one pwrite each)" "$(med "$t:bare_$size")" "MiB/s"
    row "$t" "   fio $size, drained before each fdatasync" "$(med "$t:fiod_$size")" "MiB/s"
    row "$t" "   cloned $size random, barrier/32" "$cloned" "MiB/s" "fio $size" "$(ratio "$cloned" "$fio_s")" "$goal_wall"
    row "$t" "   cloned against the drained fio" "$cloned" "MiB/s" "drained" "$(ratio "$cloned" "$(med "$t:fiod_$size")")"
    local spool
    spool=$(med "$t:spool_$size")
    row "$t" "   cloned from a spool (generator paid)" "$spool" "MiB/s" "fio $size" "$(ratio "$spool" "$fio_s")"
    row "$t" "   CPU per record, cloned" "$cl_us" "us" "bare $bare_us" "$(ratio "$cl_us" "$bare_us")" "$goal_cpu"
    if ((warm_bytes > 0)); then
      local cold_us
      cold_us=$(med "$t:cold_us_$size")
      row "$t" "   CPU per record, fresh, first $((warm_bytes >> 20)) MiB" "$cold_us" "us" "bare $bare_us" \
        "$(ratio "$cold_us" "$bare_us")"
    fi
    if [[ $size != "$first" && $size != "$last" ]]; then
      # cloned's own line through its two end figures: what a receiver with
      # cloned's cost per record and per byte, and no bump in between, would
      # spend. Where its ratio is over the goal, the goal asks for a bend, not
      # a lower cost (docs/PERFORMANCE.md, "what item 2 asks").
      local line_us
      line_us=$(affine "$size" "$first" "$last" "$(med "$t:cloned_us_${first}")" "$(med "$t:cloned_us_${last}")")
      row "$t" "   cloned's line from $first to $last" "$line_us" "us" "bare $bare_us" "$(ratio "$line_us" "$bare_us")"
      row "$t" "   cloned against its line" "$cl_us" "us" "line $line_us" "$(ratio "$cl_us" "$line_us")"
    fi
    # No receiver that decrypts and re-hashes goes under this ratio, however
    # it writes: the CPU goal is out of any receiver's reach where it is lower.
    local nodisk_us
    nodisk_us=$(med "$t:nodisk_us_$size")
    row "$t" "   least CPU per record: bare, no disk" "$nodisk_us" "us" "bare $bare_us" "$(ratio "$nodisk_us" "$bare_us")"
    # The rate at which every core busy on nothing but the floor would go:
    # no pair on this machine goes faster, however it is built.
    local floor_us ceiling
    floor_us=$(med "$t:floor_us_$size")
    ceiling=$(awk -v c="$(nproc)" -v b="$(to_bytes "$size")" -v us="$floor_us" \
      'BEGIN { printf "%.1f", c * b / 1048576 / (us / 1e6) }')
    row "$t" "   floor: CPU per record, bare pair + fio" "$floor_us" "us"
    row "$t" "   ceiling: $(nproc) cores at the floor" "$ceiling" "MiB/s" "fio $size" "$(ratio "$ceiling" "$fio_s")"
    row "$t" "   cloned against the ceiling" "$cloned" "MiB/s" "ceiling" "$(ratio "$cloned" "$ceiling")"
    row "$t" "   peak RSS cloned ($size)" "$(peak_mib "$t:size_${size}_hwm")" "MiB" "" "" "<= 64"
  done
}

has_figure() { [[ " $figures " == *" $1 "* ]]; }

# All figures of one target; repetitions interleave the methods so that a
# burst of background load does not land on one method only.
bench_target() {
  local t=$1 target=$2 rep size
  note "$t: $target"
  prefill "$target"
  if has_figure size; then
    for rep in $(seq "$reps"); do
      for size in $sizes; do bench_size "$t" "$target" "$rep" "$size"; done
    done
    size_rows "$t"
  fi
  has_figure seq || has_figure rand || return 0
  for rep in $(seq "$reps"); do bench_seq "$t" "$target" "$rep"; done
  for rep in $(seq "$reps"); do bench_rand "$t" "$target" "$rep"; done
  local e2e stream fio nc rand fio_r slow
  e2e=$(med "$t:e2e"); stream=$(med "$t:stream"); fio=$(med "$t:fio_seq"); nc=$(med "$t:nc_dd")
  rand=$(med "$t:rand"); fio_r=$(med "$t:fio_rand"); slow=$(med "$t:slow")
  row "$t" "(a) bare encrypted stream" "$stream" "MiB/s"
  row "$t" "(b) fio seq write 1M O_DIRECT" "$fio" "MiB/s"
  row "$t" "(c) nc | dd oflag=direct" "$nc" "MiB/s"
  row "$t" "1. end to end 1M sequential" "$e2e" "MiB/s" "(a) stream" "$(ratio "$e2e" "$stream")" ">= 0.85"
  row "$t" "   same, vs fio" "$e2e" "MiB/s" "(b) fio seq" "$(ratio "$e2e" "$fio")" ""
  row "$t" "   same, vs nc | dd" "$e2e" "MiB/s" "(c) nc | dd" "$(ratio "$e2e" "$nc")" ""
  # Issue 16, item 5: the reference original's CPU for the same bytes in the
  # same records against the bare sender's (sealing and digests, no disk).
  local send_cpu origin_cpu
  send_cpu=$(med "$t:stream_send_cpu"); origin_cpu=$(med "$t:e2e_origin_cpu")
  row "$t" "   (a)'s sender, CPU" "$send_cpu" "s"
  row "$t" "   clone-origin's CPU in 1." "$origin_cpu" "s" "(a) sender" "$(ratio "$origin_cpu" "$send_cpu")" "<= 1.30"
  local fio_d
  fio_d=$(med "$t:fio_rand_drained")
  row "$t" "fio 4K randwrite, qd $io_depth" "$fio_r" "MiB/s"
  row "$t" "fio 4K, drained before each fdatasync" "$fio_d" "MiB/s"
  row "$t" "2. cloned 4K random, barrier/32" "$rand" "MiB/s" "fio 4K" "$(ratio "$rand" "$fio_r")" ">= 0.80"
  if own_cpus; then
    local own own_spool
    own=$(med "$t:own"); own_spool=$(med "$t:own_spool")
    row "$t" "   same, the original on its own CPU" "$own" "MiB/s" "fio 4K" "$(ratio "$own" "$fio_r")" ""
    row "$t" "   same, and from a spool" "$own_spool" "MiB/s" "fio 4K" "$(ratio "$own_spool" "$fio_r")" ">= 0.80"
    row "$t" "   same, against fio drained" "$own_spool" "MiB/s" "fio drained" "$(ratio "$own_spool" "$fio_d")" ""
  fi
  row "$t" "3. same, store commit +${slow_commit_ms} ms" "$slow" "MiB/s" "unslowed" "$(ratio "$slow" "$rand")" ">= 0.90"
  local kind
  for kind in e2e rand slow; do
    row "$t" "4. peak RSS cloned ($kind)" "$(peak_mib "$t:${kind}_hwm")" "MiB" "" "" "<= 64"
  done
  for kind in e2e rand slow; do
    row "$t" "   cloned CPU s per run ($kind)" "$(med "$t:${kind}_cpu")" "s"
  done
}

goal_verdict() {
  local value=$1 goal=$2
  [[ -n $goal ]] || return 0
  local op=${goal%% *} limit=${goal##* }
  if awk -v v="$value" -v l="$limit" -v op="$op" 'BEGIN { exit !((op == ">=") ? v >= l : v <= l) }'; then
    echo "met"
  else
    echo "MISSED"
  fi
}

print_table() {
  echo
  echo "Medians of $reps runs; seq ${seq_bytes} bytes, 4K random ${rand_bytes} bytes on a ${disk_bytes}-byte target."
  printf '%-6s %-38s %10s %-6s %-12s %6s  %-8s %s\n' target figure value unit baseline ratio goal verdict
  local r t f v u bn bv g check
  for r in "${rows[@]}"; do
    IFS=$'\x1f' read -r t f v u bn bv g <<<"$r"
    check=$v
    [[ -n $bv ]] && check=$bv
    printf '%-6s %-38s %10s %-6s %-12s %6s  %-8s %s\n' "$t" "$f" "$v" "$u" "$bn" "$bv" "$g" "$(goal_verdict "$check" "$g")"
  done
}

main() {
  command -v fio >/dev/null || die "fio is missing (apt-get install fio)"
  command -v nc >/dev/null || die "nc is missing (apt-get install netcat-openbsd)"
  [[ -x /usr/bin/time ]] || die "/usr/bin/time is missing (apt-get install time)"
  build_binaries
  local tmp=${BENCH_TMP:-/var/tmp}
  scratch=$(mktemp -d "$tmp/cloned-bench.XXXXXX")
  # The original's disk: in RAM when possible, so the original side's own
  # disk writes do not compete with the clone's disk in the measurement.
  if [[ -d /dev/shm ]]; then source_img=$(mktemp /dev/shm/cloned-bench-source.XXXXXX); else source_img=$scratch/source.img; fi
  truncate -s "$disk_bytes" "$source_img"
  local target=$scratch/target.img
  note "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
  note "build: $build, $(meson introspect "$build" --buildoptions |
    python3 -c 'import json, sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "buildtype"))')"
  note "scratch: $scratch on $(findmnt -n -o SOURCE,FSTYPE -T "$scratch" | tr -s ' ')"
  local t
  for t in $targets; do
    case $t in
      file) bench_target file "$target" ;;
      loop)
        if [[ $(id -u) -ne 0 ]]; then
          note "loop: skipped (loop devices need root)"
          continue
        fi
        [[ -f $target ]] || truncate -s "$disk_bytes" "$target"
        # Direct I/O on the backing file makes the loop device behave like a
        # disk (no second page cache); fall back if the kernel refuses.
        loop_dev=$(losetup --find --show --direct-io=on "$target" 2>/dev/null || losetup --find --show "$target") ||
          die "losetup could not attach $target"
        bench_target loop "$loop_dev"
        detach_loop
        ;;
      *) die "unknown target '$t' in BENCH_TARGETS (file, loop)" ;;
    esac
  done
  note "done in ${SECONDS} s; load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
  print_table
}

main "$@"
