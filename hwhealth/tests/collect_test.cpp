// SPDX-License-Identifier: MIT
// The Collector over the fake source, and the real source on targets that
// have no SMART (a regular file, a missing path) with sysfs from a fake tree.
#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>

#include "hwhealth/collect.h"
#include "hwhealth/format.h"
#include "hwhealth/tests/snapshots.h"
#include "hwhealth/tests/test_support.h"

using hwhealth_test::contains;
using hwhealth_test::TempDir;

namespace {

bool has(const std::vector<hwhealth::Finding>& findings, const std::string& code) {
  for (const hwhealth::Finding& f : findings) {
    if (f.code == code) return true;
  }
  return false;
}

// The raw value of attribute `id` in the fake's ATA page (it must be there).
uint64_t& raw_of(hwhealth::FakeHealthSource& fake, uint8_t id) {
  for (hwhealth::AtaAttribute& a : fake.smart.value.ata->data.attributes) {
    if (a.id == id) return a.raw;
  }
  FAIL("no attribute " << int{id} << " in the fake's page");
  throw;  // not reached
}

std::unique_ptr<hwhealth::FakeHealthSource> healthy_fake() {
  auto fake = std::make_unique<hwhealth::FakeHealthSource>();
  const hwhealth::Snapshot s = hwhealth_test::healthy_snapshot();
  fake->set_ata("/dev/sda", *s.smart.ata);
  fake->set_temperatures(s.temperatures);
  fake->set_batteries(s.batteries);
  fake->set_disk_errors(*s.disk_errors);
  fake->fail(hwhealth::kSourceMemoryEcc, hwhealth::Availability::unsupported, "n/a: no ECC");
  return fake;
}

// A collector over a fake whose ATA drive says it is failing, with 3 pending
// sectors, polled once (`first`); `failing` is that drive's page.
struct FailingDrive {
  std::unique_ptr<hwhealth::FakeHealthSource> owned = healthy_fake();
  hwhealth::FakeHealthSource& fake = *owned;
  hwhealth::Collector collector{failing_page(std::move(owned))};
  hwhealth::Snapshot first = collector.poll(1000);
  hwhealth::AtaHealth failing = *fake.smart.value.ata;

  static std::unique_ptr<hwhealth::FakeHealthSource> failing_page(std::unique_ptr<hwhealth::FakeHealthSource> f) {
    f->smart.value.ata->status = hwhealth::AtaDriveStatus::failing;
    raw_of(*f, hwhealth::kAtaPendingSectors) = 3;
    return f;
  }
};

}  // namespace

TEST_CASE("the fake source starts with every source unsupported, never healthy") {
  hwhealth::Collector collector(std::make_unique<hwhealth::FakeHealthSource>());
  const hwhealth::Snapshot s = collector.poll(1000);
  REQUIRE(s.sources.size() == 5);
  for (const hwhealth::Source& source : s.sources) {
    CAPTURE(source.name);
    CHECK(source.availability == hwhealth::Availability::unsupported);
  }
  CHECK(hwhealth::verdict(s) == hwhealth::Verdict::unknown);
}

TEST_CASE("the collector numbers its polls, keeps the last, and judges a rise against it") {
  auto owned = healthy_fake();
  hwhealth::FakeHealthSource& fake = *owned;
  hwhealth::Collector collector(std::move(owned));
  CHECK(collector.last() == nullptr);
  const hwhealth::Snapshot first = collector.poll(1000);
  CHECK(first.poll_number == 1);
  CHECK(first.taken_unix_ms == 1000);
  CHECK(first.sources[0].name == "smart");
  CHECK(first.sources[4].name == "disk_errors");
  CHECK(first.findings.empty());
  CHECK(hwhealth::verdict(first) == hwhealth::Verdict::ok);

  for (hwhealth::AtaAttribute& a : fake.smart.value.ata->data.attributes) {
    if (a.id == hwhealth::kAtaReallocatedSectors) a.raw = 3;
  }
  const hwhealth::Snapshot second = collector.poll(2000);
  CHECK(second.poll_number == 2);
  CHECK(has(second.findings, "ata.reallocated_rose"));
  CHECK(has(second.findings, "ata.reallocated"));
  REQUIRE(collector.last() != nullptr);
  CHECK(collector.last()->poll_number == 2);
  CHECK(fake.smart_read_count == 2);

  const hwhealth::Snapshot third = collector.poll(3000);
  CHECK_FALSE(has(third.findings, "ata.reallocated_rose"));  // no new rise
  CHECK(has(third.findings, "ata.reallocated"));
}

