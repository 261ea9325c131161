#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# VM scenario d (test/vm/README.md): hardware health read for real. The guest
# has an emulated NVMe disk (the clone's target) and an emulated SATA disk on
# AHCI (the target of a second cloned, paired for it, started in the guest).
#  1. `clonectl health --json` agrees with `smartctl -j -a` in the same guest:
#     NVMe overall status, temperature, power-on hours, critical warning; ATA
#     status and the whole attribute table (id, value, worst, threshold, raw,
#     pre-failure).
#  2. The host sets the NVMe device's smart_critical_warning (QMP qom-set)
#     while the guest runs: a critical report reaches the original
#     (`clone-origin health --collect-ms`) within one poll interval (plus the
#     collecting session), `clonectl health` names it, and smartctl agrees.
# Usage: vm_health.sh BUILD_DIR
set -euo pipefail
. "$(dirname "$0")/lib.sh"
vm_init "$1"
interval_s=20

vm_pair 256M $'[health]\ninterval_s = '"$interval_s"
# The SATA disk: a pairing of its own, on CLONECFG in sata/.
truncate -s 128M "$work/sata.img"
vm_pair_disk "$work/sata.img" sata 7001 ata-QEMU_HARDDISK_CLONEVMSATA CLONEVMSATA "QEMU HARDDISK"
read -r cfg_start _ < <(partx -g -o START,SECTORS -n 3 "$work/stick.img")
mmd -i "$work/stick.img@@$((cfg_start * 512))" ::sata
mcopy -i "$work/stick.img@@$((cfg_start * 512))" "$work/clone-sata/cloned.toml" "$work/clone-sata/pair.secret" ::sata/

vm_start -device ahci,id=ahci0 -drive "file=$work/sata.img,format=raw,if=none,id=sata" \
  -device ide-hd,drive=sata,bus=ahci0.0,serial=CLONEVMSATA
vm_wait_cloned
stamp "cloned is up ($vm_accel); starting a second cloned for the SATA disk"
g systemd-run --unit=cloned-sata --property=Type=notify --property=StateDirectory=cloned-sata \
  --property=RuntimeDirectory=cloned-sata /usr/sbin/cloned --config /etc/cloned/sata/cloned.toml >/dev/null ||
  { g journalctl -u cloned-sata --no-pager | tail -20; fail "the second cloned (SATA) did not start"; }

# health_json CONFIG: the latest assessment, once the daemon has polled.
health_json() {
  local limit=$((SECONDS + 120)) out
  while :; do
    out=$(g clonectl health --config "$1" --json 2>/dev/null | tr -d '\r' || true)
    grep -q '"smart"' <<<"$out" && { echo "$out"; return 0; }
    ((SECONDS < limit)) || fail "no health assessment from $1 within 120 s: $out"
    sleep 2
  done
}
health_json /etc/cloned/cloned.toml >"$work/ours-nvme.json"
g smartctl -j -a /dev/nvme0 | tr -d '\r' >"$work/smartctl-nvme.json" || true  # smartctl's exit status is a bit mask
health_json /etc/cloned/sata/cloned.toml >"$work/ours-sata.json"
g smartctl -j -a /dev/sda | tr -d '\r' >"$work/smartctl-sata.json" || true
python3 "$vm_src/test/vm/compare_health.py" "$work" || fail "clonectl health and smartctl disagree"
stamp "clonectl health agrees with smartctl on the NVMe and the SATA disk"

# 2. The host raises the NVMe critical warning (bit 2: reliability degraded).
qmp qom-set '{"path": "/machine/peripheral/nvme0", "property": "smart_critical_warning", "value": 4}' >/dev/null ||
  fail "qom-set smart_critical_warning failed"
set_s=$SECONDS
stamp "host: qom-set smart_critical_warning = 4 on nvme0"
limit=$((SECONDS + interval_s + 60))
while :; do
  origin health --collect-ms 3000 >"$work/origin-health.txt" 2>&1 || true
  grep -q "nvme.critical_warning" "$work/origin-health.txt" && break
  ((SECONDS < limit)) || { cat "$work/origin-health.txt"; fail "no critical report reached the original within $((interval_s + 60)) s"; }
  sleep 1
done
delay_s=$((SECONDS - set_s))
stamp "the original holds the critical report ${delay_s} s after the qom-set (poll interval ${interval_s} s):"
grep -m3 -B1 -A1 "nvme.critical_warning" "$work/origin-health.txt" | sed 's/^/    /'
# Within one poll interval, plus one collecting session (3 s) and its start.
((delay_s <= interval_s + 10)) || fail "the report took ${delay_s} s, more than one poll interval (${interval_s} s) and a collection"
g clonectl health --config /etc/cloned/cloned.toml | tr -d '\r' >"$work/ours-critical.txt"
grep -q "CRITICAL" "$work/ours-critical.txt" && grep -q "nvme.critical_warning" "$work/ours-critical.txt" ||
  { cat "$work/ours-critical.txt"; fail "clonectl health does not name the critical warning"; }
grep -m1 "Clone hardware health" "$work/ours-critical.txt"
grep -m1 "nvme.critical_warning" "$work/ours-critical.txt"
g smartctl -H /dev/nvme0 | tr -d '\r' >"$work/smartctl-critical.txt" || true
grep -q "FAILED" "$work/smartctl-critical.txt" || { cat "$work/smartctl-critical.txt"; fail "smartctl -H does not see the failure"; }
stamp "pass: clonectl health names it, smartctl -H says $(grep -m1 -o 'result: .*' "$work/smartctl-critical.txt")"
vm_quit
