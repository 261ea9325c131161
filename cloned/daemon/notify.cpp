// SPDX-License-Identifier: MIT
#include "cloned/daemon/notify.h"

#include <systemd/sd-daemon.h>

#include <cstdlib>

#include "base/log.h"

namespace cloned {

Notifier::Notifier() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  under_systemd_ = socket != nullptr && *socket != '\0';
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) watchdog_interval_ms_ = usec / 2000;  // half the period
}

void Notifier::ready(const std::string& status) {
  if (!under_systemd_) return;
  last_status_ = status;
  if (sd_notifyf(0, "READY=1\nSTATUS=%s", status.c_str()) < 0) LOG_WARN("could not tell systemd that cloned is ready");
}

void Notifier::status(const std::string& status) {
  if (!under_systemd_ || status == last_status_) return;
  last_status_ = status;
  sd_notifyf(0, "STATUS=%s", status.c_str());
}

void Notifier::watchdog(uint64_t now_ms) {
  if (!under_systemd_ || watchdog_interval_ms_ == 0 || now_ms - last_ping_ms_ < watchdog_interval_ms_) return;
  last_ping_ms_ = now_ms;
  sd_notify(0, "WATCHDOG=1");
}

void Notifier::stopping(const std::string& status) {
  if (!under_systemd_) return;
  sd_notifyf(0, "STOPPING=1\nSTATUS=%s", status.c_str());
}

}  // namespace cloned
