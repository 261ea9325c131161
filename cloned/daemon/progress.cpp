// SPDX-License-Identifier: MIT
#include "cloned/daemon/progress.h"

#include <cstdio>

#include "base/units.h"

namespace cloned {

const char* progress_kind_name(proto::ProgressKind k) { return k == proto::ProgressKind::resync ? "resync" : "verify"; }

bool MaintenanceProgress::note(const proto::Progress& p, uint64_t now) {
  if (!active_ || kind_ != p.kind || p.done_bytes < done_bytes_) {
    *this = MaintenanceProgress{};
    active_ = true;
    kind_ = p.kind;
    first_ms_ = now;
    first_done_ = p.done_bytes;
    last_log_ms_ = now;
  }
  done_bytes_ = p.done_bytes;
  total_bytes_ = p.total_bytes;
  updated_ms_ = now;
  if (now > first_ms_)
    rate_bytes_per_s_ = static_cast<double>(p.done_bytes - first_done_) * 1000.0 / static_cast<double>(now - first_ms_);
  if (p.done_bytes >= p.total_bytes) {
    active_ = false;
    return true;
  }
  if (now - last_log_ms_ >= kLogIntervalMs) {
    last_log_ms_ = now;
    return true;
  }
  return false;
}

bool MaintenanceProgress::fresh(proto::ProgressKind kind, uint64_t now) const {
  return active_ && kind_ == kind && now - updated_ms_ < kFreshMs;
}

std::string MaintenanceProgress::line() const { return std::string(progress_kind_name(kind_)) + " " + text(); }

std::string MaintenanceProgress::text() const {
  if (total_bytes_ == 0) return "";
  char line[160];
  const double pct = 100.0 * static_cast<double>(done_bytes_) / static_cast<double>(total_bytes_);
  std::string eta = "ETA unknown";
  if (rate_bytes_per_s_ > 0 && done_bytes_ < total_bytes_)
    eta = "ETA " +
          std::to_string(static_cast<uint64_t>(static_cast<double>(total_bytes_ - done_bytes_) / rate_bytes_per_s_)) +
          " s";
  else if (done_bytes_ >= total_bytes_)
    eta = "done";
  std::snprintf(line, sizeof line, "%.1f%% (%s of %s), %s/s, %s", pct, base::format_bytes(done_bytes_).c_str(),
                base::format_bytes(total_bytes_).c_str(),
                base::format_bytes(static_cast<uint64_t>(rate_bytes_per_s_)).c_str(), eta.c_str());
  return line;
}

}  // namespace cloned
