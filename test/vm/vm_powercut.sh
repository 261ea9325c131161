#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# VM scenario c (test/vm/README.md): power cuts of the whole machine. kill -9
# of qemu at three points: mid-resync, mid-epoch (a workload of 200-record
# epochs), and during a state-store commit. Every store commit takes 1 s
# ([apply] store_commit_delay_ms, as on a slow stick), so the committed
# position trails the applied one, and the third cut comes while it does.
# Each time the VM boots again, cloned starts by itself, the same
# clone-origin process (still running, retrying) resumes from the clone's
# position, and the final disk is identical with no sequence gap: the
# workloads' records are durable as one contiguous range and the clone ends
# at the last record with no lag.
# Usage: vm_powercut.sh BUILD_DIR
set -euo pipefail
. "$(dirname "$0")/lib.sh"
vm_init "$1"

vm_pair 256M $'[apply]\nstore_commit_delay_ms = 1000'
# The original keeps retrying while the VM boots again (TCG: a minute or two),
# and makes a resync's progress durable every 16 MiB.
sed -i '/^\[origin\]/a reconnect_attempts_max = 1000\nreconnect_max_ms = 2000' "$work/origin/origin.toml"
printf '[resync]\nmark_interval = "16M"\n' >>"$work/origin/origin.toml"
grep -q '^reconnect_attempts_max = 1000' "$work/origin/origin.toml" || fail "could not set the original's reconnect budget"
vm_start
vm_wait_cloned
stamp "cloned is up ($vm_accel)"

live() { g "clonectl status --config /etc/cloned/cloned.toml --json" | tr -d '\r'; }
field() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(d'"$1"')'; }

# power_cut_and_boot NAME PID: kill -9 of qemu, boot again, cloned up by
# itself. The original (PID) must still run at the cut: checked before the
# boot, since after it the original may finish at any speed.
power_cut_and_boot() {
  vm_power_cut
  stamp "power cut ($1)"
  kill -0 "$2" 2>/dev/null || fail "the original had ended at the cut ($1): not mid-transfer"
  vm_start
  vm_wait_cloned
  local j
  j=$(live)
  stamp "booted again; cloned started by itself: $(status_line clone) $(status_line unclean)" \
    "(link $(field '["link"]' <<<"$j"), applied $(field '["applied_seq"]' <<<"$j"), unclean until $(field '["unclean_until_seq"]' <<<"$j"))"
}

# Resume point ORIGIN_LOG: what the original's first session after the cut says.
resume_point() {
  { grep -E "session with the clone .* resuming at record|resync of generation .* resumed at byte" "$1" || true; } |
    tail -n 1 | sed 's/^<[0-9]>//'
}

# The link to the VM is held to 40 Mbit/s (tbf on the tap) for the whole test,
# so that each transfer below takes 20-35 s whatever the machine's speed and
# the polls (a second or more each under TCG) see it in flight.
ip netns exec "$ns" tc qdisc add dev cvm0 root tbf rate 40mbit burst 64kb latency 400ms ||
  fail "could not limit the tap's rate (tc tbf)"

# 1. Mid-resync: 160 MiB differ; cut once the clone has made a resync mark
# durable (its cursor past 0, every 16 MiB and a 1 s store commit), while the
# original still sends.
head -c 160M /dev/urandom | dd of="$work/source.img" bs=1M seek=16 conv=notrunc status=none
origin --log-level info resync --source "$work/source.img" >"$work/resync.log" 2>&1 &
origin_pid=$!
limit=$((SECONDS + 300))
until cursor=$(live | field '["resync_cursor_bytes"]' 2>/dev/null) && ((${cursor:-0} > 0)); do
  kill -0 "$origin_pid" 2>/dev/null || { cat "$work/resync.log"; fail "the resync ended before a mark was durable"; }
  ((SECONDS < limit)) || { cat "$work/resync.log"; fail "no resync mark durable within 300 s"; }
  sleep 0.5
