// SPDX-License-Identifier: MIT
// Reading ATA SMART from a SATA disk through SG_IO and ATA PASS-THROUGH(16).
//
// Kept apart from the parsers (ata.h) so that those stay pure and fuzzable.
// The caller owns the file descriptor; it may be opened read-only. Commands
// go to the drive synchronously (each may take seconds on a drive that has
// to spin up), so call this from a worker thread, never from the event loop.
//
// Errors are classified (source.h): EOPNOTSUPP when the device takes no ATA
// pass-through (a loop device, a virtual disk, a USB bridge without SAT,
// SMART disabled), EPERM when CAP_SYS_RAWIO is missing, anything else failed.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "base/bytes.h"
#include "base/status.h"
#include "hwhealth/ata.h"

namespace hwhealth {

enum class AtaSmartCommand { read_data, read_thresholds, return_status };

inline constexpr size_t kAtaPassThroughCdbBytes = 16;
inline constexpr uint32_t kSgioTimeoutMs = 20000;  // a sleeping disk needs ~10 s to spin up

// The ATA PASS-THROUGH(16) CDB of one SMART command (linux-apis.md §5).
std::array<uint8_t, kAtaPassThroughCdbBytes> ata_smart_cdb(AtaSmartCommand command);

// What SG_IO reported about one command: the fields of sg_io_hdr that matter.
inline constexpr size_t kSenseBytesMax = 64;
struct SgioResult {
  uint8_t scsi_status = 0;      // 0 GOOD, 2 CHECK CONDITION, ...
  uint16_t host_status = 0;
  uint16_t driver_status = 0;
  bool result_nonzero = false;  // what the kernel counts in the disk's ioerr_cnt
  int residual_bytes = 0;
  uint32_t duration_ms = 0;     // how long the command took (sg_io_hdr's duration)
  std::array<uint8_t, kSenseBytesMax> sense{};
  size_t sense_bytes = 0;

  base::ByteSpan sense_data() const { return base::ByteSpan(sense.data(), sense_bytes); }
};

// ok when the command reached the drive and the drive did it. EOPNOTSUPP for
// ILLEGAL REQUEST (no ATA pass-through: a SCSI disk, a USB bridge without
// SAT) or an aborted SMART command (SMART disabled); EIO otherwise.
base::Status check_sgio_result(const SgioResult& result, AtaSmartCommand command, const std::string& device_name);

// Issues RETURN STATUS, READ DATA and READ THRESHOLDS on `fd`. RETURN STATUS
// and READ DATA must work; a status the transport cannot report or thresholds
// that cannot be read degrade the answer (AtaHealth's *_problem fields).
// `device_name` goes into the sentences. `error_completions` is increased by
// the number of commands that completed with a non-GOOD SCSI result: the
// kernel counts those in the disk's ioerr_cnt, and the error counter
// assessment subtracts them (RETURN STATUS with CK_COND always counts one).
base::Result<AtaHealth> read_ata_smart(int fd, const std::string& device_name, uint64_t& error_completions);

}  // namespace hwhealth
