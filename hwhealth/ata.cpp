// SPDX-License-Identifier: MIT
// The SMART READ DATA and READ THRESHOLDS pages, and what an attribute means.
#include "hwhealth/ata.h"

#include <cerrno>
#include <cstdio>
#include <string>

namespace hwhealth {
namespace {

// ACS: normalised values run from 1 to 253; 0, 254 and 255 are not values.
constexpr uint8_t kNormalisedMin = 1;
constexpr uint8_t kNormalisedMax = 253;

std::string hex_byte(unsigned value) {
  char text[8];
  std::snprintf(text, sizeof text, "0x%02x", value & 0xffu);
  return text;
}

// Shared by both pages: the size and the checksum. `what` names the page.
base::Status check_page(base::ByteSpan page, const char* what) {
  if (page.size() != kAtaSmartPageBytes) {
    return base::Status::error(EPROTO, std::string("the ") + what + " page is " + std::to_string(page.size()) +
                                           " bytes, not 512: the drive or the transport returned a short answer");
  }
  unsigned sum = 0;
  for (uint8_t byte : page) sum += byte;
  if (sum % 256 != 0) {
    return base::Status::error(EBADMSG, std::string("the ") + what + " page has a wrong checksum (its bytes sum to " +
                                            hex_byte(sum) + " mod 256, not 0): it was corrupted on the way, so "
                                            "none of its values are used");
  }
  return base::Status::ok();
}

uint64_t load_le48(const uint8_t* p) {
  uint64_t value = 0;
  for (int i = 5; i >= 0; --i) value = (value << 8) | p[i];
  return value;
}

bool normalised(uint8_t value) { return value >= kNormalisedMin && value <= kNormalisedMax; }

}  // namespace

base::Result<AtaSmartData> parse_ata_smart_data(base::ByteSpan page) {
  BASE_TRY(check_page(page, "SMART data"));
  AtaSmartData data;
  data.revision = base::load_le16(page.data());
  for (size_t slot = 0; slot < kAtaAttributeSlotCount; ++slot) {
    const uint8_t* entry = page.data() + kAtaAttributeTableOffset + slot * kAtaAttributeEntryBytes;
    if (entry[0] == 0) continue;  // an unused slot
    AtaAttribute attribute;
    attribute.id = entry[0];
    attribute.flags = base::load_le16(entry + 1);
    attribute.current = entry[3];
    attribute.worst = entry[4];
    attribute.raw = load_le48(entry + 5);
    data.attributes.push_back(attribute);
  }
  return data;
}

base::Result<std::vector<AtaThreshold>> parse_ata_smart_thresholds(base::ByteSpan page) {
  BASE_TRY(check_page(page, "SMART thresholds"));
  std::vector<AtaThreshold> thresholds;
  for (size_t slot = 0; slot < kAtaAttributeSlotCount; ++slot) {
    const uint8_t* entry = page.data() + kAtaAttributeTableOffset + slot * kAtaAttributeEntryBytes;
    if (entry[0] != 0) thresholds.push_back(AtaThreshold{entry[0], entry[1]});
  }
  return thresholds;
}

void apply_ata_thresholds(AtaSmartData& data, const std::vector<AtaThreshold>& thresholds) {
  for (AtaAttribute& attribute : data.attributes) {
    for (const AtaThreshold& entry : thresholds) {
      if (entry.id != attribute.id) continue;
      attribute.threshold = entry.threshold;
      attribute.threshold_known = true;
      break;
    }
  }
  data.thresholds_known = true;
}

AtaAttributeState ata_attribute_state(const AtaAttribute& attribute) {
  // Threshold 0 means "this attribute never fails"; values outside 1..253 are
  // not normalised values, so comparing them would report nonsense.
  if (!attribute.threshold_known || attribute.threshold == 0) return AtaAttributeState::not_rated;
  if (!normalised(attribute.current)) return AtaAttributeState::not_rated;
  if (attribute.current <= attribute.threshold) return AtaAttributeState::failed_now;
  if (normalised(attribute.worst) && attribute.worst <= attribute.threshold) return AtaAttributeState::failed_past;
  return AtaAttributeState::passing;
}

const char* ata_when_failed(AtaAttributeState state) {
  switch (state) {
    case AtaAttributeState::failed_past: return "past";
    case AtaAttributeState::failed_now: return "now";
    case AtaAttributeState::not_rated:
    case AtaAttributeState::passing: return "";
  }
  return "";
}

const char* ata_attribute_name(uint8_t id) {
  switch (id) {
    case 1: return "Raw_Read_Error_Rate";
    case 3: return "Spin_Up_Time";
    case 4: return "Start_Stop_Count";
    case kAtaReallocatedSectors: return "Reallocated_Sector_Ct";
    case 7: return "Seek_Error_Rate";
    case kAtaPowerOnHours: return "Power_On_Hours";
    case 10: return "Spin_Retry_Count";
    case 12: return "Power_Cycle_Count";
    case kAtaEndToEndErrors: return "End-to-End_Error";
    case kAtaReportedUncorrectable: return "Reported_Uncorrect";
    case kAtaCommandTimeouts: return "Command_Timeout";
    case kAtaAirflowTemperature: return "Airflow_Temperature_Cel";
    case 192: return "Power-Off_Retract_Count";
    case 193: return "Load_Cycle_Count";
    case kAtaTemperature: return "Temperature_Celsius";
    case 196: return "Reallocated_Event_Count";
    case kAtaPendingSectors: return "Current_Pending_Sector";
    case kAtaOfflineUncorrectable: return "Offline_Uncorrectable";
    case kAtaCrcErrors: return "UDMA_CRC_Error_Count";
    case 241: return "Total_LBAs_Written";
    case 242: return "Total_LBAs_Read";
    default: return "Unknown_Attribute";
  }
}

uint64_t ata_raw_value(const AtaAttribute& attribute) {
  switch (attribute.id) {
    case kAtaReallocatedSectors: return attribute.raw & 0xffffu;
    case kAtaPowerOnHours: return attribute.raw & 0xffffffu;
    case kAtaAirflowTemperature:
    case kAtaTemperature: return attribute.raw & 0xffu;
    default: return attribute.raw;
  }
}

const AtaAttribute* find_ata_attribute(const AtaSmartData& data, uint8_t id) {
  for (const AtaAttribute& attribute : data.attributes) {
    if (attribute.id == id) return &attribute;
  }
  return nullptr;
}

}  // namespace hwhealth
