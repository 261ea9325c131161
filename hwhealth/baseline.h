// SPDX-License-Identifier: MIT
// What a poll is judged against: the part of the previous Snapshot that
// assess() and diff() compare with (docs/HEALTH.md, "Baseline").
//
// A counter rose, a lasting finding appeared or cleared, a source changed
// its availability: each is a comparison with the poll before. The daemon
// keeps the last poll's Baseline in the state store, so that the first poll
// after a restart (after every boot of the clone) compares against it and
// does not report again what the original has already been told, and a
// counter that rose while the daemon was down is still seen to rise.
//
// decode_baseline() reads bytes from the state store, which a person or a
// bad disk may have damaged: every count and length is bounded, every enum
// checked, trailing bytes refused. A baseline that cannot be read is no
// baseline: the caller starts as on a first poll.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"
#include "hwhealth/finding.h"
#include "hwhealth/snapshot.h"
#include "hwhealth/source.h"

namespace hwhealth {

inline constexpr uint8_t kBaselineVersion = 1;
inline constexpr size_t kBaselineSourcesMax = 8;
inline constexpr size_t kBaselineCountersMax = 256;

struct Baseline {
  uint64_t poll_number = 0;  // the poll it was taken from
  int64_t taken_unix_ms = 0;
  std::vector<Source> sources;
  std::vector<Counter> counters;  // error_counters(), sorted by key
  std::vector<Finding> findings;  // the lasting findings (events are never compared)

  const Source* source(std::string_view name) const;
  bool operator==(const Baseline&) const = default;
};

// The baseline a poll leaves for the next one. What a source that did not
// answer in `snapshot` (source_unanswered) said in `previous` (its counters and lasting
// findings) stands: the next poll that reads it compares with that, so a
// counter that rose meanwhile is reported then and a finding is not cleared.
Baseline baseline_of(const Snapshot& snapshot, const Baseline* previous = nullptr);

// The lasting findings of `previous` whose source did not answer in
// `snapshot` (source_unanswered) and that `snapshot` does not hold: they
// stand, in the snapshot too (its verdict and text: a failing drive whose
// SMART stops answering is still critical, not "unknown"). Each carries the
// figure `as_of_poll`, the poll that last read it.
std::vector<Finding> carried_findings(const Baseline& previous, const Snapshot& snapshot);

// Version byte, then the fields (layout in baseline.cpp). Strings longer
// than the report limits (report.h) are cut; lists are cut to their bounds.
base::Bytes encode_baseline(const Baseline& baseline);
base::Result<Baseline> decode_baseline(base::ByteSpan bytes);

}  // namespace hwhealth
