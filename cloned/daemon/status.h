// SPDX-License-Identifier: MIT
// The running daemon's live status, answered as a small TOML document on the
// control socket ("status", see control.h) and read by `clonectl status`. The
// state store holds what must survive; this holds what is live: the link, the
// lag, the counters.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"

namespace cloned {

struct LiveStatus {
  int64_t pid = 0;
  int64_t updated_unix_ms = 0;
  std::string state;          // fresh, consistent, inconsistent, diverged
  std::string state_reason;
  bool disk_failed = false;
  uint64_t generation = 0;
  uint64_t applied_seq = 0;   // durable on the disk
  uint64_t applied_epoch = 0;
  uint64_t committed_seq = 0; // in the state store
  // After an unclean stop the disk may hold whole epochs past applied_seq,
  // up to this record, until the original's next session; 0 = none.
  uint64_t unclean_until_seq = 0;
  uint64_t original_log_end = 0;
  // The newest mark of the original's log the clone holds ("" = none yet).
  std::string last_mark;
  uint64_t last_mark_seq = 0;
  std::string link;           // "connected", "waiting" or "stopped"
  std::string peer;
  int64_t session_since_unix_ms = 0;
  uint64_t sessions = 0;
  uint64_t refused = 0;
  uint64_t bytes_received = 0;
  uint64_t records_received = 0;
  uint64_t held_bytes = 0;
  std::string disk;
  std::string listen;
  // A resync or verify the original reported: "resync 45.0% (460 MiB of
  // 1 GiB), 120 MiB/s, ETA 5 s"; "" when none runs.
  std::string progress;
  // Waking (docs/WAKE.md); wake_arm "not_configured" without [wake] interface.
  std::string wake_interface;
  std::string wake_mac;
  std::string wake_arm = "not_configured";  // armed, unsupported, no_permission, error, disarmed
  std::string wake_reason;
  std::string wake_power;        // the backend: logind, sysfs, test-double
  std::string wake_phase;        // awake, "preparing to sleep", "going to sleep", asleep; "" when not configured
  std::string wake_decision;     // why the clone is awake now
  uint64_t wake_idle_sleep_s = 0;
  uint64_t wake_sleep_count = 0;
  int64_t wake_last_sleep_unix_ms = 0;
  int64_t wake_last_wake_unix_ms = 0;
};

// The TOML document, and back. decode names what is wrong with a bad document.
std::string encode_live_status(const LiveStatus& s);
base::Result<LiveStatus> decode_live_status(const std::string& text);

// The one-line wake summary clonectl status shows (wake_status.cpp).
std::string wake_status_line(const LiveStatus& s);

}  // namespace cloned
