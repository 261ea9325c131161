// SPDX-License-Identifier: MIT
// Snapshots for the assessment, diff and format tests: a healthy machine
// that each test then breaks in one way.
#pragma once

#include "hwhealth/snapshot.h"
#include "hwhealth/tests/pages.h"

namespace hwhealth_test {

inline hwhealth::AtaHealth healthy_ata() {
  hwhealth::AtaHealth ata;
  ata.status = hwhealth::AtaDriveStatus::passed;
  ata.data = hwhealth::parse_ata_smart_data(healthy_data_page()).value();
  hwhealth::apply_ata_thresholds(ata.data, hwhealth::parse_ata_smart_thresholds(healthy_threshold_page()).value());
  return ata;
}

inline hwhealth::NvmeHealth healthy_nvme() {
  return hwhealth::parse_nvme_smart_log(NvmeLogBuilder().percent_used(2).build()).value();
}

inline hwhealth::AtaAttribute& ata_attribute(hwhealth::Snapshot& s, uint8_t id) {
  for (hwhealth::AtaAttribute& a : s.smart.ata->data.attributes) {
    if (a.id == id) return a;
  }
  s.smart.ata->data.attributes.push_back(hwhealth::AtaAttribute{id, kOldAge, 100, 100, 0, 0, true});
  return s.smart.ata->data.attributes.back();
}

// All five sources available: a SATA disk, two sensors, one controller, one battery.
inline hwhealth::Snapshot healthy_snapshot(uint64_t poll_number = 1) {
  hwhealth::Snapshot s;
  s.poll_number = poll_number;
  s.taken_unix_ms = 1'700'000'000'000;
  for (std::string_view name : {hwhealth::kSourceSmart, hwhealth::kSourceTemperatures, hwhealth::kSourceMemoryEcc,
                                hwhealth::kSourceBattery, hwhealth::kSourceDiskErrors})
    s.sources.push_back(hwhealth::available_source(name));
  s.smart.device = "/dev/sda";
  s.smart.disk = hwhealth::DiskInfo{"sda", hwhealth::DiskKind::ata, "scsi"};
  s.smart.ata = healthy_ata();
  hwhealth::TemperatureSensor cpu;
  cpu.device = "coretemp.0";
  cpu.index = 1;
  cpu.chip = "coretemp";
  cpu.label = "Package id 0";
  cpu.input_millicelsius = 52000;
  cpu.max_millicelsius = 86000;
  cpu.crit_millicelsius = 100000;
  hwhealth::TemperatureSensor acpi;
  acpi.device = "acpitz";
  acpi.index = 1;
  acpi.chip = "acpitz";
  acpi.input_millicelsius = 27800;
  s.temperatures = {acpi, cpu};
  s.memory_controllers = {hwhealth::MemoryController{"mc0", "IMC#0", 0, 0}};
  hwhealth::Battery battery;
  battery.name = "BAT0";
  battery.status = "Full";
  battery.health = "Good";
  battery.capacity_percent = 100;
  battery.full = 45'000'000;
  battery.full_design = 50'000'000;
  battery.unit = "uWh";
  s.batteries = {battery};
  s.disk_errors = hwhealth::DiskErrorCounters{"sda", 0, 100, 100, "running", 0, 7};
  return s;
}

inline void make_unavailable(hwhealth::Snapshot& s, std::string_view name, hwhealth::Availability availability,
                             const std::string& reason) {
  for (hwhealth::Source& source : s.sources) {
    if (source.name == name) source = hwhealth::Source{std::string(name), availability, reason};
  }
}

}  // namespace hwhealth_test
