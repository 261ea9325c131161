// SPDX-License-Identifier: MIT
// Each assessment rule, one broken thing at a time on a healthy snapshot.
#include <doctest/doctest.h>

#include "hwhealth/assess.h"
#include "hwhealth/tests/snapshots.h"
#include "hwhealth/tests/test_support.h"

using hwhealth::Severity;
using hwhealth_test::ata_attribute;
using hwhealth_test::contains;
using hwhealth_test::healthy_snapshot;

namespace {

// The only finding with `code`; fails the test when there is not exactly one.
hwhealth::Finding only(const std::vector<hwhealth::Finding>& findings, const std::string& code) {
  std::vector<hwhealth::Finding> matching;
  for (const hwhealth::Finding& f : findings) {
    if (f.code == code) matching.push_back(f);
  }
  CAPTURE(code);
  REQUIRE(matching.size() == 1);
  return matching.front();
}

bool has(const std::vector<hwhealth::Finding>& findings, const std::string& code) {
  for (const hwhealth::Finding& f : findings) {
    if (f.code == code) return true;
  }
  return false;
}

std::vector<hwhealth::Finding> judge(const hwhealth::Snapshot& s, const hwhealth::Snapshot* previous = nullptr) {
  if (previous == nullptr) return hwhealth::assess(s, nullptr);
  const hwhealth::Baseline before = hwhealth::baseline_of(*previous);
  return hwhealth::assess(s, &before);
}

hwhealth::Snapshot nvme_snapshot(const hwhealth::NvmeHealth& nvme) {
  hwhealth::Snapshot s = healthy_snapshot();
  s.smart.device = "/dev/nvme0n1";
  s.smart.ata.reset();
  s.smart.nvme = nvme;
  return s;
}

}  // namespace

TEST_CASE("a healthy machine has no findings and the verdict ok") {
  const hwhealth::Snapshot s = healthy_snapshot();
  CHECK(judge(s).empty());
  CHECK(hwhealth::verdict(s) == hwhealth::Verdict::ok);
}

TEST_CASE("a drive whose RETURN STATUS says failing is critical") {
  hwhealth::Snapshot s = healthy_snapshot();
  s.smart.ata->status = hwhealth::AtaDriveStatus::failing;
  s.findings = judge(s);
  const hwhealth::Finding f = only(s.findings, "ata.failing");
  CHECK(f.severity == Severity::critical);
  CHECK(f.subject == "/dev/sda");
  CHECK(contains(f.sentence, "FAILING"));
  CHECK(hwhealth::verdict(s) == hwhealth::Verdict::critical);
}

TEST_CASE("attributes at their threshold: prefail now critical, prefail past warning, usage now warning, past info") {
  hwhealth::Snapshot s = healthy_snapshot();
  ata_attribute(s, 5) = hwhealth::AtaAttribute{5, hwhealth_test::kPrefail, 10, 10, 1800, 10, true};
  ata_attribute(s, 1) = hwhealth::AtaAttribute{1, hwhealth_test::kPrefail, 60, 45, 0, 50, true};
  ata_attribute(s, 177) = hwhealth::AtaAttribute{177, hwhealth_test::kOldAge, 5, 5, 3000, 5, true};
  ata_attribute(s, 231) = hwhealth::AtaAttribute{231, hwhealth_test::kOldAge, 20, 9, 0, 10, true};
  const auto findings = judge(s);
  const hwhealth::Finding now = only(findings, "ata.prefail_now");
  CHECK(now.severity == Severity::critical);
  CHECK(now.subject == "attribute 5 Reallocated_Sector_Ct");
  CHECK(hwhealth::figure(now, "value") == "10");
  CHECK(hwhealth::figure(now, "threshold") == "10");
  CHECK(hwhealth::figure(now, "raw") == "1800");
  CHECK(only(findings, "ata.prefail_past").severity == Severity::warning);
  CHECK(only(findings, "ata.usage_now").severity == Severity::warning);
  CHECK(only(findings, "ata.usage_past").severity == Severity::info);
  CHECK(findings.front().severity == Severity::critical);  // worst first
  CHECK(findings.back().severity == Severity::info);
}

TEST_CASE("pending and offline-uncorrectable sectors are warnings, reallocated ones information") {
  hwhealth::Snapshot s = healthy_snapshot();
  ata_attribute(s, 197).raw = 3;
  ata_attribute(s, 198).raw = 2;
  ata_attribute(s, 5).raw = 0x0001'0000'0004ull;  // raw16: 4
  const auto findings = judge(s);
  CHECK(only(findings, "ata.pending").severity == Severity::warning);
  CHECK(hwhealth::figure(only(findings, "ata.pending"), "raw") == "3");
  CHECK(only(findings, "ata.offline_uncorrectable").severity == Severity::warning);
  const hwhealth::Finding reallocated = only(findings, "ata.reallocated");
  CHECK(reallocated.severity == Severity::info);
  CHECK(contains(reallocated.sentence, "reallocated 4 sectors"));
}

