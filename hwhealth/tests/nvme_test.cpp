// SPDX-License-Identifier: MIT
// The NVMe SMART / Health log page against fixtures built at the
// specification's offsets.
#include <doctest/doctest.h>

#include <cerrno>
#include <limits>

#include "hwhealth/nvme.h"
#include "hwhealth/tests/pages.h"
#include "hwhealth/tests/test_support.h"

using hwhealth_test::contains;
using hwhealth_test::NvmeLogBuilder;

TEST_CASE("the Get Log Page command asks for page 02h, 128 dwords, all namespaces") {
  CHECK(hwhealth::kNvmeSmartLogCdw10 == 0x007f0002u);
  CHECK(hwhealth::kNvmeNamespaceAll == 0xffffffffu);
}

TEST_CASE("a healthy NVMe log page parses every field at its offset") {
  const base::Bytes page = NvmeLogBuilder()
                               .temperature_kelvin(313)
                               .spare(100, 10)
                               .percent_used(3)
                               .u128(32, 1'234'567)
                               .u128(48, 7'654'321)
                               .u128(128, 4321)
                               .u128(144, 17)
                               .u128(160, 0)
                               .u128(176, 42)
                               .u32(192, 5)
                               .u32(196, 1)
                               .u16(200, 318)
                               .u16(214, 300)
                               .build();
  auto parsed = hwhealth::parse_nvme_smart_log(page);
  REQUIRE_MESSAGE(parsed.is_ok(), parsed.status().message());
  const hwhealth::NvmeHealth& h = *parsed;
  CHECK(h.critical_warning == 0);
  CHECK(h.temperature_kelvin == 313);
  CHECK(hwhealth::nvme_celsius(h.temperature_kelvin) == 40);
  CHECK(h.available_spare_percent == 100);
  CHECK(h.spare_threshold_percent == 10);
  CHECK(h.percent_used == 3);
  CHECK(h.data_units_read == 1'234'567);
  CHECK(h.data_units_written == 7'654'321);
  CHECK(h.power_on_hours == 4321);
  CHECK(h.unsafe_shutdowns == 17);
  CHECK(h.media_errors == 0);
  CHECK(h.error_log_entries == 42);
  CHECK(h.warning_temperature_minutes == 5);
  CHECK(h.critical_temperature_minutes == 1);
  CHECK(h.sensor_kelvin[0] == 318);
  CHECK(h.sensor_kelvin[7] == 300);
  CHECK(h.sensor_kelvin[1] == 0);
}

TEST_CASE("critical warning bits and a low spare come through as the drive set them") {
  auto parsed = hwhealth::parse_nvme_smart_log(NvmeLogBuilder().critical_warning(0x0d).spare(4, 10).build());
  REQUIRE(parsed.is_ok());
  CHECK(parsed->critical_warning == (hwhealth::kNvmeWarnSpare | hwhealth::kNvmeWarnReliability |
                                     hwhealth::kNvmeWarnReadOnly));
  CHECK(parsed->available_spare_percent == 4);
  CHECK(hwhealth::nvme_critical_warning_name(0) == "spare");
  CHECK(hwhealth::nvme_critical_warning_name(1) == "temperature");
  CHECK(hwhealth::nvme_critical_warning_name(2) == "reliability");
  CHECK(hwhealth::nvme_critical_warning_name(3) == "read_only");
  CHECK(hwhealth::nvme_critical_warning_name(4) == "volatile_backup");
  CHECK(hwhealth::nvme_critical_warning_name(5) == "pmr_read_only");
  CHECK(hwhealth::nvme_critical_warning_name(7) == "bit7");
}

TEST_CASE("128-bit counters beyond 64 bits are clamped, not wrapped") {
  auto parsed = hwhealth::parse_nvme_smart_log(NvmeLogBuilder().u128(160, 5, 1).u128(176, ~0ull, 0).build());
  REQUIRE(parsed.is_ok());
  CHECK(parsed->media_errors == std::numeric_limits<uint64_t>::max());
  CHECK(parsed->error_log_entries == std::numeric_limits<uint64_t>::max());
}

TEST_CASE("an NVMe log page of the wrong size is refused") {
  for (size_t size : {size_t{0}, size_t{64}, size_t{511}, size_t{513}, size_t{4096}}) {
    CAPTURE(size);
    base::Bytes page(size, 0);
    auto parsed = hwhealth::parse_nvme_smart_log(page);
    REQUIRE_FALSE(parsed.is_ok());
    CHECK(parsed.status().code() == EPROTO);
    CHECK(contains(parsed.status().message(), std::to_string(size) + " bytes, not 512"));
  }
}
