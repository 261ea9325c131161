// SPDX-License-Identifier: MIT
// ATA SMART: the CDBs, the pages and the sense data, against fixtures built
// from the specifications.
#include <doctest/doctest.h>

#include <cerrno>

#include "hwhealth/ata.h"
#include "hwhealth/ata_sgio.h"
#include "hwhealth/source.h"
#include "hwhealth/tests/pages.h"
#include "hwhealth/tests/test_support.h"

using hwhealth_test::AtaPageBuilder;
using hwhealth_test::contains;
using hwhealth_test::kOldAge;
using hwhealth_test::kPrefail;

namespace {

hwhealth::AtaSmartData parsed_with_thresholds(const base::Bytes& data, const base::Bytes& thresholds) {
  auto parsed = hwhealth::parse_ata_smart_data(data);
  REQUIRE_MESSAGE(parsed.is_ok(), parsed.status().message());
  auto limits = hwhealth::parse_ata_smart_thresholds(thresholds);
  REQUIRE_MESSAGE(limits.is_ok(), limits.status().message());
  hwhealth::apply_ata_thresholds(*parsed, *limits);
  return parsed.value();
}

hwhealth::AtaAttribute attribute(uint16_t flags, uint8_t current, uint8_t worst, uint8_t threshold) {
  hwhealth::AtaAttribute a;
  a.id = 5;
  a.flags = flags;
  a.current = current;
  a.worst = worst;
  a.threshold = threshold;
  a.threshold_known = true;
  return a;
}

}  // namespace

TEST_CASE("the ATA PASS-THROUGH(16) CDBs follow the SAT layout for each SMART command") {
  using hwhealth::AtaSmartCommand;
  const auto data = hwhealth::ata_smart_cdb(AtaSmartCommand::read_data);
  const std::array<uint8_t, 16> expected_data = {0x85, 0x08, 0x0e, 0, 0xd0, 0, 1, 0, 0, 0, 0x4f, 0, 0xc2, 0, 0xb0, 0};
  CHECK(data == expected_data);
  auto thresholds = expected_data;
  thresholds[4] = 0xd1;
  CHECK(hwhealth::ata_smart_cdb(AtaSmartCommand::read_thresholds) == thresholds);
  const std::array<uint8_t, 16> expected_status = {0x85, 0x06, 0x20, 0, 0xda, 0, 0, 0, 0, 0, 0x4f, 0, 0xc2, 0, 0xb0, 0};
  CHECK(hwhealth::ata_smart_cdb(AtaSmartCommand::return_status) == expected_status);
}

TEST_CASE("a healthy SMART data page parses into its used slots with flags, values and raw counts") {
  auto parsed = hwhealth::parse_ata_smart_data(hwhealth_test::healthy_data_page());
  REQUIRE_MESSAGE(parsed.is_ok(), parsed.status().message());
  CHECK(parsed->revision == 0x0010);
  REQUIRE(parsed->attributes.size() == 8);
  CHECK_FALSE(parsed->thresholds_known);
  const hwhealth::AtaAttribute& first = parsed->attributes[0];
  CHECK(first.id == 1);
  CHECK(first.prefailure());
  CHECK(first.online());
  const hwhealth::AtaAttribute* hours = hwhealth::find_ata_attribute(*parsed, 9);
  REQUIRE(hours != nullptr);
  CHECK_FALSE(hours->prefailure());
  CHECK(hours->current == 98);
  CHECK(hwhealth::ata_raw_value(*hours) == 8123);
  const hwhealth::AtaAttribute* temperature = hwhealth::find_ata_attribute(*parsed, 194);
  REQUIRE(temperature != nullptr);
  CHECK(hwhealth::ata_raw_value(*temperature) == 36);  // byte 0 only; min/max live above it
  CHECK(temperature->worst == 45);
  CHECK(hwhealth::find_ata_attribute(*parsed, 187) == nullptr);
}

TEST_CASE("thresholds are matched to attributes by id, and each attribute gets a state") {
  hwhealth::AtaSmartData data = parsed_with_thresholds(hwhealth_test::healthy_data_page(),
                                                       hwhealth_test::healthy_threshold_page());
  CHECK(data.thresholds_known);
  for (const hwhealth::AtaAttribute& a : data.attributes) {
    CAPTURE(a.id);
    CHECK(a.threshold_known);
    const auto state = hwhealth::ata_attribute_state(a);
    CHECK((state == hwhealth::AtaAttributeState::passing || state == hwhealth::AtaAttributeState::not_rated));
  }
  CHECK(hwhealth::find_ata_attribute(data, 5)->threshold == 10);
  CHECK(hwhealth::ata_attribute_state(*hwhealth::find_ata_attribute(data, 5)) == hwhealth::AtaAttributeState::passing);
}

