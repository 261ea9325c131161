// SPDX-License-Identifier: MIT
// Fuzz target: decode_report over untrusted bytes (a health report comes from
// the link). Whatever decodes must encode again to bytes that decode to the
// same report, and stay within the limits.
#include <cassert>
#include <cstddef>
#include <cstdint>

#include "hwhealth/report.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
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
