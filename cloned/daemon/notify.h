// SPDX-License-Identifier: MIT
// Talking to systemd (Type=notify): READY once listening, STATUS lines with
// the state and the lag, WATCHDOG pings from the event loop, STOPPING on the
// way out. All calls are no-ops when not run under systemd ($NOTIFY_SOCKET
// unset). Called from the loop thread only.
#pragma once

#include <cstdint>
#include <string>

namespace cloned {

class Notifier {
 public:
  Notifier();
  bool under_systemd() const { return under_systemd_; }
  // 0 when systemd asked for no watchdog; otherwise ping at least this often.
  uint64_t watchdog_interval_ms() const { return watchdog_interval_ms_; }

  void ready(const std::string& status);
  void status(const std::string& status);  // sent only when it changed
  // Pings the watchdog if half its period has passed since the last ping.
  void watchdog(uint64_t now_ms);
  void stopping(const std::string& status);

 private:
  bool under_systemd_ = false;
  uint64_t watchdog_interval_ms_ = 0;
  uint64_t last_ping_ms_ = 0;
  std::string last_status_;
};

}  // namespace cloned
