// SPDX-License-Identifier: MIT
// The wake line of clonectl status, from the live status file.
#include <ctime>

#include "cloned/daemon/status.h"

namespace cloned {

namespace {

std::string when(int64_t unix_ms) {
  if (unix_ms <= 0) return "never";
  const time_t t = static_cast<time_t>(unix_ms / 1000);
  struct tm tm_local {};
  localtime_r(&t, &tm_local);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm_local);
  return buf;
}

}  // namespace

std::string wake_status_line(const LiveStatus& s) {
  if (s.wake_arm == "not_configured" || s.wake_interface.empty())
    return "not configured (no [wake] interface): the clone never sleeps";
  std::string line = s.wake_interface + " " + (s.wake_mac.empty() ? "(MAC unknown)" : s.wake_mac) + ", ";
  if (s.wake_arm == "armed") {
    line += "armed";
  } else {
    line += s.wake_arm == "unsupported" ? "UNSUPPORTED" : "NOT ARMED (" + s.wake_arm + ")";
    line += ": the clone stays awake";
  }
  if (!s.wake_reason.empty()) line += " (" + s.wake_reason + ")";
  line += "; power " + s.wake_power + ", ";
  line += s.wake_idle_sleep_s == 0 ? std::string("never sleeps when idle")
                                   : "sleeps after " + std::to_string(s.wake_idle_sleep_s) + " s idle";
  line += "; now " + (s.wake_phase.empty() ? std::string("awake") : s.wake_phase);
  if (!s.wake_decision.empty() && s.wake_phase == "awake") line += " (" + s.wake_decision + ")";
  line += "; last sleep " + when(s.wake_last_sleep_unix_ms) + ", last wake " + when(s.wake_last_wake_unix_ms) + ", " +
          std::to_string(s.wake_sleep_count) + " sleeps";
  return line;
}

}  // namespace cloned