TEST_CASE("a status or thresholds the transport could not give are information, not health") {
  hwhealth::Snapshot s = healthy_snapshot();
  s.smart.ata->status.reset();
  s.smart.ata->status_problem = "no ATA Return descriptor";
  s.smart.ata->data.thresholds_known = false;
  s.smart.ata->thresholds_problem = "EIO";
  const auto findings = judge(s);
  CHECK(contains(only(findings, "ata.status_unknown").sentence, "no ATA Return descriptor"));
  CHECK(only(findings, "ata.thresholds_unknown").severity == Severity::info);
}

TEST_CASE("NVMe: each critical warning bit is its own named finding") {
  const auto findings = judge(nvme_snapshot(hwhealth::NvmeHealth{.critical_warning = 0xff, .available_spare_percent = 100,
                                                                  .spare_threshold_percent = 10}));
  const std::pair<const char*, Severity> expected[] = {
      {"nvme.critical_warning.spare", Severity::critical},
      {"nvme.critical_warning.temperature", Severity::warning},
      {"nvme.critical_warning.reliability", Severity::critical},
      {"nvme.critical_warning.read_only", Severity::critical},
      {"nvme.critical_warning.volatile_backup", Severity::critical},
      {"nvme.critical_warning.pmr_read_only", Severity::warning},
      {"nvme.critical_warning.bit6", Severity::warning},
      {"nvme.critical_warning.bit7", Severity::warning},
  };
  for (const auto& [code, severity] : expected) CHECK(only(findings, code).severity == severity);
  CHECK_FALSE(has(findings, "nvme.spare_low"));  // bit 0 already says it
}

TEST_CASE("NVMe: spare below threshold, wear and media errors") {
  hwhealth::NvmeHealth nvme = hwhealth_test::healthy_nvme();
  CHECK(judge(nvme_snapshot(nvme)).empty());
  nvme.available_spare_percent = 5;
  nvme.media_errors = 2;
  nvme.percent_used = 90;
  auto findings = judge(nvme_snapshot(nvme));
  CHECK(only(findings, "nvme.spare_low").severity == Severity::critical);
  CHECK(only(findings, "nvme.media_errors").severity == Severity::warning);
  CHECK(only(findings, "nvme.endurance_nearly_used").severity == Severity::info);
  nvme.percent_used = 140;
  findings = judge(nvme_snapshot(nvme));
  CHECK(only(findings, "nvme.endurance_used_up").severity == Severity::warning);
  CHECK(hwhealth::figure(only(findings, "nvme.endurance_used_up"), "percent_used") == "140");
  CHECK_FALSE(has(findings, "nvme.endurance_nearly_used"));
}

TEST_CASE("temperatures over crit are critical, over max a warning, alarms count, nonsense limits do not") {
  hwhealth::Snapshot s = healthy_snapshot();
  s.temperatures[1].input_millicelsius = 100000;  // at crit
  s.temperatures[0].max_millicelsius = 27000;     // acpitz over its max
  auto findings = judge(s);
  const hwhealth::Finding crit = only(findings, "temp.over_crit");
  CHECK(crit.severity == Severity::critical);
  CHECK(crit.subject == "coretemp.0/temp1 (coretemp Package id 0)");
  CHECK(contains(crit.sentence, "100.0 °C"));
  CHECK(only(findings, "temp.over_max").severity == Severity::warning);

  s = healthy_snapshot();
  s.temperatures[0].crit_alarm = true;
  s.temperatures[1].max_alarm = true;
  findings = judge(s);
  CHECK(only(findings, "temp.over_crit").subject == "acpitz/temp1 (acpitz)");
  CHECK(only(findings, "temp.over_max").subject == "coretemp.0/temp1 (coretemp Package id 0)");

  s = healthy_snapshot();
  s.temperatures[0].crit_millicelsius = 0;
  s.temperatures[0].max_millicelsius = -273000;
  CHECK(judge(s).empty());
}

TEST_CASE("memory ECC: uncorrected errors are critical, corrected ones information") {
  hwhealth::Snapshot s = healthy_snapshot();
  s.memory_controllers = {{"mc0", "", 12, 0}, {"mc1", "", 0, 1}};
  const auto findings = judge(s);
  const hwhealth::Finding ue = only(findings, "memory_ecc.uncorrected");
  CHECK(ue.severity == Severity::critical);
  CHECK(ue.subject == "mc1");
  CHECK(only(findings, "memory_ecc.corrected").severity == Severity::info);
}

