// SPDX-License-Identifier: MIT
// The text and JSON forms of a snapshot and of changes.
#include <doctest/doctest.h>

#include "hwhealth/assess.h"
#include "hwhealth/format.h"
#include "hwhealth/tests/snapshots.h"
#include "hwhealth/tests/test_support.h"

using hwhealth_test::contains;
using hwhealth_test::healthy_snapshot;

namespace {

// Brackets and quotes balance outside strings: a cheap well-formedness check.
bool balanced_json(const std::string& text) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
      else if (static_cast<unsigned char>(c) < 0x20) return false;
      continue;
    }
    if (c == '"') in_string = true;
    if (c == '{' || c == '[') ++depth;
    if (c == '}' || c == ']') --depth;
    if (depth < 0) return false;
  }
  return depth == 0 && !in_string;
}

hwhealth::Snapshot troubled_snapshot() {
  hwhealth::Snapshot s = healthy_snapshot(17);
  s.smart.ata->status = hwhealth::AtaDriveStatus::failing;
  hwhealth_test::ata_attribute(s, 197).raw = 3;
  hwhealth_test::make_unavailable(s, hwhealth::kSourceMemoryEcc, hwhealth::Availability::unsupported,
                                  "n/a: no EDAC memory controller");
  s.findings = hwhealth::assess(s, nullptr);
  return s;
}

}  // namespace

TEST_CASE("text: the verdict first, one line per source with n/a reasons, then the findings") {
  const std::string text = hwhealth::format_text(troubled_snapshot());
  CHECK(text.starts_with("Clone hardware health: CRITICAL (1 critical finding, 1 warning), poll 17"));
  CHECK(contains(text, "  smart         /dev/sda (sda, SATA): the drive says FAILING, 8 attributes, 36 °C\n"));
  CHECK(contains(text, "  memory_ecc    UNSUPPORTED: n/a: no EDAC memory controller\n"));
  CHECK(contains(text, "  battery       BAT0: 100%, Full, holds 90% of its design capacity, health Good\n"));
  CHECK(contains(text, "  disk_errors   sda: 0 failed commands"));
  CHECK(contains(text, "hottest 52.0 °C at coretemp.0/temp1 (coretemp Package id 0)"));
  CHECK(contains(text, "Findings:\n  CRITICAL ata.failing: /dev/sda says it is FAILING"));
  CHECK(contains(text, "  WARNING ata.pending: "));
  CHECK(text.back() == '\n');
}

TEST_CASE("text: a healthy machine says ok, one without SMART says unknown, with the reason") {
  hwhealth::Snapshot s = healthy_snapshot(3);
  CHECK(hwhealth::format_text(s).starts_with("Clone hardware health: OK (no problem found), poll 3"));
  CHECK(contains(hwhealth::format_text(s), "Findings: none\n"));
  hwhealth_test::make_unavailable(s, hwhealth::kSourceSmart, hwhealth::Availability::no_permission,
                                  "no permission to read SMART: needs CAP_SYS_RAWIO");
  const std::string text = hwhealth::format_text(s);
  CHECK(text.starts_with("Clone hardware health: UNKNOWN (nothing wrong found, but the disk's SMART could not be read)"));
  CHECK(contains(text, "  smart         NO PERMISSION: no permission to read SMART: needs CAP_SYS_RAWIO\n"));
}

TEST_CASE("text details: the ATA attribute table, the NVMe log and every sensor") {
  hwhealth::Snapshot s = healthy_snapshot();
  hwhealth_test::ata_attribute(s, 5) = hwhealth::AtaAttribute{5, hwhealth_test::kPrefail, 10, 10, 1800, 10, true};
  const std::string text = hwhealth::format_text(s, hwhealth::TextOptions{.details = true});
  CHECK(contains(text, "ATA SMART attributes of /dev/sda (revision 16):\n"));
  CHECK(contains(text, "    5 Reallocated_Sector_Ct       10    10     10 prefail  now    1800\n"));
  CHECK(contains(text, "  194 Temperature_Celsius         64    45      0 old_age  -      36\n"));
  CHECK(contains(text, "Temperature sensors:\n"));
  CHECK(contains(text, "52.0 °C (max 86.0 °C) (crit 100.0 °C)"));
  s.smart.ata.reset();
  s.smart.nvme = hwhealth_test::healthy_nvme();
  const std::string nvme = hwhealth::format_text(s, hwhealth::TextOptions{.details = true});
  CHECK(contains(nvme, "critical warning 0x00, temperature 37 °C, available spare 100% (threshold 10%), 2% used"));
  s.smart.nvme->temperature_kelvin = 0;  // not reported by the drive
  const std::string no_temperature = hwhealth::format_text(s, hwhealth::TextOptions{.details = true});
  CHECK(contains(no_temperature, "temperature not reported,"));
  CHECK_FALSE(contains(no_temperature, "-273"));
}

