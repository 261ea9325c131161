// SPDX-License-Identifier: MIT
// ATA SMART: pure parsers over the bytes a drive returns. No I/O here; the
// SG_IO reader that fetches these bytes is ata_sgio.h.
//
// Layouts (ACS, as summarised in shared/reference/linux-apis.md §5):
//   SMART READ DATA (512 B): le16 revision at 0; 30 entries of 12 bytes from
//     offset 2: id, le16 flags (bit0 prefailure, bit1 online), current,
//     worst, le48 raw, reserved; byte 511 makes the 512-byte sum 0 mod 256.
//   SMART READ THRESHOLDS (512 B): same frame, entries {id, threshold, 10 reserved}.
//   SMART RETURN STATUS: LBA mid/high come back in the sense data of an ATA
//     PASS-THROUGH with CK_COND: 4Fh/C2h = passed, F4h/2Ch = threshold exceeded.
// The parsers take untrusted bytes: any length and content yields a value or
// an error Status, never an assertion.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"

namespace hwhealth {

inline constexpr size_t kAtaSmartPageBytes = 512;
inline constexpr size_t kAtaAttributeSlotCount = 30;
inline constexpr size_t kAtaAttributeEntryBytes = 12;
inline constexpr size_t kAtaAttributeTableOffset = 2;
static_assert(kAtaAttributeTableOffset + kAtaAttributeSlotCount * kAtaAttributeEntryBytes < kAtaSmartPageBytes - 1,
              "the attribute table must end before the checksum byte");

// Attribute ids that the assessment and the error counters use.
enum AtaAttributeId : uint8_t {
  kAtaReallocatedSectors = 5,
  kAtaPowerOnHours = 9,
  kAtaEndToEndErrors = 184,
  kAtaReportedUncorrectable = 187,
  kAtaCommandTimeouts = 188,
  kAtaAirflowTemperature = 190,
  kAtaTemperature = 194,
  kAtaPendingSectors = 197,
  kAtaOfflineUncorrectable = 198,
  kAtaCrcErrors = 199,
};

struct AtaAttribute {
  uint8_t id = 0;
  uint16_t flags = 0;
  uint8_t current = 0;  // normalised value, valid 1..253
  uint8_t worst = 0;    // lowest normalised value seen
  uint64_t raw = 0;     // 48 bits as stored; see ata_raw_value() for its meaning
  uint8_t threshold = 0;
  bool threshold_known = false;

  bool prefailure() const { return (flags & 0x1) != 0; }
  bool online() const { return (flags & 0x2) != 0; }
  bool operator==(const AtaAttribute&) const = default;
};

struct AtaSmartData {
  uint16_t revision = 0;
  std::vector<AtaAttribute> attributes;  // the used slots (id != 0), in page order; at most 30
  bool thresholds_known = false;         // READ THRESHOLDS was read and applied
  bool operator==(const AtaSmartData&) const = default;
};

struct AtaThreshold {
  uint8_t id = 0;
  uint8_t threshold = 0;
};

enum class AtaAttributeState {
  not_rated,    // no threshold known, threshold 0 ("always passing"), or values out of range
  passing,
  failed_past,  // worst <= threshold: it crossed once, it is fine now
  failed_now,   // current <= threshold
};

enum class AtaDriveStatus { passed, failing };

// What one read of a drive's SMART gave: its own verdict and its attributes.
struct AtaHealth {
  std::optional<AtaDriveStatus> status;  // nullopt when RETURN STATUS could not be decoded
  std::string status_problem;            // why status is nullopt; "" otherwise
  AtaSmartData data;
  std::string thresholds_problem;        // why data.thresholds_known is false; "" otherwise
  bool operator==(const AtaHealth&) const = default;
};

// EPROTO for a page that is not 512 bytes, EBADMSG for a wrong checksum.
base::Result<AtaSmartData> parse_ata_smart_data(base::ByteSpan page);
base::Result<std::vector<AtaThreshold>> parse_ata_smart_thresholds(base::ByteSpan page);

// Sets threshold/threshold_known of each attribute whose id has a threshold
// entry, and data.thresholds_known.
void apply_ata_thresholds(AtaSmartData& data, const std::vector<AtaThreshold>& thresholds);

AtaAttributeState ata_attribute_state(const AtaAttribute& attribute);
// smartctl's "when_failed": "now", "past", or "" when the attribute has not failed.
const char* ata_when_failed(AtaAttributeState state);

// The conventional name ("Reallocated_Sector_Ct"), or "Unknown_Attribute".
const char* ata_attribute_name(uint8_t id);

// The raw value as the drive means it: a count in the low 16 bits for 5,
// degrees Celsius in byte 0 for 190 and 194, hours in the low 24 bits for 9,
// the whole 48 bits otherwise.
uint64_t ata_raw_value(const AtaAttribute& attribute);

// The first attribute with `id`, or nullptr.
const AtaAttribute* find_ata_attribute(const AtaSmartData& data, uint8_t id);

// The sense key, ASC and ASCQ of fixed (70h/71h) or descriptor (72h/73h)
// sense data; nullopt for anything else or too short.
struct ScsiSense {
  bool descriptor_format = false;
  uint8_t key = 0;
  uint8_t asc = 0;
  uint8_t ascq = 0;
};
std::optional<ScsiSense> parse_sense_header(base::ByteSpan sense);

// The ATA output registers from the sense data of an ATA PASS-THROUGH with
// CK_COND: the ATA Return descriptor (09h) of descriptor sense, or the fixed
// sense fields when ASC/ASCQ says "ATA pass-through information available".
struct AtaRegisters {
  uint8_t error = 0;
  uint8_t count = 0;
  uint8_t lba_low = 0;
  uint8_t lba_mid = 0;
  uint8_t lba_high = 0;
  uint8_t device = 0;
  uint8_t status = 0;
};
base::Result<AtaRegisters> parse_ata_registers(base::ByteSpan sense);

// passed (4Fh/C2h) or failing (F4h/2Ch). EOPNOTSUPP when the drive aborted the
// command (SMART disabled), EPROTO for any other register values.
base::Result<AtaDriveStatus> ata_drive_status(const AtaRegisters& registers);
base::Result<AtaDriveStatus> parse_ata_return_status(base::ByteSpan sense);

}  // namespace hwhealth