TEST_CASE("a pre-failing page: an attribute at its threshold fails now, one whose worst touched it failed in the past") {
  const base::Bytes data = AtaPageBuilder()
                               .attribute(5, kPrefail, 10, 10, 1800)  // at the threshold
                               .attribute(1, kPrefail, 60, 40, 0)     // worst went below 50 once
                               .attribute(9, kOldAge, 1, 1, 60000)    // threshold 0: never fails
                               .build();
  const base::Bytes limits = AtaPageBuilder().threshold(1, 50).threshold(5, 10).threshold(9, 0).build();
  hwhealth::AtaSmartData parsed = parsed_with_thresholds(data, limits);
  using State = hwhealth::AtaAttributeState;
  CHECK(hwhealth::ata_attribute_state(*hwhealth::find_ata_attribute(parsed, 5)) == State::failed_now);
  CHECK(hwhealth::ata_attribute_state(*hwhealth::find_ata_attribute(parsed, 1)) == State::failed_past);
  CHECK(hwhealth::ata_attribute_state(*hwhealth::find_ata_attribute(parsed, 9)) == State::not_rated);
  CHECK(std::string(hwhealth::ata_when_failed(State::failed_now)) == "now");
  CHECK(std::string(hwhealth::ata_when_failed(State::failed_past)) == "past");
  CHECK(std::string(hwhealth::ata_when_failed(State::passing)).empty());
}

TEST_CASE("attribute states: no threshold, threshold 0 and values outside 1..253 are not rated") {
  using State = hwhealth::AtaAttributeState;
  CHECK(hwhealth::ata_attribute_state(attribute(kPrefail, 100, 100, 36)) == State::passing);
  CHECK(hwhealth::ata_attribute_state(attribute(kPrefail, 36, 36, 36)) == State::failed_now);
  CHECK(hwhealth::ata_attribute_state(attribute(kPrefail, 20, 100, 36)) == State::failed_now);
  CHECK(hwhealth::ata_attribute_state(attribute(kPrefail, 37, 36, 36)) == State::failed_past);
  CHECK(hwhealth::ata_attribute_state(attribute(kPrefail, 5, 5, 0)) == State::not_rated);
  CHECK(hwhealth::ata_attribute_state(attribute(kPrefail, 0, 0, 36)) == State::not_rated);
  CHECK(hwhealth::ata_attribute_state(attribute(kPrefail, 254, 254, 36)) == State::not_rated);
  CHECK(hwhealth::ata_attribute_state(attribute(kPrefail, 100, 0, 36)) == State::passing);  // worst not a value
  hwhealth::AtaAttribute unknown = attribute(kPrefail, 1, 1, 36);
  unknown.threshold_known = false;
  CHECK(hwhealth::ata_attribute_state(unknown) == State::not_rated);
}

TEST_CASE("raw values are read as each attribute means them") {
  hwhealth::AtaAttribute a;
  a.raw = 0x0000'1234'0005ull;
  a.id = 5;
  CHECK(hwhealth::ata_raw_value(a) == 5);  // Reallocated_Sector_Ct: low 16 bits
  a.id = 194;
  a.raw = 0x0014'0037'0029ull;
  CHECK(hwhealth::ata_raw_value(a) == 0x29);
  a.id = 9;
  a.raw = 0x00ff'0012'3456ull;
  CHECK(hwhealth::ata_raw_value(a) == 0x123456);
  a.id = 197;
  a.raw = 0xffff'ffff'ffffull;
  CHECK(hwhealth::ata_raw_value(a) == 0xffff'ffff'ffffull);
  CHECK(std::string(hwhealth::ata_attribute_name(197)) == "Current_Pending_Sector");
  CHECK(std::string(hwhealth::ata_attribute_name(250)) == "Unknown_Attribute");
}

TEST_CASE("truncated, oversized and empty pages are refused with a sentence") {
  base::Bytes page = hwhealth_test::healthy_data_page();
  for (size_t size : {size_t{0}, size_t{1}, size_t{511}, size_t{513}, size_t{1024}}) {
    CAPTURE(size);
    base::Bytes resized = page;
    resized.resize(size, 0);
    auto parsed = hwhealth::parse_ata_smart_data(resized);
    REQUIRE_FALSE(parsed.is_ok());
    CHECK(parsed.status().code() == EPROTO);
    CHECK(contains(parsed.status().message(), std::to_string(size) + " bytes, not 512"));
    CHECK(hwhealth::parse_ata_smart_thresholds(resized).status().code() == EPROTO);
  }
}

TEST_CASE("a page with a wrong checksum is refused, and an all-zero page is empty but valid") {
  base::Bytes page = hwhealth_test::healthy_data_page();
  page[7] ^= 0x01;
  auto parsed = hwhealth::parse_ata_smart_data(page);
  REQUIRE_FALSE(parsed.is_ok());
  CHECK(parsed.status().code() == EBADMSG);
  CHECK(contains(parsed.status().message(), "wrong checksum"));
  base::Bytes thresholds = hwhealth_test::healthy_threshold_page();
  thresholds[511] ^= 0x80;
  CHECK(hwhealth::parse_ata_smart_thresholds(thresholds).status().code() == EBADMSG);

  auto zero = hwhealth::parse_ata_smart_data(base::Bytes(512, 0));
  REQUIRE(zero.is_ok());
  CHECK(zero->attributes.empty());
}

