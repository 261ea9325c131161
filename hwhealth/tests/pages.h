// SPDX-License-Identifier: MIT
// Byte fixtures for the parsers, built from the specifications (ACS SMART
// pages, SAT sense data, NVMe log page 02h), not captured from a drive.
#pragma once

#include <cassert>
#include <cstdint>
#include <vector>

#include "base/bytes.h"
#include "hwhealth/ata.h"
#include "hwhealth/nvme.h"

namespace hwhealth_test {

constexpr uint16_t kPrefail = 0x0003;  // prefailure + online
constexpr uint16_t kOldAge = 0x0002;   // online only

// A SMART READ DATA or READ THRESHOLDS page, filled slot by slot; build()
// sets the checksum byte so that the page sums to 0 mod 256.
class AtaPageBuilder {
 public:
  AtaPageBuilder() : page_(hwhealth::kAtaSmartPageBytes, 0) { base::store_le16(page_.data(), 0x0010); }

  AtaPageBuilder& revision(uint16_t value) {
    base::store_le16(page_.data(), value);
    return *this;
  }
  AtaPageBuilder& attribute(uint8_t id, uint16_t flags, uint8_t current, uint8_t worst, uint64_t raw48) {
    uint8_t* entry = next_entry();
    entry[0] = id;
    base::store_le16(entry + 1, flags);
    entry[3] = current;
    entry[4] = worst;
    for (int i = 0; i < 6; ++i) entry[5 + i] = static_cast<uint8_t>(raw48 >> (8 * i));
    return *this;
  }
  AtaPageBuilder& threshold(uint8_t id, uint8_t value) {
    uint8_t* entry = next_entry();
    entry[0] = id;
    entry[1] = value;
    return *this;
  }
  base::Bytes build() const {
    base::Bytes page = page_;
    unsigned sum = 0;
    for (size_t i = 0; i + 1 < page.size(); ++i) sum += page[i];
    page.back() = static_cast<uint8_t>((256 - sum % 256) % 256);
    return page;
  }

 private:
  uint8_t* next_entry() {
    assert(slot_ < hwhealth::kAtaAttributeSlotCount);
    return page_.data() + hwhealth::kAtaAttributeTableOffset + hwhealth::kAtaAttributeEntryBytes * slot_++;
  }
  base::Bytes page_;
  size_t slot_ = 0;
};

// A drive in good health: the attributes of a typical SATA SSD.
inline base::Bytes healthy_data_page() {
  return AtaPageBuilder()
      .attribute(1, kPrefail, 100, 100, 0)
      .attribute(5, kPrefail, 100, 100, 0)
      .attribute(9, kOldAge, 98, 98, 8123)
      .attribute(12, kOldAge, 99, 99, 1500)
      .attribute(194, kOldAge, 64, 45, 36 | (55ull << 16) | (20ull << 32))  // 36 °C now, min/max in the upper bytes
      .attribute(197, kOldAge, 100, 100, 0)
      .attribute(198, kOldAge, 100, 100, 0)
      .attribute(199, kOldAge, 200, 200, 0)
      .build();
}

inline base::Bytes healthy_threshold_page() {
  return AtaPageBuilder()
      .threshold(1, 50)
      .threshold(5, 10)
      .threshold(9, 0)
      .threshold(12, 0)
      .threshold(194, 0)
      .threshold(197, 0)
      .threshold(198, 0)
      .threshold(199, 0)
      .build();
}

// Descriptor-format sense (72h) with the ATA Return descriptor, as libata
// returns it for an ATA PASS-THROUGH with CK_COND: RECOVERED ERROR, 00h/1Dh.
inline base::Bytes descriptor_sense(uint8_t lba_mid, uint8_t lba_high, uint8_t status = 0x50, uint8_t error = 0) {
  base::Bytes sense(22, 0);
  sense[0] = 0x72;
  sense[1] = 0x01;
  sense[2] = 0x00;
  sense[3] = 0x1d;
  sense[7] = 14;  // additional length: one 14-byte descriptor
  uint8_t* d = sense.data() + 8;
  d[0] = 0x09;
  d[1] = 0x0c;
  d[3] = error;
  d[5] = 0;
  d[9] = lba_mid;
  d[11] = lba_high;
  d[13] = status;
  return sense;
}

// Fixed-format sense (70h) carrying the same registers.
inline base::Bytes fixed_sense(uint8_t lba_mid, uint8_t lba_high, uint8_t status = 0x50) {
  base::Bytes sense(18, 0);
  sense[0] = 0x70;
  sense[2] = 0x01;
  sense[4] = status;
  sense[7] = 10;
  sense[10] = lba_mid;
  sense[11] = lba_high;
  sense[12] = 0x00;
  sense[13] = 0x1d;
  return sense;
}

// NVMe log page 02h, field by field at the specification's offsets.
class NvmeLogBuilder {
 public:
  NvmeLogBuilder() : page_(hwhealth::kNvmeSmartLogBytes, 0) {
    temperature_kelvin(310).spare(100, 10);
  }
  NvmeLogBuilder& critical_warning(uint8_t bits) { page_[0] = bits; return *this; }
  NvmeLogBuilder& temperature_kelvin(uint16_t kelvin) { base::store_le16(&page_[1], kelvin); return *this; }
  NvmeLogBuilder& spare(uint8_t available, uint8_t threshold) {
    page_[3] = available;
    page_[4] = threshold;
    return *this;
  }
  NvmeLogBuilder& percent_used(uint8_t value) { page_[5] = value; return *this; }
  NvmeLogBuilder& u128(size_t offset, uint64_t low, uint64_t high = 0) {
    base::store_le64(&page_[offset], low);
    base::store_le64(&page_[offset + 8], high);
    return *this;
  }
  NvmeLogBuilder& u32(size_t offset, uint32_t value) { base::store_le32(&page_[offset], value); return *this; }
  NvmeLogBuilder& u16(size_t offset, uint16_t value) { base::store_le16(&page_[offset], value); return *this; }
  base::Bytes build() const { return page_; }

 private:
  base::Bytes page_;
};

}  // namespace hwhealth_test
