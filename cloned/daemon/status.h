// SPDX-License-Identifier: MIT
// The running daemon's status, published as a small TOML file in the runtime
// directory (rewritten atomically about once a second and on every change of
// state), read by `clonectl status`. The state store holds what must survive;
// this file holds what is live: the link, the lag, the counters.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"

namespace cloned {

struct LiveStatus {
  int64_t pid = 0;
  int64_t updated_unix_ms = 0;
  std::string state;          // fresh, consistent, inconsistent
  std::string state_reason;
  bool disk_failed = false;
  uint64_t generation = 0;
  uint64_t applied_seq = 0;   // durable on the disk
  uint64_t applied_epoch = 0;
  uint64_t committed_seq = 0; // in the state store
  uint64_t original_log_end = 0;
  std::string link;           // "connected" or "waiting"
  std::string peer;
  int64_t session_since_unix_ms = 0;
  uint64_t sessions = 0;
  uint64_t refused = 0;
  uint64_t bytes_received = 0;
  uint64_t records_received = 0;
  uint64_t held_bytes = 0;
  std::string disk;
  std::string listen;
  // Waking (docs/WAKE.md); wake_arm "not_configured" without [wake] interface.
  std::string wake_interface;
  std::string wake_mac;
  std::string wake_arm = "not_configured";  // armed, unsupported, no_permission, error, disarmed
  std::string wake_reason;
  std::string wake_power;        // the backend: logind, sysfs, test-double
  std::string wake_phase;        // awake, preparing, asleep; "" when not configured
  std::string wake_decision;     // why the clone is awake now
  uint64_t wake_idle_sleep_s = 0;
  uint64_t wake_sleep_count = 0;
  int64_t wake_last_sleep_unix_ms = 0;
  int64_t wake_last_wake_unix_ms = 0;
};

// The one-line wake summary clonectl status shows (wake_status.cpp).
std::string wake_status_line(const LiveStatus& s);

inline constexpr const char* kStatusFileName = "status.toml";

base::Status write_live_status(const std::string& runtime_dir, const LiveStatus& s);
base::Result<LiveStatus> read_live_status(const std::string& runtime_dir);

int64_t unix_ms_now();

}  // namespace cloned
