// SPDX-License-Identifier: MIT
// Hardware health that Linux exposes in sysfs, read under a root directory
// passed in ("/sys" in production, a fake tree in tests). Only reads files.
//
// Each reader returns EOPNOTSUPP when the machine has no such source (no
// hwmon sensor, no EDAC memory controller, no battery, no SCSI error counters)
// with a sentence that says so, and EACCES when a file may not be read.
// Every list is bounded (the k*Max constants); what lies beyond is left out.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"

namespace hwhealth {

inline constexpr size_t kTemperatureSensorsMax = 128;
inline constexpr size_t kMemoryControllersMax = 32;
inline constexpr size_t kBatteriesMax = 8;

// One hwmon temperature channel: /sys/class/hwmon/hwmonH/tempN_*.
struct TemperatureSensor {
  // The chip's device: the name hwmonH/device resolves to ("coretemp.0",
  // "0000:3c:00.0", "nvme0"), or the chip's name for one without a device
  // (acpitz); "#2", "#3" on a second and third of the same. hwmonH itself is
  // numbered in probe order, which can change from one boot to the next.
  std::string device;
  unsigned index = 0;  // N
  std::string chip;    // the hwmon "name": coretemp, k10temp, acpitz, nvme, drivetemp, ...
  std::string label;   // tempN_label; "" when the driver gives none
  int64_t input_millicelsius = 0;
  std::optional<int64_t> max_millicelsius;
  std::optional<int64_t> crit_millicelsius;
  bool max_alarm = false;   // tempN_max_alarm or tempN_alarm reads 1
  bool crit_alarm = false;  // tempN_crit_alarm reads 1

  // Unique, and the same across boots: "coretemp.0/temp1 (coretemp Package id 0)".
  std::string subject() const;
  bool operator==(const TemperatureSensor&) const = default;
};

// An EDAC memory controller: /sys/devices/system/edac/mc/mcN.
struct MemoryController {
  std::string name;                // "mc0"
  std::string model;               // mc_name
  uint64_t corrected_count = 0;    // ce_count
  uint64_t uncorrected_count = 0;  // ue_count
  bool operator==(const MemoryController&) const = default;
};

// A system battery: /sys/class/power_supply/NAME with type "Battery" (and not
// scope "Device", which is a mouse's or a keyboard's).
struct Battery {
  std::string name;    // "BAT0"
  std::string status;  // Charging, Discharging, Not charging, Full, Unknown
  std::string health;  // Good, Dead, Overheat, ... ; "" when not reported
  std::string model;
  std::optional<int64_t> capacity_percent;
  std::optional<uint64_t> full;         // energy_full (uWh) or charge_full (uAh)
  std::optional<uint64_t> full_design;  // the same unit as `full`
  std::string unit;                     // "uWh" or "uAh"; "" when neither is reported
  std::optional<uint64_t> cycle_count;  // absent or 0 on many laptops: unknown

  // full / full_design in percent; nullopt when either is unknown or 0.
  std::optional<unsigned> full_of_design_percent() const;
  bool operator==(const Battery&) const = default;
};

// SCSI/SATA/USB disks count failed commands: /sys/block/NAME/device/ioerr_cnt (hex).
struct DiskErrorCounters {
  std::string disk;          // "sda"
  uint64_t io_errors = 0;    // ioerr_cnt
  uint64_t io_done = 0;      // iodone_cnt
  uint64_t io_requests = 0;  // iorequest_cnt
  std::string state;         // device/state: running, offline, ...
  // SMART commands of ours that completed with a non-GOOD result since the
  // source was made: the kernel counts each in ioerr_cnt (see ata_sgio.h).
  uint64_t own_error_completions = 0;
  // Who counted own_error_completions: one value per SystemHealthSource
  // (a restarted daemon counts from 0 again), so foreign_io_errors() of two
  // snapshots compare only when this is equal.
  uint64_t own_count_id = 0;

  // io_errors without the ones our own SMART commands caused.
  uint64_t foreign_io_errors() const;
  bool operator==(const DiskErrorCounters&) const = default;
};

base::Result<std::vector<TemperatureSensor>> read_temperatures(const std::string& sysfs_root);
base::Result<std::vector<MemoryController>> read_memory_ecc(const std::string& sysfs_root);
base::Result<std::vector<Battery>> read_batteries(const std::string& sysfs_root);
base::Result<DiskErrorCounters> read_disk_errors(const std::string& sysfs_root, const std::string& disk_name);

// What sysfs says about the disk behind a block device number, to choose how
// to ask it for SMART.
enum class DiskKind {
  unknown,  // sysfs does not know it (no sysfs, or a stale number)
  ata,      // behind the SCSI layer: SATA through libata (or a USB bridge, or SCSI)
  nvme,
  virtual_disk,  // no device behind it: loop, device-mapper, md, zram, nbd
  other,         // a device of another kind: virtio, mmc (eMMC), ...
};
const char* disk_kind_name(DiskKind kind);

struct DiskInfo {
  std::string name;  // the whole disk's name, "sda", "nvme0n1", "loop3"; "" if unknown
  DiskKind kind = DiskKind::unknown;
  std::string subsystem;  // the bus of device/: "scsi", "nvme", "virtio", ...; "" if none
  bool operator==(const DiskInfo&) const = default;
};
DiskInfo describe_disk(const std::string& sysfs_root, dev_t device);

}  // namespace hwhealth
