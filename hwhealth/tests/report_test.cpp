// SPDX-License-Identifier: MIT
#include <doctest/doctest.h>

#include "hwhealth/assess.h"
#include "hwhealth/baseline.h"
#include "hwhealth/report.h"
#include "hwhealth/tests/snapshots.h"

using namespace hwhealth;

namespace {

Finding io_error_finding() {
  Finding f;
  f.severity = Severity::critical;
  f.code = "disk.io_error";
  f.subject = "/dev/loop3";
  f.sentence = "The clone's disk failed a write: Input/output error (offset=1048576 len=4096).";
  f.figures = {{"op", "write"}, {"errno", "5"}, {"offset_bytes", "1048576"}, {"length_bytes", "4096"}};
  f.event = true;
  return f;
}

Report sample_changes_report() {
  Snapshot before = hwhealth_test::healthy_snapshot(1);
  Snapshot after = hwhealth_test::healthy_snapshot(2);
  after.sources[0] = Source{"smart", Availability::unsupported, "a loop device has no SMART"};
  after.findings.push_back(io_error_finding());
  Report r = make_changes_report(after, diff(baseline_of(before), after));
  return r;
}

}  // namespace

TEST_CASE("a report of changes survives encoding and decoding unchanged") {
  const Report r = sample_changes_report();
  REQUIRE(r.changes.size() >= 2);  // the smart source changed, the finding is new
  CHECK(r.worst() == Severity::critical);
  const base::Bytes bytes = encode_report(r);
  CHECK(bytes[0] == kReportVersion);
  base::Result<Report> back = decode_report(bytes);
  REQUIRE_MESSAGE(back.is_ok(), back.status().message());
  CHECK(*back == r);
  CHECK(back->changes.back().finding.figures.size() == 4);
}

TEST_CASE("a summary report carries every source and lasting finding") {
  Snapshot s = hwhealth_test::healthy_snapshot(7);
  s.findings = assess(s, nullptr);
  s.findings.push_back(Finding{Severity::warning, "temp.over_max", "acpitz/temp1", "hot", {{"current", "90"}}, false});
  const Report r = make_summary_report(s);
  CHECK(r.sources.size() == 5);
  CHECK(r.findings.size() == s.findings.size());
  base::Result<Report> back = decode_report(encode_report(r));
  REQUIRE(back.is_ok());
  CHECK(*back == r);
  CHECK(back->kind == ReportKind::summary);
  CHECK(format_report_json(*back).find("\"temp.over_max\"") != std::string::npos);
  CHECK(format_report_text(*back).find("WARNING temp.over_max") != std::string::npos);
}

TEST_CASE("every truncation of a report is refused, and so are trailing bytes") {
  const base::Bytes bytes = encode_report(sample_changes_report());
  for (size_t n = 0; n < bytes.size(); ++n) {
    CAPTURE(n);
    CHECK_FALSE(decode_report(base::ByteSpan(bytes).first(n)).is_ok());
  }
  base::Bytes longer = bytes;
  longer.push_back(0);
  base::Result<Report> r = decode_report(longer);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().message().find("follow its end") != std::string::npos);
}

TEST_CASE("malformed fields are refused: version, kind, enum values, counts, string lengths") {
  const base::Bytes good = encode_report(sample_changes_report());
  auto refused = [&](size_t at, uint8_t value) {
    base::Bytes b = good;
    b[at] = value;
    return !decode_report(b).is_ok();
  };
  CHECK(refused(0, 2));    // version
  CHECK(refused(1, 0));    // kind
  CHECK(refused(1, 3));
  CHECK(refused(18, 4));   // verdict after version, kind, created, poll
  CHECK(refused(23, 200)); // source count over kReportSourcesMax
  // The first source's name length (u16 at 24) far beyond the limit.
  base::Bytes b = good;
  b[24] = 0xff;
  b[25] = 0xff;
  CHECK_FALSE(decode_report(b).is_ok());
  // The first source's availability byte (after "smart", 2 + 5 bytes).
  CHECK(refused(24 + 2 + 5, 9));
  CHECK_FALSE(decode_report(base::Bytes(kReportBytesMax + 1, 1)).is_ok());
}

TEST_CASE("a report over the byte budget drops its least severe items and counts them") {
  Snapshot s = hwhealth_test::healthy_snapshot(3);
  std::vector<Change> changes;
  for (int i = 0; i < 400; ++i) {
    Change c;
    c.kind = Change::Kind::counter_rose;
    c.key = "counter." + std::to_string(i);
    c.sentence = std::string(300, 'x');
    changes.push_back(c);
  }
  Change critical;
  critical.kind = Change::Kind::finding_new;
  critical.severity = Severity::critical;
  critical.finding = io_error_finding();
  critical.key = critical.finding.identity();
  critical.sentence = critical.finding.sentence;
  changes.push_back(critical);
  const base::Bytes bytes = encode_report(make_changes_report(s, changes));
  CHECK(bytes.size() <= kReportBytesMax);
  base::Result<Report> back = decode_report(bytes);
  REQUIRE(back.is_ok());
  CHECK(back->omitted_count > 0);
  CHECK(back->changes.size() + back->omitted_count == changes.size());
  CHECK(back->changes.front().severity == Severity::critical);  // kept
}
