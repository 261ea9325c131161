// SPDX-License-Identifier: MIT
// The Waker's sleep (wake.h): deciding each tick, preparing, leaving the
// original, sleeping on the power backend, and coming back.
#include <cassert>

#include "base/log.h"
#include "base/thread.h"
#include "base/units.h"
#include "cloned/daemon/clock.h"
#include "cloned/daemon/status.h"
#include "cloned/daemon/wake.h"

namespace cloned {

namespace {
constexpr uint64_t kLeaveWaitMs = 2000;  // for the going_to_sleep to reach the original
// Then for the fingerprint of the disk to be taken and committed, at most.
constexpr uint64_t kBaselineWaitMs = 10000;
}  // namespace

void Waker::on_tick(uint64_t now) {
  if (phase_ == Phase::off) return;
  if (relisten_pending_ && phase_ == Phase::awake) relisten();
  if (phase_ == Phase::leaving && (host_.connections_gone() || now >= leave_deadline_ms_)) {
    // Up to 2 s went by since the last look (on_checkpoint): a stop, or a
    // handshake that was under way when the listener closed and has since
    // opened a session, or work that came with it, keeps the clone awake.
    const SleepInputs in = inputs(now);
    if (host_.stopping()) {
      phase_ = Phase::awake;  // the stop goes on; nothing sleeps under it
      return;
    }
    if (in.work_pending || in.mid_epoch || in.resync_active || in.verify_active || in.session_open) {
      LOG_INFO("not sleeping after all: an original connected while the clone was leaving");
      host_.record_event("info", "wake", "not sleeping after all: an original connected while the clone was leaving");
      relisten_pending_ = true;
      relisten();
      return stay_awake();
    }
    // A log session (the one that asked to sleep, usually) invalidated the
    // disk's fingerprint: a new one is taken and committed first, so that a
    // start after the power went while asleep compares the disk with it
    // (docs/DIVERGED.md).
    if (!host_.ready_to_sleep()) {
      if (now < leave_deadline_ms_ + kBaselineWaitMs) return;
      const std::string why = "sleeping before the disk's fingerprint was committed (" +
                              std::to_string(kBaselineWaitMs / 1000) +
                              " s): a change to the disk while the clone sleeps is not found at its next start";
      LOG_WARN("%s", why.c_str());  // found in review: it was silent
      host_.record_event("warning", "sleep", why);
    }
    enter_sleep();
    return;
  }
  if (phase_ != Phase::awake || !host_.may_sleep()) return;
  const SleepDecision d = policy_.decide(inputs(now));
  if (d.report_unarmed) {
    LOG_WARN("%s", d.why.c_str());
    host_.record_event("warning", "wake", d.why);
    announce();
  }
  if (!d.sleep()) {
    if (d.why != decision_) {
      decision_ = d.why;
      host_.publish_status();
    }
    return;
  }
  LOG_NOTICE("going to sleep: %s Checkpointing the state store first.", d.why.c_str());
  decision_ = d.why;
  phase_ = Phase::preparing;
  host_.checkpoint_store();
}

void Waker::stay_awake() {
  phase_ = Phase::awake;
  policy_.restart_idle(now_ms());
}

void Waker::on_checkpoint(const base::Status& s) {
  if (phase_ != Phase::preparing) return;
  if (!s.is_ok()) LOG_WARN("checkpointing the state store failed (the clone sleeps anyway): %s", s.message().c_str());
  const SleepInputs in = inputs(now_ms());
  // Something may have arrived while the store worked: then stay awake.
  if (in.work_pending || in.mid_epoch || in.resync_active || in.verify_active || host_.stopping() ||
      (in.session_open && !in.sleep_requested)) {
    LOG_INFO("not sleeping after all: the original came back or work arrived");
    return stay_awake();
  }
  rearm("before sleeping");
  if (!counts_as_armed_) return stay_awake();
  if (test_double_ != nullptr) {
    // Open the receiver before the listener closes, so no magic packet sent
    // after the original finds the clone silent can be missed.
    if (base::Status r = test_double_->open_receiver(); !r.is_ok()) {
      LOG_ERROR("the power test double cannot watch for magic packets: %s", r.message().c_str());
      return stay_awake();
    }
  }
  leave();
}

// Tells the original, ends its session, stops listening: the original sees a
// refused connection and sends a magic packet (with a real suspend it sees no
// answer at all).
void Waker::leave() {
  announce();
  if (host_.session_ready()) {
    base::Bytes out;
    proto::encode_going_to_sleep({machine_.durable().seq, machine_.committed().seq, decision_}, out);
    host_.send_to_session(out);
    host_.close_session("the clone goes to sleep");
  }
  host_.stop_listening();
  phase_ = Phase::leaving;
  leave_deadline_ms_ = now_ms() + kLeaveWaitMs;
}

void Waker::enter_sleep() {
  ++sleep_count_;
  last_sleep_unix_ms_ = base::unix_ms();
  phase_ = Phase::asleep;
  const uint64_t at = machine_.durable().seq;
  LOG_NOTICE("sleeping (power %s), at record %llu; a magic packet for %s on %s wakes the clone", power_->name(),
             static_cast<unsigned long long>(at), wol::format_mac(mac_).c_str(), settings_.interface.c_str());
  host_.record_event("notice", "sleep", "sleeping at record " + std::to_string(at) + ": " + decision_);
  host_.publish_status();
  if (!power_->returns_after_resume()) {
    // logind: Suspend returns at once; the resume is PrepareForSleep(false).
    if (logind_ != nullptr) logind_->release_delay_lock();
    if (base::Status s = power_->sleep(); !s.is_ok()) on_resumed(s);
    return;
  }
  sleeper_ = std::thread([this] {
    base::name_this_thread("cloned-sleep");
    base::Status s = power_->sleep();
    {
      std::lock_guard<std::mutex> lock(sleep_mutex_);
      sleep_result_ = s;
    }
    uv_async_send(&resumed_);
  });
}

void Waker::on_resumed(const base::Status& result) {
  if (phase_ != Phase::asleep) return;
  phase_ = Phase::awake;
  last_wake_unix_ms_ = base::unix_ms();
  sleep_requested_ = false;
  if (host_.stopping()) return;
  std::string why = result.is_ok() ? "awake again" : "the sleep failed: " + result.message();
  if (result.is_ok() && test_double_ != nullptr) why += " (" + test_double_->last_wake_reason() + ")";
  if (result.is_ok())
    LOG_NOTICE("%s; re-arming and listening", why.c_str());
  else
    LOG_WARN("%s; staying awake and listening", why.c_str());
  host_.record_event(result.is_ok() ? "notice" : "warning", "wake", why);
  // A backend that refuses every suspend (logind's policy, a kernel without
  // the sleep state) is not asked again each idle period for good.
  sleeps_failed_ = result.is_ok() ? 0 : sleeps_failed_ + 1;
  if (sleeps_failed_ >= kSleepFailuresMax && power_error_.empty()) {
    power_error_ = "the last " + std::to_string(sleeps_failed_) + " sleeps failed (the last: " + result.message() +
                   "); the clone stays awake until cloned is restarted";
    LOG_ERROR("%s", power_error_.c_str());
    host_.record_event("error", "wake", power_error_);
  }
  if (logind_ != nullptr) (void)logind_->take_delay_lock("cloned makes its work durable and re-arms Wake-on-LAN");
  if (link_) link_->on_readable();  // re-check the link: changes queued while asleep
  rearm("after waking");
  host_.after_resume();
  relisten_pending_ = true;
  relisten();
  policy_.restart_idle(now_ms());
  host_.publish_status();
}

void Waker::relisten() {
  if (host_.listen_again()) relisten_pending_ = false;
}

void Waker::close_handles() {
  if (!handles_open_) return;
  handles_open_ = false;
  if (test_double_ != nullptr) test_double_->cancel();
  if (sleeper_.joinable()) sleeper_.join();  // before resumed_ closes: the sleeper signals it
  uv_close(reinterpret_cast<uv_handle_t*>(&resumed_), nullptr);
  if (link_) uv_close(reinterpret_cast<uv_handle_t*>(&link_poll_), nullptr);
  if (bus_open_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&bus_poll_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&bus_timer_), nullptr);
    bus_open_ = false;
  }
}

}  // namespace cloned