// Found in review: a failing drive whose SMART stopped answering was reported
// "Cleared", and pending sectors that rose meanwhile were never reported.
TEST_CASE("a source that cannot be read keeps what it said: nothing cleared, a rise meanwhile reported later") {
  FailingDrive drive;
  hwhealth::FakeHealthSource& fake = drive.fake;
  hwhealth::Collector& collector = drive.collector;
  REQUIRE(has(drive.first.findings, "ata.failing"));
  REQUIRE(has(drive.first.findings, "ata.pending"));
  const hwhealth::Baseline before_failure = *collector.last();

  fake.fail(hwhealth::kSourceSmart, hwhealth::Availability::failed, "SG_IO: Input/output error");
  const hwhealth::Snapshot unread = collector.poll(2000);
  std::vector<hwhealth::Change> changes = hwhealth::diff(before_failure, unread);
  bool source_warned = false;
  for (const hwhealth::Change& c : changes) {
    CAPTURE(c.sentence);
    CHECK(c.kind != hwhealth::Change::Kind::finding_cleared);
    if (c.kind == hwhealth::Change::Kind::source_changed && c.key == "smart")
      source_warned = c.severity == hwhealth::Severity::warning;
  }
  CHECK(source_warned);  // a disk that answered before and now fails to
  // Found in review: the poll's own verdict said "unknown" (SMART unread) for
  // a drive known to be failing; what stands is in the snapshot, marked.
  CHECK(hwhealth::verdict(unread) == hwhealth::Verdict::critical);
  const auto carried = std::find_if(unread.findings.begin(), unread.findings.end(),
                                    [](const hwhealth::Finding& f) { return f.code == "ata.failing"; });
  REQUIRE(carried != unread.findings.end());
  CHECK(hwhealth::figure(*carried, "as_of_poll") == "1");
  CHECK(hwhealth::format_text(unread).find("ata.failing") != std::string::npos);
  const hwhealth::Baseline kept = *collector.last();
  CHECK(std::count_if(kept.findings.begin(), kept.findings.end(),
                      [](const hwhealth::Finding& f) { return f.code == "ata.failing"; }) == 1);

  fake.set_ata("/dev/sda", drive.failing);
  raw_of(fake, hwhealth::kAtaPendingSectors) = 8;
  const hwhealth::Snapshot back = collector.poll(3000);
  changes = hwhealth::diff(kept, back);
  bool rose = false;
  for (const hwhealth::Change& c : changes) {
    CAPTURE(c.sentence);
    CHECK_FALSE((c.kind == hwhealth::Change::Kind::finding_new && c.finding.code == "ata.failing"));  // not news
    if (c.kind == hwhealth::Change::Kind::counter_rose && c.key == "ata.pending_sectors")
      rose = c.before == 3 && c.after == 8;
  }
  CHECK(rose);
  CHECK(has(back.findings, "ata.pending_rose"));
}

TEST_CASE("a source that is gone (unsupported) clears what it said; one we may not ask keeps it") {
  FailingDrive drive;
  hwhealth::FakeHealthSource& fake = drive.fake;
  hwhealth::Collector& collector = drive.collector;
  fake.fail(hwhealth::kSourceSmart, hwhealth::Availability::no_permission, "needs CAP_SYS_RAWIO");
  hwhealth::Baseline before = *collector.last();
  std::vector<hwhealth::Change> changes = hwhealth::diff(before, collector.poll(2000));
  for (const hwhealth::Change& c : changes) CHECK(c.kind != hwhealth::Change::Kind::finding_cleared);
  fake.set_ata("/dev/sda", drive.failing);
  (void)collector.poll(3000);
  fake.fail(hwhealth::kSourceSmart, hwhealth::Availability::unsupported, "the disk is gone");
  before = *collector.last();
  changes = hwhealth::diff(before, collector.poll(4000));
  bool cleared = false;
  for (const hwhealth::Change& c : changes)
    cleared = cleared || (c.kind == hwhealth::Change::Kind::finding_cleared && c.finding.code == "ata.failing");
  CHECK(cleared);
  CHECK_FALSE(has(collector.last()->findings, "ata.failing"));
}

