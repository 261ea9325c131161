// SPDX-License-Identifier: MIT
// Fuzz target: decode_report and decode_baseline over untrusted bytes (a
// health report comes from the link, a baseline from a state store that may
// be damaged). Whatever decodes must encode again to bytes that decode (a
// baseline: to the same value), and stay within the limits.
#include <cassert>
#include <cstddef>
#include <cstdint>

#include "hwhealth/baseline.h"
#include "hwhealth/report.h"

namespace {

void fuzz_baseline(base::ByteSpan input) {
  base::Result<hwhealth::Baseline> baseline = hwhealth::decode_baseline(input);
  if (!baseline) return;
  assert(baseline->sources.size() <= hwhealth::kBaselineSourcesMax);
  assert(baseline->counters.size() <= hwhealth::kBaselineCountersMax);
  assert(baseline->findings.size() <= hwhealth::kFindingsMax);
  base::Result<hwhealth::Baseline> back = hwhealth::decode_baseline(hwhealth::encode_baseline(*baseline));
  assert(back.is_ok() && *back == *baseline);
  (void)back;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz_baseline(base::ByteSpan(data, size));
  base::Result<hwhealth::Report> report = hwhealth::decode_report(base::ByteSpan(data, size));
  if (!report) return 0;
  assert(report->sources.size() <= hwhealth::kReportSourcesMax);
  assert(report->findings.size() <= hwhealth::kFindingsMax);
  assert(report->changes.size() <= hwhealth::kChangesMax);
  (void)hwhealth::format_report_text(*report);
  (void)hwhealth::format_report_json(*report);
  const base::Bytes again = hwhealth::encode_report(*report);
  assert(again.size() <= hwhealth::kReportBytesMax);
  base::Result<hwhealth::Report> back = hwhealth::decode_report(again);
  assert(back.is_ok());
  (void)back;
  return 0;
}
