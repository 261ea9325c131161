// SPDX-License-Identifier: MIT
// The Daemon as its parts' host: for the Waker (wake.h, WakeHost) what the
// sleep decision needs to know about sessions and work, and the listener and
// session it closes before sleeping; for Maintenance (maintenance.h) the
// frames it hands over. Loop thread only.
#include <algorithm>

#include "base/log.h"
#include "cloned/daemon/conn.h"
#include "cloned/daemon/daemon.h"

namespace cloned {

namespace {

WakeSettings wake_settings(const config::CloneConfig& c) {
  WakeSettings w;
  w.interface = c.wake_interface;
  w.idle_sleep_s = c.idle_sleep_s;
  w.power_backend = c.power_backend;
  w.sysfs_mode = c.sysfs_mode;
  w.test_double_counts_as_armed = c.test_double_counts_as_armed;
  w.test_double_sleep_limit_ms = c.test_double_sleep_limit_ms;
  w.testing_sleep_on_virtio_nic = c.testing_sleep_on_virtio_nic;
  return w;
}

}  // namespace

// The health monitor and the Waker start once the daemon listens.
void Daemon::start_parts() {
  health_.start(config_, [this] { completions_.push(Completion{Completion::Kind::health}); });
  waker_ = std::make_unique<Waker>(static_cast<WakeHost&>(*this), machine_, &loop_, wake_settings(config_));
  waker_->start();
}

SleepInputs Daemon::sleep_inputs(uint64_t now) const {
  SleepInputs in;
  in.now_ms = now;
  // Only an authenticated peer keeps the clone awake: anyone on the LAN can
  // open a connection, and one every few seconds would otherwise keep it up
  // for ever (issue 14, finding 4).
  // A health-only session (clone-origin health --collect-ms) too: it was not
  // counted, and the clone slept under it (found in review).
  const bool health_session = std::any_of(
      conns_.begin(), conns_.end(), [](const Conn* c) { return c->health.only && c->phase == Conn::Phase::session; });
  in.session_open = session_ != nullptr || machine_.in_session() || machine_.hello_pending() ||
                    authenticated_waiting() > 0 || health_session;
  in.work_pending = machine_.held_bytes() > 0 || machine_.in_flight() > 0 || machine_.queued() > 0 ||
                    !frames_.empty() || machine_.committed().seq < machine_.durable().seq ||
                    machine_.applying_stage();  // a staged generation being copied: no session needed
  in.mid_epoch = machine_.in_session() && machine_.received_seq() > machine_.durable().seq;
  // A resync in this session (an interrupted one waits for the original's
  // return and does not keep the clone up); a verify the original reported
  // within the last minute.
  const MaintenanceProgress& progress = maintenance_.progress();
  in.resync_active = machine_.resync_running() || progress.fresh(proto::ProgressKind::resync, now);
  in.verify_active = progress.fresh(proto::ProgressKind::verify, now);
  return in;
}

bool Daemon::may_sleep() const { return !stopping_ && !fatal_ && !machine_.disk_failed(); }

bool Daemon::session_ready() const { return session_ != nullptr && session_->phase == Conn::Phase::session; }

void Daemon::send_to_session(const base::Bytes& plain) {
  if (session_ != nullptr) send_plain(session_, plain);
}

void Daemon::close_session(const std::string& why) {
  if (session_ != nullptr) close_conn(session_, why);
}

void Daemon::stop_listening() {
  // Closed already (asleep, or a listen after waking that failed and waits
  // for the next tick): libuv must not close a handle twice.
  if (uv_is_closing(reinterpret_cast<uv_handle_t*>(&listener_)) != 0) return;
  listener_closed_ = false;
  uv_close(reinterpret_cast<uv_handle_t*>(&listener_),
           [](uv_handle_t* h) { static_cast<Daemon*>(h->data)->listener_closed_ = true; });
}

bool Daemon::ready_to_sleep() {
  // Asked every tick while leaving: a fingerprint is tried at most once a
  // second, as after a session (a disk that fails the reads is not read
  // 50 times a second).
  const uint64_t now = now_ms();
  if (now - last_sleep_fingerprint_ms_ >= 1000) {
    last_sleep_fingerprint_ms_ = now;
    divergence_.refresh_if_quiet(stopping_);
  }
  return machine_.quiet() && divergence_.baseline_kept();
}

bool Daemon::listen_again() {
  if (uv_is_closing(reinterpret_cast<uv_handle_t*>(&listener_)) == 0) return true;  // still listening
  if (!listener_closed_) return false;  // its close callback has not run yet: next tick
  if (base::Status s = listen(); !s.is_ok()) {
    // The address may come back later (DHCP after the link's flap, another
    // program leaving the port): the half-made listener is closed, and the
    // next tick tries again. Said once, and once more when it works.
    if (!relisten_failing_) LOG_ERROR("after waking: %s (trying again every tick)", s.message().c_str());
    relisten_failing_ = true;
    stop_listening();
    return false;
  }
  LOG_INFO("listening again on %s:%u", config_.listen_host.c_str(), config_.listen_port);
  relisten_failing_ = false;
  return true;
}

void Daemon::checkpoint_store() { store_worker_->checkpoint(); }

void Daemon::after_resume() { health_.poll_now(); }

void Daemon::keep_frame(apply::RecordId id, proto::Frame frame) { frames_.emplace(id, std::move(frame)); }
apply::StageRoom Daemon::stage_room() { return stage_worker_->room(); }

}  // namespace cloned