TEST_CASE("a restored baseline continues the numbering and is the baseline for rises") {
  auto owned = healthy_fake();
  hwhealth::FakeHealthSource& fake = *owned;
  hwhealth::Collector collector(std::move(owned));
  (void)collector.poll(1000);
  REQUIRE(collector.last() != nullptr);
  hwhealth::Baseline stored = *collector.last();
  stored.poll_number = 41;
  hwhealth::Collector restarted(std::make_unique<hwhealth::FakeHealthSource>(fake));
  restarted.restore(stored);
  hwhealth::FakeHealthSource& again = static_cast<hwhealth::FakeHealthSource&>(restarted.source());
  again.disk_errors.value->io_errors = 2;
  const hwhealth::Snapshot next = restarted.poll(2000);
  CHECK(next.poll_number == 42);
  CHECK(has(next.findings, "disk.io_errors_rose"));
}

TEST_CASE("a source the fake fails is reported with its availability and reason") {
  auto owned = healthy_fake();
  owned->fail(hwhealth::kSourceSmart, hwhealth::Availability::no_permission, "needs CAP_SYS_RAWIO");
  hwhealth::Collector collector(std::move(owned));
  const hwhealth::Snapshot s = collector.poll(1);
  const hwhealth::Source* smart = s.source(hwhealth::kSourceSmart);
  REQUIRE(smart != nullptr);
  CHECK(smart->availability == hwhealth::Availability::no_permission);
  CHECK(smart->reason == "needs CAP_SYS_RAWIO");
  CHECK_FALSE(s.smart.ata.has_value());
  CHECK(hwhealth::verdict(s) == hwhealth::Verdict::unknown);
}

TEST_CASE("a regular file as the target: SMART and disk errors unsupported because it is a file") {
  TempDir dir;
  REQUIRE(dir.ok());
  std::ofstream(dir.file("disk.img")) << std::string(4096, '\0');
  dir.write("sys/class/hwmon/hwmon0/name", "coretemp\n");
  dir.write("sys/class/hwmon/hwmon0/temp1_input", "41000\n");
  hwhealth::Collector collector(hwhealth::make_system_health_source(dir.file("disk.img"), dir.file("sys")));
  const hwhealth::Snapshot s = collector.poll(1);
  const hwhealth::Source* smart = s.source(hwhealth::kSourceSmart);
  REQUIRE(smart != nullptr);
  CHECK(smart->availability == hwhealth::Availability::unsupported);
  CHECK(contains(smart->reason, "the target " + dir.file("disk.img") + " is a file, not a disk"));
  CHECK(s.smart.device == dir.file("disk.img"));
  CHECK(s.source(hwhealth::kSourceDiskErrors)->availability == hwhealth::Availability::unsupported);
  CHECK(s.source(hwhealth::kSourceTemperatures)->supported());
  REQUIRE(s.temperatures.size() == 1);
  CHECK(s.temperatures[0].input_millicelsius == 41000);
  CHECK(s.source(hwhealth::kSourceMemoryEcc)->availability == hwhealth::Availability::unsupported);
  CHECK(s.source(hwhealth::kSourceBattery)->availability == hwhealth::Availability::unsupported);
  CHECK(hwhealth::verdict(s) == hwhealth::Verdict::unknown);
}

TEST_CASE("a target that does not exist fails, and says so") {
  TempDir dir;
  REQUIRE(dir.ok());
  auto source = hwhealth::make_system_health_source(dir.file("missing"), dir.path());
  const hwhealth::Reading<hwhealth::SmartReading> smart = source->read_smart();
  CHECK(smart.source.availability == hwhealth::Availability::failed);
  CHECK(contains(smart.source.reason, "cannot find the target"));
}
