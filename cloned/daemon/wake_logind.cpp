// SPDX-License-Identifier: MIT
// The Waker's logind backend (wake.h): a delay lock held while awake, so that
// a suspend started elsewhere (the lid, a user) waits until the NIC is
// re-armed; PrepareForSleep(false) is the resume. The bus is polled inside
// the loop.
#include <poll.h>
#include <time.h>

#include "base/log.h"
#include "cloned/daemon/wake.h"

namespace cloned {

namespace {
constexpr const char* kDelayLockWhy = "cloned makes its work durable and re-arms Wake-on-LAN";
}  // namespace

void Waker::setup_logind() {
  base::Result<std::unique_ptr<wol::LogindPower>> bus = wol::LogindPower::connect_system_bus();
  if (!bus) {
    power_error_ = "cannot reach systemd-logind: " + bus.status().message() +
                   " (set [wake] power = \"sysfs\" on systems without it)";
    return;
  }
  logind_ = bus->get();
  power_ = std::move(*bus);
  logind_->set_sleep_failure_handler([this](const base::Status& s) { on_resumed(s); });
  // Without PrepareForSleep a clone asleep by its request never hears its
  // resume (found in review): it does not sleep at all then.
  if (base::Status s = logind_->watch_prepare_for_sleep([this](bool going) { on_prepare_for_sleep(going); });
      !s.is_ok())
    power_error_ =
        "cannot watch systemd-logind's PrepareForSleep (" + s.message() + "), so a resume would not be heard";
  else if (base::Status lock = logind_->take_delay_lock(kDelayLockWhy); !lock.is_ok())
    LOG_WARN("logind: %s", lock.message().c_str());
  uv_poll_init(loop_, &bus_poll_, logind_->fd());
  bus_poll_.data = this;
  uv_timer_init(loop_, &bus_timer_);
  bus_timer_.data = this;
  bus_open_ = true;
  logind_reschedule();
}

void Waker::on_prepare_for_sleep(bool going) {
  if (going) {
    // Someone else suspends the machine while the clone prepares or leaves
    // for its own sleep: that sleep is moot, or the resume would be followed
    // at once by another suspend (found in review). It listens again.
    if (phase_ == Phase::preparing || phase_ == Phase::leaving) {
      LOG_INFO("a suspend started elsewhere while the clone was about to sleep: it sleeps by that one");
      if (phase_ == Phase::leaving) relisten_pending_ = true;
      stay_awake();
    }
    if (phase_ != Phase::asleep) rearm("before a suspend started elsewhere");  // someone else suspends the machine
    logind_->release_delay_lock();
  } else if (phase_ == Phase::asleep) {
    on_resumed(base::Status::ok());
  } else {
    (void)logind_->take_delay_lock(kDelayLockWhy);
    rearm("after a resume");
  }
}

// One turn of the bus. A connection that failed (logind or the bus daemon
// restarted) is not retried: the resume it would carry can never come, so
// a clone asleep by its request comes back now rather than stay awake with
// its listener closed, and says to restart it.
void Waker::logind_process() {
  if (base::Status s = logind_->process(); !s.is_ok()) return on_bus_lost(s);
  logind_reschedule();
}

void Waker::on_bus_lost(const base::Status& why) {
  if (bus_lost_) return;
  bus_lost_ = true;
  uv_poll_stop(&bus_poll_);
  uv_timer_stop(&bus_timer_);
  const std::string what = "lost the connection to systemd-logind (" + why.message() +
                           "): suspends and resumes are no longer heard; restart cloned";
  LOG_ERROR("%s", what.c_str());
  host_.record_event("error", "wake", what);
  // No more sleeps: each would close the listener for a suspend whose resume
  // nobody hears (found in review: one was tried every idle period).
  if (power_error_.empty()) power_error_ = what;
  if (phase_ == Phase::asleep) return on_resumed(why);
  if (phase_ == Phase::preparing || phase_ == Phase::leaving) {  // its sleep is off: listen again
    if (phase_ == Phase::leaving) relisten_pending_ = true;
    stay_awake();
  }
  rearm("after losing systemd-logind");
}

void Waker::logind_reschedule() {
  if (!bus_open_ || bus_lost_) return;
  const int want = logind_->poll_events();
  uv_poll_start(&bus_poll_, ((want & POLLIN) ? UV_READABLE : 0) | ((want & POLLOUT) ? UV_WRITABLE : 0),
                [](uv_poll_t* p, int, int) { static_cast<Waker*>(p->data)->logind_process(); });
  const uint64_t at_usec = logind_->timeout_usec();
  if (at_usec == UINT64_MAX) {
    uv_timer_stop(&bus_timer_);
    return;
  }
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const uint64_t now_usec = static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
  const uint64_t in_ms = at_usec > now_usec ? (at_usec - now_usec + 999) / 1000 : 0;
  uv_timer_start(
      &bus_timer_, [](uv_timer_t* t) { static_cast<Waker*>(t->data)->logind_process(); }, in_ms, 0);
}

}  // namespace cloned
