#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# VM scenarios a and b (test/vm/README.md): boot and replicate, then reboot.
#  a. systemd brings cloned up (Type=notify: READY; the watchdog pinged, its
#     timestamp advancing); the target is the emulated NVMe disk named by
#     /dev/disk/by-id; from the host a resync, a workload and a verify; the
#     disk image compares identical.
#  b. `systemctl reboot` in the guest: a new boot, cloned back by itself with
#     the same state (record, generation, consistent), answering status, and
#     a workload after it lands identical.
# Usage: vm_replicate.sh BUILD_DIR
set -euo pipefail
. "$(dirname "$0")/lib.sh"
vm_init "$1"

vm_pair 256M
stamp "booting the stick ($vm_accel) with an NVMe disk as the clone's internal disk"
vm_start
vm_wait_cloned
stamp "cloned is up"

# READY and the watchdog, as systemd saw them.
show() { g systemctl show cloned -p "$1" --value | tr -d '\r'; }
[ "$(show Type)" = notify ] || fail "cloned.service is not Type=notify"
[ "$(show ActiveState)/$(show SubState)" = active/running ] || fail "cloned is not active/running"
[ -n "$(show StatusText)" ] || fail "cloned sent no STATUS= with READY=1"
[ "$(show WatchdogUSec)" = 30s ] || fail "the unit's watchdog is not 30 s: $(show WatchdogUSec)"
wd1=$(show WatchdogTimestampMonotonic)
[ "${wd1:-0}" -gt 0 ] || fail "systemd has seen no watchdog ping from cloned"
stamp "systemd: active/running after READY=1 (status '$(show StatusText)'), watchdog ping at ${wd1} us"

# The target is the NVMe disk, by its stable name.
node=$(g readlink -f /dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_CLONEVMNVME | tr -d '\r')
[ "$node" = /dev/nvme0n1 ] || fail "/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_CLONEVMNVME is $node, not /dev/nvme0n1"
disk=$(status_line disk)
grep -q "CLONEVMNVME" <<<"$disk" || fail "clonectl status does not name the NVMe disk: $disk"
stamp "the target: $disk"

# Resync onto the blank disk: the source differs in two regions.
head -c 24M /dev/urandom | dd of="$work/source.img" bs=1M seek=8 conv=notrunc status=none
head -c 8M /dev/urandom | dd of="$work/source.img" bs=1M seek=200 conv=notrunc status=none
origin resync --source "$work/source.img" | tee "$work/resync.log"
grep -q "the clone is consistent" "$work/resync.log" || fail "the resync did not end consistent"
stamp "resync done"
origin workload --source "$work/source.img" --seed 11 --bytes 8M --write-min 512 --write-max 256K \
  --epoch-max 32 --trim-percent 10 --compare "$work/internal.img" | tee "$work/workload.log"
grep -q identical "$work/workload.log" || fail "the original's compare did not find the disks identical"
origin verify --source "$work/source.img" | tee "$work/verify.log" || fail "verify found differences"
cmp "$work/source.img" "$work/internal.img" || fail "the NVMe disk image differs from the source"
stamp "workload and verify done; the NVMe disk image is byte-identical to the source"

# The unit's sandbox lets the disk workers put themselves first in line
# (docs/ARCHITECTURE.md, "Threads"): CAP_SYS_NICE for the nice value, and
# sched_setattr (in @system-service) for the time slice. cloned logs a notice
# when either is refused.
# The nice value is field 19 of a thread's stat line (no spaces in these names).
main_pid=$(show MainPID)
[ "${main_pid:-0}" -gt 0 ] || fail "systemd names no main PID for cloned"
nices=$(g "for t in /proc/$main_pid/task/*; do [ \"\$(cat \$t/comm 2>/dev/null)\" = cloned-disk ] && cut -d' ' -f19 \$t/stat 2>/dev/null; done | sort -u" | tr -d '\r')
[ "$nices" = -10 ] || fail "the disk workers run at nice '${nices//$'\n'/ }', not -10"
journal=$(g "journalctl -b -u cloned --no-pager -o cat 2>/dev/null || true" | tr -d '\r')
grep -q "cloned started:" <<<"$journal" || fail "cloned's journal could not be read (no 'cloned started:' line)"
! grep "disk workers keep" <<<"$journal" || fail "cloned says its disk workers keep its priority or time slice (above)"
stamp "the disk workers run at nice -10 and no refusal of their priority or slice is logged"

# cloned pings at half the watchdog's 30 s: within 45 s of the first reading
# (the work above may take less than one interval).
limit=$((SECONDS + 45))
while wd2=$(show WatchdogTimestampMonotonic) && [ "${wd2:-0}" -le "$wd1" ]; do
  ((SECONDS < limit)) || fail "the watchdog timestamp did not advance within 45 s ($wd1 then $wd2)"
  sleep 2
done
stamp "watchdog pinged again: ${wd1} -> ${wd2} us"

# b. Reboot.
clone_before=$(status_line clone)
gen_before=$(status_line generation)
boot_before=$(g cat /proc/sys/kernel/random/boot_id | tr -d '\r')
stamp "before the reboot: $clone_before; $gen_before"
g systemctl reboot >/dev/null 2>&1 || true
limit=$((SECONDS + boot_limit_s))
while :; do
  boot_now=$(g cat /proc/sys/kernel/random/boot_id 2>/dev/null | tr -d '\r' || true)
  [ -n "$boot_now" ] && [ "$boot_now" != "$boot_before" ] && break
  ((SECONDS < limit)) || fail "the guest did not come back from systemctl reboot within $boot_limit_s s"
  sleep 3
done
vm_wait_cloned
clone_after=$(status_line clone)
gen_after=$(status_line generation)
stamp "after the reboot: $clone_after; $gen_after; $(status_line daemon)"
[ "$clone_after" = "$clone_before" ] || fail "the clone's state changed across the reboot: '$clone_before' -> '$clone_after'"
[ "$gen_after" = "$gen_before" ] || fail "the generation line changed across the reboot: '$gen_before' -> '$gen_after'"
grep -q "a bootable copy (consistent)" <<<"$clone_after" || fail "after the reboot the clone is not consistent"
origin workload --source "$work/source.img" --seed 12 --bytes 4M --write-min 512 --write-max 256K \
  --epoch-max 32 --compare "$work/internal.img" | tee "$work/workload2.log"
grep -q identical "$work/workload2.log" || fail "the workload after the reboot did not end identical"
cmp "$work/source.img" "$work/internal.img" || fail "the NVMe disk image differs after the reboot's workload"
stamp "pass: the workload after the reboot resumed and ended identical"
vm_quit
