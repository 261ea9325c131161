// SPDX-License-Identifier: MIT
// A health report: what the clone tells the original about its hardware,
// as a value and as versioned bytes (docs/HEALTH.md, "Reports").
//
// The daemon makes one report of changes per poll that changed something
// and a periodic summary; each travels over the link as the payload of a
// health_report message and waits in the state store until acknowledged.
// decode_report() takes untrusted bytes (they cross the link): every count
// and length is bounded, every enum checked, trailing bytes refused.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"
#include "hwhealth/codec.h"
#include "hwhealth/snapshot.h"

namespace hwhealth {

inline constexpr uint8_t kReportVersion = 1;
// An encoded report never exceeds this (it fits one frame from the clone,
// which the original reads with a 64 KiB limit); items that do not fit are
// left out, critical ones last, and counted in omitted_count.
inline constexpr size_t kReportBytesMax = 48 * 1024;
inline constexpr size_t kReportSourcesMax = 8;
inline constexpr size_t kReportFiguresMax = codec::kFiguresMax;
inline constexpr size_t kReportTextBytesMax = codec::kTextBytesMax;  // sentences, reasons
inline constexpr size_t kReportNameBytesMax = codec::kNameBytesMax;  // codes, subjects, keys, figure keys and values

enum class ReportKind : uint8_t {
  changes = 1,  // what changed since the previous poll
  summary = 2,  // the whole assessment: every source and lasting finding
};
const char* report_kind_name(ReportKind kind);  // "changes", "summary"

struct Report {
  ReportKind kind = ReportKind::changes;
  int64_t created_unix_ms = 0;
  uint64_t poll_number = 0;
  Verdict verdict = Verdict::unknown;
  std::vector<Source> sources;    // every source of the snapshot, with its availability
  std::vector<Finding> findings;  // summary: the snapshot's findings; changes: empty
  std::vector<Change> changes;    // changes: the changes; summary: empty
  uint32_t omitted_count = 0;     // findings or changes left out to fit kReportBytesMax

  // The worst severity among its findings and changes (info when none).
  Severity worst() const;
  bool operator==(const Report&) const = default;
};

Report make_changes_report(const Snapshot& snapshot, std::vector<Change> changes);
Report make_summary_report(const Snapshot& snapshot);

// Version byte, then the fields (docs/HEALTH.md, "Report bytes"). Strings
// longer than their limit are cut (at a UTF-8 boundary); items beyond the
// byte budget are dropped, least severe first, and counted.
base::Bytes encode_report(const Report& report);
base::Result<Report> decode_report(base::ByteSpan bytes);

// For the original's `clone-origin health`: a few lines, and one JSON object.
std::string format_report_text(const Report& report);
std::string format_report_json(const Report& report);

}  // namespace hwhealth
