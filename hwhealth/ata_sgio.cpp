// SPDX-License-Identifier: MIT
// SG_IO plumbing for the SMART commands. The only ioctl here is SG_IO.
#include "hwhealth/ata_sgio.h"

#include <scsi/sg.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "hwhealth/source.h"

namespace hwhealth {
namespace {

constexpr uint8_t kAtaPassThrough16 = 0x85;
constexpr uint8_t kAtaSmartCommand = 0xb0;
constexpr uint8_t kSmartLbaMid = 0x4f;
constexpr uint8_t kSmartLbaHigh = 0xc2;
constexpr uint8_t kFeatureReadData = 0xd0;
constexpr uint8_t kFeatureReadThresholds = 0xd1;
constexpr uint8_t kFeatureReturnStatus = 0xda;
// cdb[1]: protocol << 1. PIO data-in is 4, non-data is 3.
constexpr uint8_t kProtocolPioIn = 4 << 1;
constexpr uint8_t kProtocolNonData = 3 << 1;
// cdb[2]: t_dir=1 (from device), byt_blok=1 (count in blocks), t_length=2 (in count).
constexpr uint8_t kTransferBlocksIn = (1 << 3) | (1 << 2) | 2;
constexpr uint8_t kCheckCondition = 1 << 5;  // CK_COND: return the registers in sense data
constexpr uint8_t kScsiStatusCheckCondition = 0x02;
constexpr uint8_t kDriverSense = 0x08;  // driver_status: "sense data is valid", not an error
constexpr uint16_t kHostTimeOut = 0x03;  // host_status DID_TIME_OUT: the command timed out
constexpr uint8_t kDriverTimeout = 0x06;  // driver_status DRIVER_TIMEOUT (older kernels)
constexpr uint8_t kAtaStatusError = 0x01;        // ERR of the ATA status register: the command was aborted
constexpr uint8_t kAtaStatusDeviceFault = 0x20;  // DF: the drive reports a fault of its own
constexpr uint8_t kSenseNoSense = 0x0, kSenseRecovered = 0x1, kSenseIllegalRequest = 0x5;

const char* command_name(AtaSmartCommand command) {
  switch (command) {
    case AtaSmartCommand::read_data: return "SMART READ DATA";
    case AtaSmartCommand::read_thresholds: return "SMART READ THRESHOLDS";
    case AtaSmartCommand::return_status: return "SMART RETURN STATUS";
  }
  return "SMART";
}

std::string hex(unsigned value) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%02x", value);
  return text;
}

// The ioctl's own refusals, with the two classified ones told apart.
base::Status ioctl_failure(int err, const std::string& device_name, AtaSmartCommand command) {
  return smart_ioctl_failure(err, std::string(command_name(command)) + " on " + device_name + " (SG_IO",
                             "CAP_SYS_RAWIO",
                             "the device takes no ATA commands (a loop device, a virtual disk, or not a SATA disk)");
}

base::Result<SgioResult> run_sgio(int fd, AtaSmartCommand command, const std::string& device_name,
                                   base::MutableByteSpan data) {
  std::array<uint8_t, kAtaPassThroughCdbBytes> cdb = ata_smart_cdb(command);
  SgioResult outcome;
  sg_io_hdr_t hdr;
  std::memset(&hdr, 0, sizeof hdr);
  hdr.interface_id = 'S';
  hdr.cmdp = cdb.data();
  hdr.cmd_len = static_cast<unsigned char>(cdb.size());
  hdr.dxfer_direction = data.empty() ? SG_DXFER_NONE : SG_DXFER_FROM_DEV;
  hdr.dxferp = data.empty() ? nullptr : data.data();
  hdr.dxfer_len = static_cast<unsigned int>(data.size());
  hdr.sbp = outcome.sense.data();
  hdr.mx_sb_len = static_cast<unsigned char>(outcome.sense.size());
  hdr.timeout = kSgioTimeoutMs;
  if (::ioctl(fd, SG_IO, &hdr) != 0) return ioctl_failure(errno, device_name, command);
  outcome.scsi_status = hdr.status;
  outcome.host_status = hdr.host_status;
  outcome.driver_status = hdr.driver_status;
  outcome.result_nonzero = (hdr.info & SG_INFO_OK_MASK) != SG_INFO_OK;
  outcome.residual_bytes = hdr.resid;
  outcome.duration_ms = hdr.duration;
  outcome.sense_bytes = std::min<size_t>(hdr.sb_len_wr, outcome.sense.size());
  return outcome;
}

base::Result<base::Bytes> read_page(int fd, AtaSmartCommand command, const std::string& device_name,
                                    uint64_t& error_completions) {
  base::Bytes page(kAtaSmartPageBytes, 0);
  base::Result<SgioResult> outcome = run_sgio(fd, command, device_name, page);
  if (!outcome) return outcome.status();
  if (outcome->result_nonzero) ++error_completions;
  BASE_TRY(check_sgio_result(*outcome, command, device_name));
  // A short transfer leaves a short page, which the parser then refuses.
  if (outcome->residual_bytes > 0 && static_cast<size_t>(outcome->residual_bytes) <= page.size())
    page.resize(page.size() - static_cast<size_t>(outcome->residual_bytes));
  return page;
}

base::Result<AtaDriveStatus> return_status(int fd, const std::string& device_name, uint64_t& error_completions) {
  const AtaSmartCommand command = AtaSmartCommand::return_status;
  base::Result<SgioResult> outcome = run_sgio(fd, command, device_name, {});
  if (!outcome) return outcome.status();
  if (outcome->result_nonzero) ++error_completions;
  BASE_TRY(check_sgio_result(*outcome, command, device_name));
  return parse_ata_return_status(outcome->sense_data());
}

}  // namespace