TEST_CASE("SMART RETURN STATUS: 4Fh/C2h is passed and F4h/2Ch failing, in descriptor and fixed sense") {
  using hwhealth::AtaDriveStatus;
  auto passed = hwhealth::parse_ata_return_status(hwhealth_test::descriptor_sense(0x4f, 0xc2));
  REQUIRE_MESSAGE(passed.is_ok(), passed.status().message());
  CHECK(*passed == AtaDriveStatus::passed);
  auto failing = hwhealth::parse_ata_return_status(hwhealth_test::descriptor_sense(0xf4, 0x2c));
  REQUIRE(failing.is_ok());
  CHECK(*failing == AtaDriveStatus::failing);
  CHECK(hwhealth::parse_ata_return_status(hwhealth_test::fixed_sense(0x4f, 0xc2)).value() == AtaDriveStatus::passed);
  CHECK(hwhealth::parse_ata_return_status(hwhealth_test::fixed_sense(0xf4, 0x2c)).value() == AtaDriveStatus::failing);

  const auto header = hwhealth::parse_sense_header(hwhealth_test::descriptor_sense(0x4f, 0xc2));
  REQUIRE(header.has_value());
  CHECK(header->descriptor_format);
  CHECK(header->key == 1);
  CHECK(header->ascq == 0x1d);
}

TEST_CASE("the ATA Return descriptor is found after other descriptors") {
  base::Bytes sense = hwhealth_test::descriptor_sense(0xf4, 0x2c);
  // Put an 8-byte information descriptor (00h, length 0Ah) in front of it.
  base::Bytes info = {0x00, 0x0a, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  sense.insert(sense.begin() + 8, info.begin(), info.end());
  sense[7] = static_cast<uint8_t>(sense[7] + info.size());
  auto status = hwhealth::parse_ata_return_status(sense);
  REQUIRE_MESSAGE(status.is_ok(), status.status().message());
  CHECK(*status == hwhealth::AtaDriveStatus::failing);
}

TEST_CASE("malformed sense data is an error, never a verdict") {
  CHECK(hwhealth::parse_ata_return_status({}).status().code() == EPROTO);
  CHECK(hwhealth::parse_ata_return_status(base::Bytes{0x72, 0x01}).status().code() == EPROTO);
  CHECK(hwhealth::parse_ata_return_status(base::Bytes(32, 0x00)).status().code() == EPROTO);  // response code 0

  base::Bytes overrun = hwhealth_test::descriptor_sense(0x4f, 0xc2);
  overrun[9] = 0x40;  // the descriptor claims more bytes than there are
  CHECK(contains(hwhealth::parse_ata_return_status(overrun).status().message(), "runs past the end"));

  base::Bytes no_ata = hwhealth_test::descriptor_sense(0x4f, 0xc2);
  no_ata[8] = 0x02;  // a sense-key-specific descriptor instead of ATA Return
  CHECK(contains(hwhealth::parse_ata_return_status(no_ata).status().message(), "no ATA Return descriptor"));

  base::Bytes fixed = hwhealth_test::fixed_sense(0x4f, 0xc2);
  fixed[13] = 0x00;  // ASC/ASCQ 00h/00h: these bytes are not registers
  CHECK(contains(hwhealth::parse_ata_return_status(fixed).status().message(), "instead of 00h/1Dh"));

  base::Bytes truncated = hwhealth_test::descriptor_sense(0x4f, 0xc2);
  truncated.resize(15);
  CHECK(hwhealth::parse_ata_return_status(truncated).status().code() == EPROTO);
}

TEST_CASE("a drive that aborts RETURN STATUS has SMART disabled, and odd registers are no verdict") {
  auto aborted = hwhealth::parse_ata_return_status(hwhealth_test::descriptor_sense(0x4f, 0xc2, 0x51, 0x04));
  REQUIRE_FALSE(aborted.is_ok());
  CHECK(hwhealth::is_unsupported(aborted.status()));
  CHECK(contains(aborted.status().message(), "SMART is disabled"));
  // A device fault (DF) is the drive failing: a failed read, never "disabled".
  auto fault = hwhealth::parse_ata_return_status(hwhealth_test::descriptor_sense(0x4f, 0xc2, 0x60, 0x00));
  REQUIRE_FALSE(fault.is_ok());
  CHECK(fault.status().code() == EIO);
  CHECK_FALSE(hwhealth::is_unsupported(fault.status()));
  CHECK(contains(fault.status().message(), "device fault"));
  auto odd = hwhealth::parse_ata_return_status(hwhealth_test::descriptor_sense(0x00, 0x00));
  REQUIRE_FALSE(odd.is_ok());
  CHECK(odd.status().code() == EPROTO);
  CHECK(contains(odd.status().message(), "00h/00h"));
}
