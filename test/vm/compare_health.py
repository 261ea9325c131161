#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Compares `clonectl health --json` with `smartctl -j -a`, both run in the VM
(test/vm/vm_health.sh): prints the readings side by side and exits 1 on any
difference. Usage: compare_health.py WORK_DIR (ours-nvme.json, smartctl-nvme.json,
ours-sata.json, smartctl-sata.json)."""
import json
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def main(work):
    problems = []

    def same(what, ours, theirs):
        mark = "same" if ours == theirs else "DIFFERENT"
        print(f"  {what:<28} clonectl {ours!s:<12} smartctl {theirs!s:<12} {mark}")
        if ours != theirs:
            problems.append(what)

    ours = load(f"{work}/ours-nvme.json")["assessment"]
    theirs = load(f"{work}/smartctl-nvme.json")
    nvme = ours["smart"]["nvme"]
    log = theirs["nvme_smart_health_information_log"]
    print(f"NVMe ({ours['smart']['device']} / {theirs['device']['name']}):")
    same("overall: passed", ours["verdict"] == "ok", theirs["smart_status"]["passed"])
    same("temperature (Celsius)", nvme["temperature_kelvin"] - 273, log["temperature"])
    same("power-on hours", nvme["power_on_hours"], log["power_on_hours"])
    same("critical warning", nvme["critical_warning"], log["critical_warning"])
    same("data units read", nvme["data_units_read"], log["data_units_read"])

    ours = load(f"{work}/ours-sata.json")["assessment"]
    theirs = load(f"{work}/smartctl-sata.json")
    ata = ours["smart"]["ata"]
    print(f"ATA ({ours['smart']['device']} / {theirs['device']['name']}):")
    same("overall: passed", ata["status"] == "passed", theirs["smart_status"]["passed"])
    table = {a["id"]: a for a in theirs["ata_smart_attributes"]["table"]}
    same("attribute ids", sorted(a["id"] for a in ata["attributes"]), sorted(table))
    for a in ata["attributes"]:
        t = table.get(a["id"])
        if t is None:
            continue
        same(f"attr {a['id']} value/worst/thresh", (a["value"], a["worst"], a["thresh"]),
             (t["value"], t["worst"], t["thresh"]))
        # The raw value as each reads it: smartctl's string starts with its
        # interpretation (the temperature's low byte: "31 (Min/Max 31/31)").
        shown = int(t["raw"]["string"].split()[0])
        same(f"attr {a['id']} raw, prefailure", (a["raw"], a["prefailure"]), (shown, t["flags"]["prefailure"]))
    if problems:
        print("differences: " + ", ".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
