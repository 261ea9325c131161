// SPDX-License-Identifier: MIT
// SCSI sense data of an ATA PASS-THROUGH command, and SMART RETURN STATUS.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <string>

#include "hwhealth/ata.h"

namespace hwhealth {
namespace {

constexpr uint8_t kFixedCurrent = 0x70;
constexpr uint8_t kFixedDeferred = 0x71;
constexpr uint8_t kDescriptorCurrent = 0x72;
constexpr uint8_t kDescriptorDeferred = 0x73;
constexpr size_t kFixedHeaderBytes = 14;       // up to ASC/ASCQ at 12/13
constexpr size_t kDescriptorHeaderBytes = 8;
constexpr uint8_t kAtaReturnDescriptor = 0x09;
constexpr size_t kAtaReturnLengthMin = 12;     // bytes after the 2-byte descriptor header
// SAT: ASC/ASCQ 00h/1Dh = "ATA pass-through information available".
constexpr uint8_t kPassThroughInfoAsc = 0x00;
constexpr uint8_t kPassThroughInfoAscq = 0x1d;
// ATA status register bits.
constexpr uint8_t kStatusError = 0x01;
constexpr uint8_t kStatusDeviceFault = 0x20;
// SMART RETURN STATUS answers in LBA mid/high.
constexpr uint8_t kPassedMid = 0x4f, kPassedHigh = 0xc2;
constexpr uint8_t kFailingMid = 0xf4, kFailingHigh = 0x2c;

std::string hex_pair(uint8_t a, uint8_t b) {
  char text[16];
  std::snprintf(text, sizeof text, "%02Xh/%02Xh", a, b);
  return text;
}

base::Status malformed(const std::string& what) {
  return base::Status::error(EPROTO, "the sense data of SMART RETURN STATUS is malformed: " + what);
}

// Walks the descriptors of descriptor-format sense for the ATA Return one.
base::Result<AtaRegisters> registers_from_descriptors(base::ByteSpan sense) {
  const size_t end = std::min(sense.size(), kDescriptorHeaderBytes + sense[7]);
  size_t at = kDescriptorHeaderBytes;
  while (at + 2 <= end) {
    const uint8_t code = sense[at];
    const size_t length = sense[at + 1];
    if (at + 2 + length > end) return malformed("a descriptor runs past the end of the sense data");
    if (code == kAtaReturnDescriptor && length >= kAtaReturnLengthMin) {
      const uint8_t* d = sense.data() + at;
      return AtaRegisters{d[3], d[5], d[7], d[9], d[11], d[12], d[13]};
    }
    at += 2 + length;
  }
  return malformed("it holds no ATA Return descriptor (the transport did not pass the registers back)");
}

}  // namespace

std::optional<ScsiSense> parse_sense_header(base::ByteSpan sense) {
  if (sense.empty()) return std::nullopt;
  const uint8_t response = sense[0] & 0x7f;
  if ((response == kDescriptorCurrent || response == kDescriptorDeferred) && sense.size() >= 4)
    return ScsiSense{true, static_cast<uint8_t>(sense[1] & 0x0f), sense[2], sense[3]};
  if ((response == kFixedCurrent || response == kFixedDeferred) && sense.size() >= kFixedHeaderBytes)
    return ScsiSense{false, static_cast<uint8_t>(sense[2] & 0x0f), sense[12], sense[13]};
  return std::nullopt;
}

base::Result<AtaRegisters> parse_ata_registers(base::ByteSpan sense) {
  const std::optional<ScsiSense> header = parse_sense_header(sense);
  if (!header) return malformed("no fixed or descriptor sense (" + std::to_string(sense.size()) + " bytes)");
  if (header->descriptor_format) {
    if (sense.size() < kDescriptorHeaderBytes) return malformed("descriptor sense shorter than its header");
    return registers_from_descriptors(sense);
  }
  // Fixed format carries the registers only with this ASC/ASCQ; otherwise
  // the same bytes are the generic information and command-specific fields.
  if (header->asc != kPassThroughInfoAsc || header->ascq != kPassThroughInfoAscq)
    return malformed("fixed sense with ASC/ASCQ " + hex_pair(header->asc, header->ascq) + " instead of 00h/1Dh");
  return AtaRegisters{sense[3], sense[6], sense[9], sense[10], sense[11], sense[5], sense[4]};
}

base::Result<AtaDriveStatus> ata_drive_status(const AtaRegisters& registers) {
  // A device fault is the drive failing, not SMART switched off: a failed
  // read, which the report tells, never "unsupported".
  if ((registers.status & kStatusDeviceFault) != 0) {
    return base::Status::error(EIO, "the drive reports a device fault (ATA status " +
                                        hex_pair(registers.status, registers.error) +
                                        " status/error) to SMART RETURN STATUS: it may be failing");
  }
  if ((registers.status & kStatusError) != 0) {
    return base::Status::error(EOPNOTSUPP, "the drive aborted SMART RETURN STATUS (ATA status " +
                                               hex_pair(registers.status, registers.error) +
                                               " status/error): SMART is disabled or not supported; "
                                               "enable it with smartctl -s on");
  }
  if (registers.lba_mid == kPassedMid && registers.lba_high == kPassedHigh) return AtaDriveStatus::passed;
  if (registers.lba_mid == kFailingMid && registers.lba_high == kFailingHigh) return AtaDriveStatus::failing;
  return base::Status::error(EPROTO, "SMART RETURN STATUS answered LBA mid/high " +
                                         hex_pair(registers.lba_mid, registers.lba_high) +
                                         ", neither 4Fh/C2h (passed) nor F4h/2Ch (failing)");
}

base::Result<AtaDriveStatus> parse_ata_return_status(base::ByteSpan sense) {
  base::Result<AtaRegisters> registers = parse_ata_registers(sense);
  if (!registers) return registers.status();
  return ata_drive_status(*registers);
}

}  // namespace hwhealth
