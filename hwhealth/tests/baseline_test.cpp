// SPDX-License-Identifier: MIT
// The Baseline: what it keeps of a snapshot, its bytes, and that a poll
// compared against a stored baseline reports only what changed since.
#include <doctest/doctest.h>

#include "hwhealth/assess.h"
#include "hwhealth/baseline.h"
#include "hwhealth/tests/snapshots.h"
#include "hwhealth/tests/test_support.h"

using namespace hwhealth;

namespace {

// A machine with a lasting finding (pending sectors), an event finding (they
// rose), a source that is not there, and a memory controller.
Snapshot troubled_snapshot(uint64_t poll_number) {
  const Snapshot first = [] {
    Snapshot s = hwhealth_test::healthy_snapshot(1);
    s.findings = assess(s, nullptr);
    return s;
  }();
  Snapshot s = hwhealth_test::healthy_snapshot(poll_number);
  hwhealth_test::ata_attribute(s, 197).raw = 3;
  hwhealth_test::make_unavailable(s, kSourceBattery, Availability::unsupported, "no battery in this machine");
  const Baseline before = baseline_of(first);
  s.findings = assess(s, &before);
  return s;
}

bool has_code(const std::vector<Finding>& findings, const std::string& code) {
  for (const Finding& f : findings) {
    if (f.code == code) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("a baseline keeps the sources, the error counters and the lasting findings, not the events") {
  const Snapshot s = troubled_snapshot(7);
  REQUIRE(has_code(s.findings, "ata.pending"));
  REQUIRE(has_code(s.findings, "ata.pending_rose"));  // an event
  const Baseline b = baseline_of(s);
  CHECK(b.poll_number == 7);
  CHECK(b.taken_unix_ms == s.taken_unix_ms);
  CHECK(b.sources == s.sources);
  REQUIRE(b.source(kSourceBattery) != nullptr);
  CHECK(b.source(kSourceBattery)->reason == "no battery in this machine");
  CHECK(b.source("nonsense") == nullptr);
  const std::vector<Counter> counters = error_counters(s);
  REQUIRE(b.counters.size() == counters.size());
  for (size_t i = 0; i < counters.size(); ++i) {
    CHECK(b.counters[i].key == counters[i].key);
    CHECK(b.counters[i].value == counters[i].value);
  }
  CHECK(has_code(b.findings, "ata.pending"));
  CHECK_FALSE(has_code(b.findings, "ata.pending_rose"));
}

TEST_CASE("a baseline survives encoding and decoding unchanged") {
  const Baseline b = baseline_of(troubled_snapshot(9));
  const base::Bytes bytes = encode_baseline(b);
  CHECK(bytes[0] == kBaselineVersion);
  base::Result<Baseline> back = decode_baseline(bytes);
  REQUIRE_MESSAGE(back.is_ok(), back.status().message());
  CHECK(*back == b);
  base::Result<Baseline> empty = decode_baseline(encode_baseline(Baseline{}));
  REQUIRE(empty.is_ok());
  CHECK(*empty == Baseline{});
}

TEST_CASE("every truncation of a baseline is refused, and so are trailing bytes, another version and bad counts") {
  const base::Bytes bytes = encode_baseline(baseline_of(troubled_snapshot(9)));
  for (size_t n = 0; n < bytes.size(); ++n) {
    CAPTURE(n);
    CHECK_FALSE(decode_baseline(base::ByteSpan(bytes).first(n)).is_ok());
  }
  base::Bytes longer = bytes;
  longer.push_back(0);
  base::Result<Baseline> r = decode_baseline(longer);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().message().find("follow its end") != std::string::npos);

  base::Bytes other = bytes;
  other[0] = 2;
  r = decode_baseline(other);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().message() == "malformed health baseline: version 2 is not 1");
  base::Bytes many = bytes;
  many[17] = 200;  // the source count, after version, poll number and time
  CHECK_FALSE(decode_baseline(many).is_ok());
  base::Bytes bad_enum = bytes;
  bad_enum[18 + 2 + 5] = 9;  // the first source's availability, after "smart"
  CHECK_FALSE(decode_baseline(bad_enum).is_ok());
}

TEST_CASE("against a stored baseline, an unchanged poll reports nothing and a counter that rose meanwhile is reported") {
  const Snapshot before_restart = troubled_snapshot(4);
  const Baseline stored = decode_baseline(encode_baseline(baseline_of(before_restart))).value();

  // The first poll after a restart, nothing changed: no finding, source or
  // counter is news (with no baseline, all of them would be).
  Snapshot same = troubled_snapshot(5);
  same.findings = assess(same, &stored);
  CHECK(diff(stored, same).empty());
  CHECK_FALSE(diff(Baseline{}, same).empty());

  // The pending sectors rose from 3 to 8 while the daemon was down.
  Snapshot rose = troubled_snapshot(5);
  hwhealth_test::ata_attribute(rose, 197).raw = 8;
  rose.findings = assess(rose, &stored);
  CHECK(has_code(rose.findings, "ata.pending_rose"));
  const std::vector<Change> changes = diff(stored, rose);
  bool counter = false;
  for (const Change& c : changes) {
    if (c.kind == Change::Kind::counter_rose && c.key == "ata.pending_sectors" && c.before == 3 && c.after == 8)
      counter = true;
    CHECK(c.kind != Change::Kind::finding_cleared);
    CHECK(c.kind != Change::Kind::source_changed);
  }
  CHECK(counter);
}
