// SPDX-License-Identifier: MIT
// The progress of a resync or verify as the original reports it (progress
// messages): the rate, the ETA, a line for the log and the status. Pure: the
// caller passes the time. Loop thread only.
#pragma once

#include <cstdint>
#include <string>

#include "proto/resync.h"

namespace cloned {

class MaintenanceProgress {
 public:
  // A report from the original at `now_ms`. A new kind, or fewer bytes done
  // than before, starts a new run (its rate counts from here). Returns true
  // when the line is worth logging: at the end, and every log interval.
  bool note(const proto::Progress& progress, uint64_t now_ms);
  void finish() { active_ = false; }  // the resync completed

  bool active() const { return active_; }
  // Active and reported within the last minute (a run whose reports stopped
  // no longer counts).
  bool fresh(proto::ProgressKind kind, uint64_t now_ms) const;
  bool fresh(uint64_t now_ms) const { return fresh(kind_, now_ms); }
  proto::ProgressKind kind() const { return kind_; }
  // "resync 45.0% (460 MiB of 1 GiB), 120 MiB/s, ETA 5 s"
  std::string line() const;
  // The same without the kind; "" before the total is known.
  std::string text() const;

  static constexpr uint64_t kFreshMs = 60000;
  static constexpr uint64_t kLogIntervalMs = 10000;

 private:
  bool active_ = false;
  proto::ProgressKind kind_ = proto::ProgressKind::resync;
  uint64_t done_bytes_ = 0, total_bytes_ = 0;
  uint64_t first_ms_ = 0, first_done_ = 0;  // for the rate
  uint64_t updated_ms_ = 0, last_log_ms_ = 0;
  double rate_bytes_per_s_ = 0;
};

const char* progress_kind_name(proto::ProgressKind kind);

}  // namespace cloned