TEST_CASE("battery: a health word other than Good, and less than half the design capacity, are warnings") {
  hwhealth::Snapshot s = healthy_snapshot();
  s.batteries[0].full = 25'000'000;  // exactly half: not yet worn
  CHECK(judge(s).empty());
  s.batteries[0].full = 24'000'000;
  s.batteries[0].health = "Dead";
  const auto findings = judge(s);
  const hwhealth::Finding worn = only(findings, "battery.worn");
  CHECK(worn.severity == Severity::warning);
  CHECK(hwhealth::figure(worn, "percent_of_design") == "48");
  CHECK(only(findings, "battery.health").severity == Severity::warning);
}

TEST_CASE("counters that rose between two polls are event findings; the same counts at one poll are not") {
  const hwhealth::Snapshot before = healthy_snapshot(1);
  hwhealth::Snapshot after = healthy_snapshot(2);
  ata_attribute(after, 5).raw = 2;
  ata_attribute(after, 197).raw = 1;
  ata_attribute(after, 198).raw = 1;
  ata_attribute(after, 199).raw = 7;
  after.memory_controllers[0].corrected_count = 4;
  after.disk_errors->io_errors = 5;
  CHECK_FALSE(has(judge(after), "ata.reallocated_rose"));  // no previous: no rise to see

  const auto findings = judge(after, &before);
  const hwhealth::Finding reallocated = only(findings, "ata.reallocated_rose");
  CHECK(reallocated.event);
  CHECK(reallocated.severity == Severity::warning);
  CHECK(hwhealth::figure(reallocated, "before") == "0");
  CHECK(hwhealth::figure(reallocated, "after") == "2");
  CHECK(contains(reallocated.sentence, "rose from 0 to 2"));
  CHECK(only(findings, "ata.pending_rose").severity == Severity::warning);
  CHECK(only(findings, "ata.offline_uncorrectable_rose").severity == Severity::warning);
  CHECK(only(findings, "ata.crc_errors_rose").severity == Severity::info);
  CHECK(only(findings, "memory_ecc.corrected_rose").subject == "mc0");
  CHECK(only(findings, "disk.io_errors_rose").severity == Severity::warning);
  CHECK(has(findings, "ata.pending"));  // the level rule still holds too
}

TEST_CASE("NVMe media errors that rose are a warning event") {
  hwhealth::NvmeHealth nvme = hwhealth_test::healthy_nvme();
  const hwhealth::Snapshot before = nvme_snapshot(nvme);
  nvme.media_errors = 3;
  nvme.error_log_entries = 9;
  const auto findings = judge(nvme_snapshot(nvme), &before);
  CHECK(only(findings, "nvme.media_errors_rose").event);
  CHECK(only(findings, "nvme.error_log_rose").severity == Severity::info);
}

TEST_CASE("failed commands of our own SMART queries are not disk errors, and counts from another run are not compared") {
  hwhealth::Snapshot before = healthy_snapshot(1);
  before.disk_errors->io_errors = 10;
  before.disk_errors->own_error_completions = 4;
  hwhealth::Snapshot after = healthy_snapshot(2);
  after.disk_errors->io_errors = 13;  // three more, all from our three RETURN STATUS queries
  after.disk_errors->own_error_completions = 7;
  CHECK_FALSE(has(judge(after, &before), "disk.io_errors_rose"));
  after.disk_errors->io_errors = 14;
  CHECK(has(judge(after, &before), "disk.io_errors_rose"));
  after.disk_errors->own_count_id = 8;  // a restarted daemon counts its own from 0 again
  after.disk_errors->own_error_completions = 0;
  CHECK_FALSE(has(judge(after, &before), "disk.io_errors_rose"));
}

TEST_CASE("counters that fell are no event, and unavailable sources give no findings at all") {
  hwhealth::Snapshot before = healthy_snapshot(1);
  ata_attribute(before, 197).raw = 5;
  hwhealth::Snapshot after = healthy_snapshot(2);
  CHECK(judge(after, &before).empty());

  hwhealth::Snapshot blind = healthy_snapshot(3);
  blind.smart.ata->status = hwhealth::AtaDriveStatus::failing;  // stale data behind an unavailable source
  hwhealth_test::make_unavailable(blind, hwhealth::kSourceSmart, hwhealth::Availability::no_permission,
                                  "needs CAP_SYS_RAWIO");
  blind.findings = judge(blind, &before);
  CHECK(blind.findings.empty());
  CHECK(hwhealth::verdict(blind) == hwhealth::Verdict::unknown);
}