done
grep "resync:" "$work/resync.log" | tail -n 1 || true
power_cut_and_boot "mid-resync, the clone's durable cursor at byte $cursor" "$origin_pid"
wait "$origin_pid" || { cat "$work/resync.log"; fail "the resync did not complete after the power cut"; }
grep -q "the clone is consistent" "$work/resync.log" || fail "the resync did not end consistent"
resumed=$(grep -E "resync of generation [0-9]+ resumed at byte [1-9]" "$work/resync.log" | tail -n 1 | sed 's/^<[0-9]>//' || true)
[ -n "$resumed" ] || { cat "$work/resync.log"; fail "the resync did not resume past byte 0 after the cut"; }
cmp "$work/source.img" "$work/internal.img" || fail "the disk differs after the resumed resync"
stamp "resync resumed and completed, identical; resume point: $resumed"

# 2. Mid-epoch: a workload of 200-record epochs; cut once the first epoch is
# durable and the second is on its way (its records in flight).
origin --log-level info workload --source "$work/source.img" --seed 21 --bytes 96M --write-min 64K --write-max 256K \
  --epoch-records 200 >"$work/workload1.log" 2>&1 &
origin_pid=$!
limit=$((SECONDS + 120))
while :; do
  applied=$(live | field '["applied_seq"]' 2>/dev/null || echo 0)
  ((applied > 200)) && break
  kill -0 "$origin_pid" 2>/dev/null || { cat "$work/workload1.log"; fail "the workload ended before the cut"; }
  ((SECONDS < limit)) || fail "the clone applied no more than 200 records within 120 s"
  sleep 0.3
done
power_cut_and_boot "mid-epoch, the clone at record $applied" "$origin_pid"
wait "$origin_pid" || { cat "$work/workload1.log"; fail "the workload did not complete after the power cut"; }
resumed=$(resume_point "$work/workload1.log")
done_line=$(grep "workload done" "$work/workload1.log") || { cat "$work/workload1.log"; fail "the workload did not say it was done"; }
stamp "workload resumed: $resumed; $done_line"
cmp "$work/source.img" "$work/internal.img" || fail "the disk differs after the mid-epoch cut"

# 3. During a store commit: the committed position trails the applied one.
origin --log-level info workload --source "$work/source.img" --seed 22 --bytes 96M --write-min 64K --write-max 256K \
  --epoch-records 50 >"$work/workload2.log" 2>&1 &
origin_pid=$!
last1=$(grep -o 'seq [0-9]*\.\.[0-9]*' <<<"$done_line" | cut -d. -f3)
limit=$((SECONDS + 120))
while :; do
  status=$(live)
  applied=$(field '["applied_seq"]' <<<"$status" 2>/dev/null || echo 0)
  committed=$(field '["committed_seq"]' <<<"$status" 2>/dev/null || echo 0)
  ((applied > committed && applied > last1 + 50)) && break
  kill -0 "$origin_pid" 2>/dev/null || { cat "$work/workload2.log"; fail "the workload ended before the cut"; }
  ((SECONDS < limit)) || fail "never saw the committed position trail the applied one within 120 s"
  sleep 0.3
done
power_cut_and_boot "during a store commit: applied record $applied, committed $committed" "$origin_pid"
wait "$origin_pid" || { cat "$work/workload2.log"; fail "the workload did not complete after the power cut"; }
resumed=$(resume_point "$work/workload2.log")
done_line2=$(grep "workload done" "$work/workload2.log") || { cat "$work/workload2.log"; fail "the workload did not say it was done"; }
stamp "workload resumed: $resumed; $done_line2"
cmp "$work/source.img" "$work/internal.img" || fail "the disk differs after the cut during a store commit"

# No gap: each workload's records form one range that follows the last one,
# and the clone ends at the last record with no lag.
first2=$(grep -o 'seq [0-9]*' <<<"$done_line2" | cut -d' ' -f2)
last2=$(grep -o 'seq [0-9]*\.\.[0-9]*' <<<"$done_line2" | cut -d. -f3)
[ "$first2" = $((last1 + 1)) ] || fail "a gap in sequence: the first workload ended at $last1, the second began at $first2"
g clonectl status --config /etc/cloned/cloned.toml | tr -d '\r' | tee "$work/final-status.txt"
grep -q "a bootable copy (consistent) at record $last2," "$work/final-status.txt" || fail "the clone does not end consistent at record $last2"
grep -q "lag:        0 records" "$work/final-status.txt" || fail "the clone ends with a lag"
stamp "pass: three power cuts, identical, records contiguous to $last2"
vm_quit
