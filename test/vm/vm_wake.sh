#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# VM scenario e (test/vm/README.md): sleep and wake for real, twice.
# [wake] power = "logind": idle, the guest suspends to RAM through logind (its
# kernel logs "PM: suspend entry", QMP reports SUSPEND and query-status
# "suspended"); the original's next workload finds the clone silent and sends
# its magic packet on the VM's network; a relay on the host, standing in for
# the NIC's wake logic (no emulated NIC implements Wake-on-LAN), sees that
# packet for the guest's MAC and calls QMP system_wakeup (event WAKEUP); the
# guest resumes, cloned re-arms and listens, and the workload completes
# identical. The virtio NIC cannot be armed: [wake] testing_sleep_on_virtio_nic
# (refused on anything but a virtio NIC) lets the clone sleep all the same.
# Usage: vm_wake.sh BUILD_DIR
set -euo pipefail
. "$(dirname "$0")/lib.sh"
vm_init "$1"
idle_s=15

vm_pair 256M
# The original sends its magic packet on the VM's network (the tap), as UDP
# broadcasts and a raw 0x0842 frame; it retries for as long as a TCG resume takes.
sed -i '/^\[origin\]/a reconnect_attempts_max = 200\nreconnect_max_ms = 3000\nconnect_timeout_ms = 2000' "$work/origin/origin.toml"
printf '[wake]\ninterface = "cvm0"\n' >>"$work/origin/origin.toml"
vm_start
vm_wait_cloned
stamp "cloned is up ($vm_accel)"

# The wake interface: the guest's NIC with our MAC, whatever its slot made its name.
nic=$(g "ip -o link | awk -v mac=$VM_MAC '\$0 ~ mac {sub(\":\", \"\", \$2); print \$2}'" | tr -d '\r')
[ -n "$nic" ] || fail "no NIC with $VM_MAC in the guest"
g "printf '[wake]\ninterface = \"%s\"\nidle_sleep_s = $idle_s\npower = \"logind\"\ntesting_sleep_on_virtio_nic = true\n' $nic >>/etc/cloned/cloned.toml && systemctl restart cloned" >/dev/null
vm_wait_cloned
wake=$(status_line wake)
stamp "the wake settings: $wake"
grep -q "power logind" <<<"$wake" || fail "the wake line does not say power logind: $wake"
grep -qi "armed" <<<"$wake" || fail "the wake line does not count the NIC as armed: $wake"

ip netns exec "$ns" python3 "$vm_src/test/vm/vmctl.py" relay cvm0 "$VM_MAC" "$work/qmp.sock" "$work/relay.log" 900 \
  </dev/null >>"$work/helpers.log" 2>&1 &
relay_pid=$!

event_count() { grep -c "\"event\": \"$1\"" "$work/events.log" 2>/dev/null || true; }

origin workload --source "$work/source.img" --seed 31 --bytes 4M --compare "$work/internal.img" | tee "$work/w0.log"
grep -q identical "$work/w0.log" || fail "the first workload did not end identical"
for cycle in 1 2; do
  # Idle: the clone suspends through logind.
  limit=$((SECONDS + idle_s + 180))
  until [ "$(event_count SUSPEND)" -ge "$cycle" ]; do
    ((SECONDS < limit)) || { g journalctl -b -u cloned --no-pager | tail -20; fail "cycle $cycle: no QMP SUSPEND within $((idle_s + 180)) s"; }
    sleep 1
  done
  status=$(qmp query-status)
  grep -q '"suspended"' <<<"$status" || fail "cycle $cycle: after SUSPEND the VM is not suspended: $status"
  stamp "cycle $cycle: QMP SUSPEND; query-status: $status"

  # The next workload: silent clone, magic packet, relay, system_wakeup, done.
  start_s=$SECONDS
  origin --log-level info workload --source "$work/source.img" --seed $((31 + cycle)) --bytes 4M \
    --compare "$work/internal.img" >"$work/w$cycle.log" 2>&1 || { cat "$work/w$cycle.log"; cat "$work/relay.log"; fail "cycle $cycle: the workload failed"; }
  grep -q identical "$work/w$cycle.log" || fail "cycle $cycle: the workload did not end identical"
  [ "$(event_count WAKEUP)" -ge "$cycle" ] || fail "cycle $cycle: no QMP WAKEUP event"
  wakeups=$(grep -c "system_wakeup: .*\"return\"" "$work/relay.log" || true)
  ((wakeups >= cycle)) || fail "cycle $cycle: the relay called system_wakeup $wakeups times"
  grep -m1 -i "sent a magic packet" "$work/w$cycle.log" | sed 's/^<[0-9]>/    original: /'
  grep -B1 "system_wakeup" "$work/relay.log" | tail -n 2 | sed 's/^/    /'
  stamp "cycle $cycle: woken and replicated identical in $((SECONDS - start_s)) s ($(grep -o 'workload done.*' "$work/w$cycle.log"))"

  entries=$(g "journalctl -k -b --no-pager | grep -c 'PM: suspend entry'" | tr -d '\r')
  ((entries >= cycle)) || fail "cycle $cycle: the guest's journal has $entries 'PM: suspend entry' lines"
  g "journalctl -k -b --no-pager | grep -E 'PM: suspend entry|PM: suspend exit|Waking up from system sleep' | tail -n 3" | tr -d '\r' | sed 's/^/    guest: /'
  wake=$(status_line wake)
  grep -q "$cycle sleeps" <<<"$wake" || fail "cycle $cycle: clonectl status does not count $cycle sleeps: $wake"
  grep -q "listening on" <<<"$(status_line daemon)" || fail "cycle $cycle: cloned is not listening after the wake"
done
grep -E '"event": "(SUSPEND|WAKEUP)"' "$work/events.log" | python3 -c '
import json, sys
for line in sys.stdin:
    e = json.loads(line)
    print("    QMP %s at %d.%06d" % (e["event"], e["timestamp"]["seconds"], e["timestamp"]["microseconds"]))'
cmp "$work/source.img" "$work/internal.img" || fail "the NVMe disk image differs at the end"
stamp "pass: two sleep/wake cycles"
vm_quit