TEST_CASE("json: every part of the snapshot under stable names") {
  const std::string json = hwhealth::format_json(troubled_snapshot());
  CHECK(balanced_json(json));
  CHECK(json.starts_with("{\"poll\":17,\"taken_unix_ms\":1700000000000,\"verdict\":\"critical\",\"sources\":["));
  CHECK(contains(json, "{\"name\":\"memory_ecc\",\"availability\":\"unsupported\",\"reason\":\"n/a: no EDAC memory controller\"}"));
  CHECK(contains(json, "\"smart\":{\"device\":\"/dev/sda\",\"disk\":\"sda\",\"kind\":\"ata\",\"ata\":{\"status\":\"failing\""));
  CHECK(contains(json, "{\"id\":197,\"name\":\"Current_Pending_Sector\",\"value\":100,\"worst\":100,\"thresh\":0,"
                       "\"prefailure\":false,\"when_failed\":\"\",\"raw\":3}"));
  CHECK(contains(json, "\"max_millicelsius\":null"));
  CHECK(contains(json, "\"disk_errors\":{\"disk\":\"sda\",\"ioerr_cnt\":0"));
  CHECK(contains(json, "\"findings\":[{\"severity\":\"critical\",\"code\":\"ata.failing\""));
  CHECK(contains(json, "\"figures\":{\"raw\":\"3\"}"));
}

TEST_CASE("json: NVMe fields, and strings from drivers escaped or replaced") {
  hwhealth::Snapshot s = healthy_snapshot();
  s.smart.ata.reset();
  s.smart.nvme = hwhealth_test::healthy_nvme();
  s.disk_errors.reset();
  s.temperatures[0].label = std::string("bad \"label\"\n\x01\xff\xc3\xa9");
  const std::string json = hwhealth::format_json(s);
  CHECK(balanced_json(json));
  CHECK(contains(json, "\"nvme\":{\"critical_warning\":0,\"temperature_kelvin\":310,\"available_spare\":100"));
  // nlohmann-json's escapes: \n short, other controls as \u00XX, invalid UTF-8 as U+FFFD itself.
  CHECK(contains(json, "\"label\":\"bad \\\"label\\\"\\n\\u0001\xef\xbf\xbd\xc3\xa9\""));
  CHECK(contains(json, "\"disk_errors\":null"));
}

TEST_CASE("changes as text lines and as a JSON array") {
  const hwhealth::Snapshot before = healthy_snapshot(1);
  hwhealth::Snapshot after = troubled_snapshot();
  const std::vector<hwhealth::Change> changes = hwhealth::diff(hwhealth::baseline_of(before), after);
  REQUIRE_FALSE(changes.empty());
  const std::string json = hwhealth::format_changes_json(changes);
  CHECK(balanced_json(json));
  CHECK(contains(json, "{\"kind\":\"counter_rose\",\"severity\":\"info\",\"key\":\"ata.pending_sectors\""));
  CHECK(contains(json, "\"before\":0,\"after\":3"));
  CHECK(contains(json, "{\"kind\":\"source_changed\",\"severity\":\"info\",\"key\":\"memory_ecc\""));
  CHECK(contains(json, "\"finding\":{\"severity\":\"critical\",\"code\":\"ata.failing\""));
  bool found = false;
  for (const hwhealth::Change& c : changes) {
    if (c.kind != hwhealth::Change::Kind::finding_new || c.finding.code != "ata.failing") continue;
    found = true;
    CHECK(hwhealth::format_change_text(c).starts_with("CRITICAL ata.failing@/dev/sda: /dev/sda says it is FAILING"));
  }
  CHECK(found);
  CHECK(hwhealth::format_changes_json({}) == "[]");
}
