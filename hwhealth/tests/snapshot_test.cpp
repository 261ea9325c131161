// SPDX-License-Identifier: MIT
// Error counters, the verdict, and diff(previous, current).
#include <doctest/doctest.h>

#include "hwhealth/assess.h"
#include "hwhealth/snapshot.h"
#include "hwhealth/tests/snapshots.h"
#include "hwhealth/tests/test_support.h"

using hwhealth::Change;
using hwhealth_test::ata_attribute;
using hwhealth_test::contains;
using hwhealth_test::healthy_snapshot;

namespace {

std::vector<Change> of_kind(const std::vector<Change>& changes, Change::Kind kind) {
  std::vector<Change> out;
  for (const Change& c : changes) {
    if (c.kind == kind) out.push_back(c);
  }
  return out;
}

hwhealth::Snapshot judged(hwhealth::Snapshot s, const hwhealth::Snapshot* previous = nullptr) {
  if (previous == nullptr) {
    s.findings = hwhealth::assess(s, nullptr);
  } else {
    const hwhealth::Baseline before = hwhealth::baseline_of(*previous);
    s.findings = hwhealth::assess(s, &before);
  }
  return s;
}

// diff() against the baseline of the poll before, as the Collector keeps it.
std::vector<Change> diff_of(const hwhealth::Snapshot& previous, const hwhealth::Snapshot& current) {
  return hwhealth::diff(hwhealth::baseline_of(previous), current);
}

}  // namespace

TEST_CASE("error counters: one per watched attribute, controller and disk, sorted by key") {
  const std::vector<hwhealth::Counter> counters = hwhealth::error_counters(healthy_snapshot());
  std::vector<std::string> keys;
  for (const hwhealth::Counter& c : counters) keys.push_back(c.key);
  const std::vector<std::string> expected = {
      "ata.crc_errors",         "ata.offline_uncorrectable",   "ata.pending_sectors",
      "ata.reallocated_sectors", "disk_errors.io_errors",      "memory_ecc.mc0.corrected",
      "memory_ecc.mc0.uncorrected"};
  CHECK(keys == expected);
  CHECK(counters[4].instance == 7);  // the own-count id of the disk error counter

  hwhealth::Snapshot nvme = healthy_snapshot();
  nvme.smart.ata.reset();
  nvme.smart.nvme = hwhealth_test::healthy_nvme();
  hwhealth_test::make_unavailable(nvme, hwhealth::kSourceDiskErrors, hwhealth::Availability::unsupported, "n/a");
  hwhealth_test::make_unavailable(nvme, hwhealth::kSourceMemoryEcc, hwhealth::Availability::unsupported, "n/a");
  keys.clear();
  for (const hwhealth::Counter& c : hwhealth::error_counters(nvme)) keys.push_back(c.key);
  CHECK(keys == std::vector<std::string>{"nvme.error_log_entries", "nvme.media_errors"});
}

TEST_CASE("the verdict: ok, warning, critical, and unknown when SMART cannot be read") {
  hwhealth::Snapshot s = judged(healthy_snapshot());
  CHECK(hwhealth::verdict(s) == hwhealth::Verdict::ok);
  hwhealth_test::make_unavailable(s, hwhealth::kSourceSmart, hwhealth::Availability::unsupported, "a file");
  CHECK(hwhealth::verdict(s) == hwhealth::Verdict::unknown);
  s.findings.push_back(hwhealth::Finding{hwhealth::Severity::warning, "battery.worn", "BAT0", "worn", {}, false});
  CHECK(hwhealth::verdict(s) == hwhealth::Verdict::warning);
  s.findings.push_back(hwhealth::Finding{hwhealth::Severity::critical, "temp.over_crit", "x", "hot", {}, false});
  CHECK(hwhealth::verdict(s) == hwhealth::Verdict::critical);
  CHECK(std::string(hwhealth::verdict_name(hwhealth::Verdict::unknown)) == "unknown");
}