base::Status check_sgio_result(const SgioResult& result, AtaSmartCommand command, const std::string& device_name) {
  const std::string what = std::string(command_name(command)) + " on " + device_name;
  // libata's error handler may end a timed-out pass-through command with
  // generated sense data instead of DID_TIME_OUT: the time it took says it.
  if (result.host_status == kHostTimeOut || (result.driver_status & 0x0f) == kDriverTimeout ||
      result.duration_ms >= kSgioTimeoutMs) {
    return base::Status::error(ETIMEDOUT, what + " did not answer within " + std::to_string(kSgioTimeoutMs / 1000) +
                                              " s (host status " + hex(result.host_status) + ", driver status " +
                                              hex(result.driver_status) + "): the drive may be failing");
  }
  if (result.host_status != 0 || (result.driver_status & ~kDriverSense) != 0) {
    return base::Status::error(EIO, what + " failed in the SCSI layer (host status " + hex(result.host_status) +
                                        ", driver status " + hex(result.driver_status) + ")");
  }
  if (result.scsi_status == 0) return base::Status::ok();
  if (result.scsi_status != kScsiStatusCheckCondition)
    return base::Status::error(EIO, what + " ended with SCSI status " + hex(result.scsi_status));
  const base::ByteSpan sense = result.sense_data();
  const std::optional<ScsiSense> header = parse_sense_header(sense);
  if (!header) return base::Status::error(EIO, what + " ended with CHECK CONDITION and no readable sense data");
  if (header->key == kSenseIllegalRequest) {
    return base::Status::error(EOPNOTSUPP, "SMART is unsupported: " + what + " was rejected as an illegal request "
                                           "(ASC/ASCQ " + hex(header->asc) + "/" + hex(header->ascq) +
                                           "): a SCSI disk or a USB bridge that does not pass ATA commands");
  }
  base::Result<AtaRegisters> registers = parse_ata_registers(sense);
  // A device fault is the drive failing, not SMART switched off.
  if (registers && (registers->status & kAtaStatusDeviceFault) != 0) {
    return base::Status::error(EIO, what + " failed: the drive reports a device fault (ATA status " +
                                        hex(registers->status) + ", error " + hex(registers->error) +
                                        "): it may be failing");
  }
  if (registers && (registers->status & kAtaStatusError) != 0) {
    return base::Status::error(EOPNOTSUPP, "SMART is unsupported: the drive aborted " + what + " (ATA status " +
                                               hex(registers->status) + ", error " + hex(registers->error) +
                                               "): SMART is disabled; enable it with smartctl -s on");
  }
  if (header->key == kSenseNoSense || header->key == kSenseRecovered) return base::Status::ok();
  return base::Status::error(EIO, what + " failed: sense key " + hex(header->key) + ", ASC/ASCQ " +
                                      hex(header->asc) + "/" + hex(header->ascq));
}

std::array<uint8_t, kAtaPassThroughCdbBytes> ata_smart_cdb(AtaSmartCommand command) {
  std::array<uint8_t, kAtaPassThroughCdbBytes> cdb{};
  cdb[0] = kAtaPassThrough16;
  const bool data_in = command != AtaSmartCommand::return_status;
  cdb[1] = data_in ? kProtocolPioIn : kProtocolNonData;
  cdb[2] = data_in ? kTransferBlocksIn : kCheckCondition;
  cdb[4] = command == AtaSmartCommand::read_data         ? kFeatureReadData
           : command == AtaSmartCommand::read_thresholds ? kFeatureReadThresholds
                                                         : kFeatureReturnStatus;
  cdb[6] = data_in ? 1 : 0;  // one 512-byte block
  cdb[10] = kSmartLbaMid;
  cdb[12] = kSmartLbaHigh;
  cdb[14] = kAtaSmartCommand;
  return cdb;
}

base::Result<AtaHealth> read_ata_smart(int fd, const std::string& device_name, uint64_t& error_completions) {
  AtaHealth health;
  base::Result<AtaDriveStatus> status = return_status(fd, device_name, error_completions);
  // Unsupported and no-permission end the read: the other commands would
  // fail the same way. A status the transport cannot decode does not.
  if (!status && (is_unsupported(status.status()) || is_no_permission(status.status()))) return status.status();
  // Nor does a drive that did not answer: each command would wait the whole
  // timeout again, and a stop waits for the poll (TimeoutStopSec is 60 s).
  if (!status && status.status().code() == ETIMEDOUT) return status.status();
  if (status) health.status = *status;
  else health.status_problem = status.status().message();

  base::Result<base::Bytes> data_page = read_page(fd, AtaSmartCommand::read_data, device_name, error_completions);
  if (!data_page) return data_page.status();
  base::Result<AtaSmartData> data = parse_ata_smart_data(*data_page);
  if (!data) return data.status().with_context("SMART data of " + device_name);
  health.data = std::move(*data);

  base::Result<base::Bytes> threshold_page =
      read_page(fd, AtaSmartCommand::read_thresholds, device_name, error_completions);
  if (!threshold_page) {
    health.thresholds_problem = threshold_page.status().message();
    return health;
  }
  base::Result<std::vector<AtaThreshold>> thresholds = parse_ata_smart_thresholds(*threshold_page);
  if (thresholds) apply_ata_thresholds(health.data, *thresholds);
  else health.thresholds_problem = thresholds.status().with_context("SMART thresholds of " + device_name).message();
  return health;
}

}  // namespace hwhealth
