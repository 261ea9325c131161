// SPDX-License-Identifier: MIT
#include "cloned/daemon/sleep_policy.h"

namespace cloned {

const char* to_string(SleepVerdict v) {
  switch (v) {
    case SleepVerdict::sleep: return "sleep";
    case SleepVerdict::disabled: return "disabled";
    case SleepVerdict::not_idle_long: return "not idle long enough";
    case SleepVerdict::session_open: return "session open";
    case SleepVerdict::work_pending: return "work pending";
    case SleepVerdict::mid_epoch: return "mid-epoch";
    case SleepVerdict::resync_active: return "resync active";
    case SleepVerdict::verify_active: return "verify active";
    case SleepVerdict::unarmed: return "unarmed";
  }
  return "unknown";
}

SleepPolicy::SleepPolicy(uint64_t idle_sleep_ms, uint64_t start_ms)
    : idle_sleep_ms_(idle_sleep_ms), idle_since_ms_(start_ms) {}

void SleepPolicy::restart_idle(uint64_t now_ms) {
  idle_since_ms_ = now_ms;
  unarmed_reported_ = false;
}

SleepDecision SleepPolicy::decide(const SleepInputs& in) {
  SleepDecision d;
  // The hard conditions first: each of them also restarts the idle time, so
  // the clone sleeps only after idle_sleep_ms of real quiet.
  auto busy = [&](SleepVerdict v, const char* why) {
    idle_since_ms_ = in.now_ms;
    d.verdict = v;
    d.why = why;
    return d;
  };
  if (in.mid_epoch) return busy(SleepVerdict::mid_epoch, "an epoch is half received; the clone stays awake until its barrier is durable.");
  if (in.resync_active) return busy(SleepVerdict::resync_active, "a resync is running; the clone stays awake until it ends.");
  if (in.verify_active) return busy(SleepVerdict::verify_active, "a verify is running; the clone stays awake until it ends.");
  if (in.work_pending) return busy(SleepVerdict::work_pending, "acknowledged work is not yet durable and committed.");
  if (in.session_open && !in.sleep_requested) return busy(SleepVerdict::session_open, "an original is connected.");
  if (!in.sleep_requested) {
    if (idle_sleep_ms_ == 0) {
      d.verdict = SleepVerdict::disabled;
      d.why = "sleeping when idle is off (wake.idle_sleep_s = 0).";
      return d;
    }
    if (in.now_ms < idle_since_ms_ + idle_sleep_ms_) {
      d.verdict = SleepVerdict::not_idle_long;
      d.why = "idle for " + std::to_string((in.now_ms - idle_since_ms_) / 1000) + " s of " +
              std::to_string(idle_sleep_ms_ / 1000) + " s.";
      return d;
    }
  }
  if (!in.armed) {
    d.verdict = SleepVerdict::unarmed;
    d.why = "the clone would sleep now but stays awake: magic-packet wake is not armed (" +
            (in.unarmed_reason.empty() ? std::string("no reason given") : in.unarmed_reason) +
            "), and asleep it could not be woken.";
    d.report_unarmed = !unarmed_reported_;
    unarmed_reported_ = true;
    return d;
  }
  d.verdict = SleepVerdict::sleep;
  d.why = in.sleep_requested ? "the original asked the clone to sleep." : "idle for the configured time.";
  return d;
}

}  // namespace cloned
