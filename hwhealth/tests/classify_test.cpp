// SPDX-License-Identifier: MIT
// How refusals are classified: unsupported, no permission, or failed. The
// errno values are those the kernel gives (linux-apis.md §5); the SG_IO
// outcomes are built as sg_io_hdr would report them.
#include <doctest/doctest.h>

#include <cerrno>

#include "hwhealth/ata_sgio.h"
#include "hwhealth/source.h"
#include "hwhealth/tests/pages.h"
#include "hwhealth/tests/test_support.h"

using hwhealth::Availability;
using hwhealth_test::contains;

namespace {

base::Status sgio_refusal(int err) {
  return hwhealth::smart_ioctl_failure(err, "SMART RETURN STATUS on /dev/sda (SG_IO", "CAP_SYS_RAWIO",
                                       "the device takes no ATA commands");
}

hwhealth::SgioResult check_condition(const base::Bytes& sense) {
  hwhealth::SgioResult result;
  result.scsi_status = 0x02;
  result.driver_status = 0x08;  // DRIVER_SENSE
  result.result_nonzero = true;
  std::copy(sense.begin(), sense.end(), result.sense.begin());
  result.sense_bytes = sense.size();
  return result;
}

base::Status check(const hwhealth::SgioResult& result) {
  return hwhealth::check_sgio_result(result, hwhealth::AtaSmartCommand::read_data, "/dev/sda");
}

}  // namespace

TEST_CASE("ioctl refusals: EPERM and EACCES are no permission and name the capability") {
  for (int err : {EPERM, EACCES}) {
    CAPTURE(err);
    const base::Status status = sgio_refusal(err);
    CHECK(hwhealth::classify(status) == Availability::no_permission);
    CHECK(hwhealth::is_no_permission(status));
    CHECK(contains(status.message(), "no permission to read SMART: SMART RETURN STATUS on /dev/sda (SG_IO: "));
    CHECK(contains(status.message(), "needs CAP_SYS_RAWIO"));
  }
}

TEST_CASE("ioctl refusals: EINVAL, ENOTTY, EOPNOTSUPP and ENOSYS are unsupported; EIO failed") {
  for (int err : {EINVAL, ENOTTY, EOPNOTSUPP, ENOSYS}) {
    CAPTURE(err);
    const base::Status status = sgio_refusal(err);
    CHECK(hwhealth::classify(status) == Availability::unsupported);
    CHECK(contains(status.message(), "SMART is unsupported: "));
    CHECK(contains(status.message(), "was refused; the device takes no ATA commands"));
  }
  const base::Status io = sgio_refusal(EIO);
  CHECK(io.code() == EIO);
  CHECK(hwhealth::classify(io) == Availability::failed);
  CHECK(hwhealth::source_from_status(hwhealth::kSourceSmart, io) ==
        hwhealth::Source{"smart", Availability::failed, io.message()});
  CHECK(hwhealth::classify(base::Status::ok()) == Availability::available);
}

TEST_CASE("SG_IO outcomes: GOOD and a recovered CHECK CONDITION are done") {
  CHECK(check(hwhealth::SgioResult{}).is_ok());
  CHECK(check(check_condition(hwhealth_test::descriptor_sense(0x4f, 0xc2))).is_ok());
}

TEST_CASE("SG_IO outcomes: ILLEGAL REQUEST and an aborted SMART command are unsupported") {
  base::Bytes illegal = hwhealth_test::fixed_sense(0, 0);
  illegal[2] = 0x05;  // ILLEGAL REQUEST
  illegal[12] = 0x20;  // INVALID COMMAND OPERATION CODE
  illegal[13] = 0x00;
  const base::Status rejected = check(check_condition(illegal));
  CHECK(hwhealth::is_unsupported(rejected));
  CHECK(contains(rejected.message(), "SMART READ DATA on /dev/sda was rejected as an illegal request"));

  base::Bytes aborted = hwhealth_test::descriptor_sense(0, 0, 0x51, 0x04);  // ERR, ABRT
  aborted[1] = 0x0b;  // ABORTED COMMAND
  const base::Status disabled = check(check_condition(aborted));
  CHECK(hwhealth::is_unsupported(disabled));
  CHECK(contains(disabled.message(), "SMART is disabled"));
}

TEST_CASE("SG_IO outcomes: a device fault is a failed read, not SMART disabled") {
  for (uint8_t status : {uint8_t{0x60}, uint8_t{0x61}}) {  // DRDY|DF, and with ERR
    CAPTURE(status);
    base::Bytes fault = hwhealth_test::descriptor_sense(0x4f, 0xc2, status, 0x04);
    fault[1] = 0x0b;  // ABORTED COMMAND
    const base::Status failed = check(check_condition(fault));
    CHECK(failed.code() == EIO);
    CHECK(hwhealth::classify(failed) == Availability::failed);
    CHECK(contains(failed.message(), "device fault"));
  }
}

TEST_CASE("SG_IO outcomes: transport trouble and other sense keys fail with the numbers") {
  hwhealth::SgioResult host;
  host.host_status = 0x01;  // DID_NO_CONNECT
  host.result_nonzero = true;
  CHECK(check(host).code() == EIO);
  CHECK(contains(check(host).message(), "host status 0x01"));

  hwhealth::SgioResult busy;
  busy.scsi_status = 0x08;
  CHECK(contains(check(busy).message(), "SCSI status 0x08"));

  base::Bytes medium = hwhealth_test::fixed_sense(0, 0);
  medium[2] = 0x03;  // MEDIUM ERROR
  medium[12] = 0x11;
  medium[13] = 0x00;
  const base::Status error = check(check_condition(medium));
  CHECK(error.code() == EIO);
  CHECK(contains(error.message(), "sense key 0x03, ASC/ASCQ 0x11/0x00"));

  CHECK(contains(check(check_condition({})).message(), "no readable sense data"));
}

// A drive that does not answer is failed, and told apart (ETIMEDOUT): the read
// stops there rather than wait the timeout once per command.
TEST_CASE("SG_IO outcomes: a command that timed out is ETIMEDOUT, failed") {
  hwhealth::SgioResult timed_out;
  timed_out.host_status = 0x03;  // DID_TIME_OUT
  timed_out.result_nonzero = true;
  base::Status status = check(timed_out);
  CHECK(status.code() == ETIMEDOUT);
  CHECK(hwhealth::classify(status) == Availability::failed);
  CHECK(contains(status.message(), "SMART READ DATA on /dev/sda did not answer within 20 s"));
  hwhealth::SgioResult old_kernel;
  old_kernel.driver_status = 0x06;  // DRIVER_TIMEOUT
  CHECK(check(old_kernel).code() == ETIMEDOUT);
  // libata's way: CHECK CONDITION with generated sense, after the whole timeout.
  hwhealth::SgioResult libata = check_condition(hwhealth_test::descriptor_sense(0x4f, 0xc2));
  libata.duration_ms = hwhealth::kSgioTimeoutMs;
  CHECK(check(libata).code() == ETIMEDOUT);
  hwhealth::SgioResult other;
  other.host_status = 0x01;  // DID_NO_CONNECT
  CHECK(check(other).code() == EIO);
}
