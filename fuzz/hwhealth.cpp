// SPDX-License-Identifier: MIT
// Fuzz target: the SMART parsers over untrusted bytes (what a drive, a
// USB bridge or a broken transport may hand back), then the assessment and
// the formatters over whatever they accepted.
//
// The whole input goes to the sense-data parsers and, as it is, to the page
// parsers (which must refuse any size but 512). Random bytes almost never
// pass the ATA checksum, so the first 512 bytes are also fed with the
// checksum byte fixed up, and the next 512 as the thresholds page, so that
// the attribute table, the rules and the formatters get exercised.
//
// Checked: no crash, no sanitizer report; parsed results stay within their
// bounds (30 attributes, none with id 0; the verdict is one of four).
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "hwhealth/assess.h"
#include "hwhealth/ata.h"
#include "hwhealth/format.h"
#include "hwhealth/nvme.h"

namespace {

base::Bytes with_valid_checksum(base::ByteSpan page) {
  base::Bytes fixed(page.begin(), page.end());
  unsigned sum = 0;
  for (size_t i = 0; i + 1 < fixed.size(); ++i) sum += fixed[i];
  fixed.back() = static_cast<uint8_t>((256 - sum % 256) % 256);
  return fixed;
}

void check_bounds(const hwhealth::AtaSmartData& data) {
  assert(data.attributes.size() <= hwhealth::kAtaAttributeSlotCount);
  for (const hwhealth::AtaAttribute& a : data.attributes) {
    assert(a.id != 0);
    assert(a.raw < (uint64_t{1} << 48));
    (void)hwhealth::ata_attribute_state(a);
    (void)hwhealth::ata_raw_value(a);
  }
}

// Judges and formats what was parsed, as the daemon would.
void judge(std::optional<hwhealth::AtaHealth> ata, std::optional<hwhealth::NvmeHealth> nvme) {
  hwhealth::Snapshot snapshot;
  snapshot.sources = {hwhealth::available_source(hwhealth::kSourceSmart)};
  snapshot.smart.device = "/dev/fuzz";
  snapshot.smart.ata = std::move(ata);
  snapshot.smart.nvme = nvme;
  const hwhealth::Baseline previous = hwhealth::baseline_of(snapshot);
  snapshot.findings = hwhealth::assess(snapshot, &previous);
  assert(snapshot.findings.size() <= hwhealth::kFindingsMax);
  (void)hwhealth::format_text(snapshot, hwhealth::TextOptions{.details = true});
  (void)hwhealth::format_json(snapshot);
  (void)hwhealth::diff(hwhealth::Baseline{}, snapshot);
}

void fuzz_ata(base::ByteSpan input) {
  (void)hwhealth::parse_ata_smart_data(input);
  (void)hwhealth::parse_ata_smart_thresholds(input);
  if (input.size() < hwhealth::kAtaSmartPageBytes) return;
  const base::Bytes data_page = with_valid_checksum(input.first(hwhealth::kAtaSmartPageBytes));
  base::Result<hwhealth::AtaSmartData> data = hwhealth::parse_ata_smart_data(data_page);
  assert(data.is_ok());
  check_bounds(*data);
  hwhealth::AtaHealth health;
  health.data = std::move(data.value());
  const base::ByteSpan rest = input.subspan(hwhealth::kAtaSmartPageBytes);
  if (rest.size() >= hwhealth::kAtaSmartPageBytes) {
    const base::Bytes threshold_page = with_valid_checksum(rest.first(hwhealth::kAtaSmartPageBytes));
    base::Result<std::vector<hwhealth::AtaThreshold>> thresholds = hwhealth::parse_ata_smart_thresholds(threshold_page);
    assert(thresholds.is_ok() && thresholds->size() <= hwhealth::kAtaAttributeSlotCount);
    hwhealth::apply_ata_thresholds(health.data, *thresholds);
    check_bounds(health.data);
  }
  base::Result<hwhealth::AtaDriveStatus> status = hwhealth::parse_ata_return_status(rest);
  if (status) health.status = *status;
  judge(std::move(health), std::nullopt);
}

void fuzz_nvme(base::ByteSpan input) {
  (void)hwhealth::parse_nvme_smart_log(input);
  if (input.size() < hwhealth::kNvmeSmartLogBytes) return;
  base::Result<hwhealth::NvmeHealth> health = hwhealth::parse_nvme_smart_log(input.first(hwhealth::kNvmeSmartLogBytes));
  assert(health.is_ok());
  judge(std::nullopt, *health);
}

void fuzz_sense(base::ByteSpan input) {
  (void)hwhealth::parse_sense_header(input);
  base::Result<hwhealth::AtaRegisters> registers = hwhealth::parse_ata_registers(input);
  if (registers) (void)hwhealth::ata_drive_status(*registers);
  (void)hwhealth::parse_ata_return_status(input);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const base::ByteSpan input(data, size);
  fuzz_sense(input);
  fuzz_ata(input);
  fuzz_nvme(input);
  return 0;
}