TEST_CASE("diff: a counter that rose, the new finding it brings, and nothing for an unchanged poll") {
  const hwhealth::Snapshot first = judged(healthy_snapshot(1));
  CHECK(diff_of(first, judged(healthy_snapshot(2), &first)).empty());

  hwhealth::Snapshot second = healthy_snapshot(2);
  ata_attribute(second, 197).raw = 2;
  second = judged(second, &first);
  const std::vector<Change> changes = diff_of(first, second);
  const auto rose = of_kind(changes, Change::Kind::counter_rose);
  REQUIRE(rose.size() == 1);
  CHECK(rose[0].key == "ata.pending_sectors");
  CHECK(rose[0].before == 0);
  CHECK(rose[0].after == 2);
  CHECK(contains(rose[0].sentence, "/dev/sda: pending sectors rose from 0 to 2"));
  const auto added = of_kind(changes, Change::Kind::finding_new);
  REQUIRE(added.size() == 2);  // the level (ata.pending) and the event (ata.pending_rose)
  CHECK(added[0].severity == hwhealth::Severity::warning);
  CHECK(of_kind(changes, Change::Kind::finding_cleared).empty());
}

TEST_CASE("diff: a lasting finding is cleared when it goes, an event never is, and a repeated event is new again") {
  const hwhealth::Snapshot first = judged(healthy_snapshot(1));
  hwhealth::Snapshot second = healthy_snapshot(2);
  ata_attribute(second, 197).raw = 2;
  second = judged(second, &first);
  hwhealth::Snapshot third = healthy_snapshot(3);
  ata_attribute(third, 197).raw = 4;
  third = judged(third, &second);
  const auto again = diff_of(second, third);
  const auto added = of_kind(again, Change::Kind::finding_new);
  REQUIRE(added.size() == 1);
  CHECK(added[0].finding.code == "ata.pending_rose");
  CHECK(of_kind(again, Change::Kind::finding_cleared).empty());

  const hwhealth::Snapshot fourth = judged(healthy_snapshot(4), &third);  // the sectors were remapped
  const auto cleared = of_kind(diff_of(third, fourth), Change::Kind::finding_cleared);
  REQUIRE(cleared.size() == 1);
  CHECK(cleared[0].key == "ata.pending@/dev/sda");
  CHECK(contains(cleared[0].sentence, "Cleared (ata.pending, /dev/sda)"));
}

TEST_CASE("diff: a source that changes availability is reported, with its reason") {
  const hwhealth::Snapshot first = judged(healthy_snapshot(1));
  hwhealth::Snapshot second = healthy_snapshot(2);
  hwhealth_test::make_unavailable(second, hwhealth::kSourceSmart, hwhealth::Availability::no_permission,
                                  "no permission to read SMART: needs CAP_SYS_RAWIO");
  second = judged(second, &first);
  const auto changed = of_kind(diff_of(first, second), Change::Kind::source_changed);
  REQUIRE(changed.size() == 1);
  CHECK(changed[0].source.availability == hwhealth::Availability::no_permission);
  CHECK(contains(changed[0].sentence, "smart is no_permission: no permission to read SMART"));
  const auto back = of_kind(diff_of(second, first), Change::Kind::source_changed);
  REQUIRE(back.size() == 1);
  CHECK(contains(back[0].sentence, "can be read again"));
}

TEST_CASE("diff from nothing (the first poll): unavailable sources and every finding, no counters") {
  hwhealth::Snapshot first = healthy_snapshot(1);
  ata_attribute(first, 197).raw = 1;
  hwhealth_test::make_unavailable(first, hwhealth::kSourceMemoryEcc, hwhealth::Availability::unsupported,
                                  "n/a: no EDAC memory controller");
  first = judged(first);
  const auto changes = diff_of(hwhealth::Snapshot{}, first);
  CHECK(of_kind(changes, Change::Kind::counter_rose).empty());
  const auto sources = of_kind(changes, Change::Kind::source_changed);
  REQUIRE(sources.size() == 1);
  CHECK(sources[0].key == "memory_ecc");
  CHECK(of_kind(changes, Change::Kind::finding_new).size() == 1);
}
