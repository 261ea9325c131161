// SPDX-License-Identifier: MIT
// NVMe SMART / Health Information (log page 02h): the parser over its 512
// bytes, and the NVME_IOCTL_ADMIN_CMD reader that fetches it.
//
// The page is little-endian. Its 128-bit counters are clamped to 2^64-1: no
// drive gets there, and a page that claims it is still shown, not refused.
// The parser takes untrusted bytes and returns an error for any wrong size.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "base/bytes.h"
#include "base/status.h"

namespace hwhealth {

inline constexpr size_t kNvmeSmartLogBytes = 512;
inline constexpr uint8_t kNvmeLogSmart = 0x02;
inline constexpr uint32_t kNvmeNamespaceAll = 0xffffffffu;
// Get Log Page dword 10: log id, and NUMDL = the number of dwords minus one.
inline constexpr uint32_t kNvmeSmartLogCdw10 = kNvmeLogSmart | ((kNvmeSmartLogBytes / 4 - 1) << 16);
static_assert(kNvmeSmartLogCdw10 == 0x007f0002u);
inline constexpr size_t kNvmeTemperatureSensorCount = 8;
inline constexpr uint16_t kKelvinAtZeroCelsius = 273;

// Bits of the critical warning byte (NVMe base specification, figure "SMART / Health").
enum NvmeCriticalWarning : uint8_t {
  kNvmeWarnSpare = 1 << 0,           // available spare below its threshold
  kNvmeWarnTemperature = 1 << 1,     // a temperature beyond a threshold
  kNvmeWarnReliability = 1 << 2,     // reliability degraded by media or internal errors
  kNvmeWarnReadOnly = 1 << 3,        // the media was placed in read-only mode
  kNvmeWarnVolatileBackup = 1 << 4,  // the volatile memory backup device failed
  kNvmeWarnPmrReadOnly = 1 << 5,     // the persistent memory region became read-only
};

struct NvmeHealth {
  uint8_t critical_warning = 0;
  uint16_t temperature_kelvin = 0;  // composite; 0 = not reported
  uint8_t available_spare_percent = 0;
  uint8_t spare_threshold_percent = 0;
  uint8_t percent_used = 0;         // of the rated endurance; may exceed 100
  uint64_t data_units_read = 0;     // units of 512,000 bytes
  uint64_t data_units_written = 0;
  uint64_t power_on_hours = 0;
  uint64_t unsafe_shutdowns = 0;
  uint64_t media_errors = 0;        // unrecovered data integrity errors
  uint64_t error_log_entries = 0;
  uint32_t warning_temperature_minutes = 0;
  uint32_t critical_temperature_minutes = 0;
  std::array<uint16_t, kNvmeTemperatureSensorCount> sensor_kelvin{};  // 0 = no such sensor

  bool operator==(const NvmeHealth&) const = default;
};

// EPROTO for a page that is not 512 bytes.
base::Result<NvmeHealth> parse_nvme_smart_log(base::ByteSpan page);

// The short stable name of one critical warning bit ("spare", "temperature",
// "reliability", "read_only", "volatile_backup", "pmr_read_only", "bit6", "bit7").
std::string nvme_critical_warning_name(unsigned bit);

// Kelvin to whole degrees Celsius (the page reports whole kelvins).
int nvme_celsius(uint16_t kelvin);

// Fetches log page 02h for all namespaces with NVME_IOCTL_ADMIN_CMD on `fd`
// (a controller /dev/nvme0 or a namespace /dev/nvme0n1; not owned). Blocks
// for as long as the controller takes. EOPNOTSUPP when the device is not an
// NVMe device (a loop device) or the controller rejects the command, EPERM
// when CAP_SYS_ADMIN is missing, EIO with the NVMe status otherwise.
base::Result<NvmeHealth> read_nvme_smart(int fd, const std::string& device_name);

}  // namespace hwhealth
