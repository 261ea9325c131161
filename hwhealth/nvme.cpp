// SPDX-License-Identifier: MIT
// The NVMe SMART / Health log page.
#include "hwhealth/nvme.h"

#include <cerrno>
#include <iterator>
#include <limits>

namespace hwhealth {
namespace {

// Byte offsets in log page 02h.
constexpr size_t kCriticalWarningAt = 0;
constexpr size_t kTemperatureAt = 1;
constexpr size_t kAvailableSpareAt = 3;
constexpr size_t kSpareThresholdAt = 4;
constexpr size_t kPercentUsedAt = 5;
constexpr size_t kDataUnitsReadAt = 32;
constexpr size_t kDataUnitsWrittenAt = 48;
constexpr size_t kPowerOnHoursAt = 128;
constexpr size_t kUnsafeShutdownsAt = 144;
constexpr size_t kMediaErrorsAt = 160;
constexpr size_t kErrorLogEntriesAt = 176;
constexpr size_t kWarningTemperatureTimeAt = 192;
constexpr size_t kCriticalTemperatureTimeAt = 196;
constexpr size_t kTemperatureSensorsAt = 200;
static_assert(kTemperatureSensorsAt + 2 * kNvmeTemperatureSensorCount <= kNvmeSmartLogBytes);

// A little-endian 128-bit counter, clamped to what a u64 holds.
uint64_t load_le128_clamped(const uint8_t* p) {
  if (base::load_le64(p + 8) != 0) return std::numeric_limits<uint64_t>::max();
  return base::load_le64(p);
}

}  // namespace

base::Result<NvmeHealth> parse_nvme_smart_log(base::ByteSpan page) {
  if (page.size() != kNvmeSmartLogBytes) {
    return base::Status::error(EPROTO, "the NVMe SMART / Health log page is " + std::to_string(page.size()) +
                                           " bytes, not 512: the controller returned a short answer");
  }
  const uint8_t* p = page.data();
  NvmeHealth health;
  health.critical_warning = p[kCriticalWarningAt];
  health.temperature_kelvin = base::load_le16(p + kTemperatureAt);
  health.available_spare_percent = p[kAvailableSpareAt];
  health.spare_threshold_percent = p[kSpareThresholdAt];
  health.percent_used = p[kPercentUsedAt];
  health.data_units_read = load_le128_clamped(p + kDataUnitsReadAt);
  health.data_units_written = load_le128_clamped(p + kDataUnitsWrittenAt);
  health.power_on_hours = load_le128_clamped(p + kPowerOnHoursAt);
  health.unsafe_shutdowns = load_le128_clamped(p + kUnsafeShutdownsAt);
  health.media_errors = load_le128_clamped(p + kMediaErrorsAt);
  health.error_log_entries = load_le128_clamped(p + kErrorLogEntriesAt);
  health.warning_temperature_minutes = base::load_le32(p + kWarningTemperatureTimeAt);
  health.critical_temperature_minutes = base::load_le32(p + kCriticalTemperatureTimeAt);
  for (size_t i = 0; i < kNvmeTemperatureSensorCount; ++i)
    health.sensor_kelvin[i] = base::load_le16(p + kTemperatureSensorsAt + 2 * i);
  return health;
}

std::string nvme_critical_warning_name(unsigned bit) {
  static const char* const kNames[] = {"spare", "temperature", "reliability", "read_only", "volatile_backup",
                                       "pmr_read_only"};
  if (bit < std::size(kNames)) return kNames[bit];
  return "bit" + std::to_string(bit);
}

int nvme_celsius(uint16_t kelvin) { return static_cast<int>(kelvin) - kKelvinAtZeroCelsius; }

}  // namespace hwhealth
