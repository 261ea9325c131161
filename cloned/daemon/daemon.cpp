// SPDX-License-Identifier: MIT
// The Daemon's loop (daemon.h): construction, run, carrying out the apply
// machine's actions, the workers' completions, the tick, and stopping.
#include "cloned/daemon/daemon.h"

#include <signal.h>

#include <cassert>
#include <cerrno>
#include <utility>

#include "base/log.h"
#include "base/units.h"
#include "cloned/daemon/conn.h"
#include "cloned/daemon/status.h"

namespace cloned {

namespace {
constexpr uint64_t kTickMs = 20;
constexpr uint64_t kStatusIntervalMs = 1000;
constexpr uint64_t kStopEpochWaitMs = 10000;  // SIGTERM: wait this long for the open epoch
}  // namespace

uint64_t now_ms() { return base::monotonic_ns() / 1'000'000; }

static std::unique_ptr<store::Store> with_commit_delay(std::unique_ptr<store::Store> store, uint32_t delay_ms) {
  store->set_commit_delay_ms(delay_ms);
  return store;
}

static apply::Limits limits_from(const config::CloneConfig& c) {
  apply::Limits l;
  l.held_bytes_max = c.inflight_bytes_max;
  // Writes go in AIO batches (workers.h), so the depth is no longer one write
  // per thread: 64 with the default 4 threads, enough for a whole epoch of
  // small records in flight at once. Memory stays bounded by held_bytes_max.
  l.io_depth_max = std::max<uint32_t>(16, c.writer_threads * 16);
  l.commit_interval_ms = c.commit_interval_ms;
  l.allow_remote_discard = c.allow_remote_discard;
  l.stage_resync = c.stage_max_bytes != 0;
  return l;
}

Daemon::Daemon(const config::CloneConfig& config, const config::DerivedKeys& keys,
               std::unique_ptr<blockio::BlockDevice> device, std::unique_ptr<store::Store> store,
               const apply::ReplicaState& loaded)
    : config_(config),
      keys_(keys),
      device_(std::move(device)),
      store_(with_commit_delay(std::move(store), config.store_commit_delay_ms)),
      machine_(device_->geometry(), loaded, limits_from(config)),
      disk_workers_(std::make_unique<DiskWorkers>(*device_, keys_.digest_key, config_.writer_threads, completions_,
                                                  config_.read_back,
                                                  DiskWorkerPriority{config_.writer_priority_boost,
                                                                     config_.writer_time_slice_us})),
      store_worker_(std::make_unique<StoreWorker>(*store_, completions_)),
      stage_worker_(std::make_unique<StageWorker>(config_.state_dir + "/stage",
                                                  stage::Limits{config_.stage_max_bytes, 64ull << 20}, *device_,
                                                  keys_.digest_key, completions_)),
      health_(*this, *this, machine_, device_->geometry()),
      maintenance_(*this, *this, machine_, device_->geometry(), *disk_workers_, *store_worker_),
      divergence_(config.detect_divergence, *this, *device_, keys_.digest_key, machine_, *store_worker_) {
  last_logged_state_ = loaded.state;
}

Daemon::~Daemon() {
  waker_.reset();  // joins a sleeper thread (a simulated sleep is cancelled)
  // Threads join here, before the device and the store they use go away.
  health_.stop();
  stage_worker_.reset();
  disk_workers_.reset();
  store_worker_.reset();
  if (handles_open_) uv_loop_close(&loop_);
}

int Daemon::run() {
  uv_loop_init(&loop_);
  handles_open_ = true;
  uv_async_init(&loop_, &wakeup_, [](uv_async_t* a) { static_cast<Daemon*>(a->data)->drain_completions(); });
  wakeup_.data = this;
  completions_.set_waker([this] { uv_async_send(&wakeup_); });
  uv_timer_init(&loop_, &tick_);
  tick_.data = this;
  uv_timer_start(&tick_, [](uv_timer_t* t) { static_cast<Daemon*>(t->data)->on_tick(); }, kTickMs, kTickMs);
  for (auto [sig, handle] : {std::pair{SIGTERM, &sigterm_}, std::pair{SIGINT, &sigint_}}) {
    uv_signal_init(&loop_, handle);
    handle->data = this;
    uv_signal_start(handle, [](uv_signal_t* h, int s) { static_cast<Daemon*>(h->data)->on_signal(s); }, sig);
  }
  control_ = std::make_unique<ControlServer>(&loop_);
  add_control_commands();
  base::Status s = listen();
  if (s.is_ok()) s = control_->listen(config_.runtime_dir + "/" + kControlSocketName);
  if (!s.is_ok()) {
    LOG_ERROR("%s", s.message().c_str());
    fatal_ = true;
    stop_loop();
  } else {
    const apply::ReplicaState& r = machine_.replica();
    LOG_NOTICE("cloned started: disk %s, state %s, generation %llu, position %llu (epoch %llu), listening on %s:%u",
               device_->describe().c_str(), proto::clone_state_name(r.state),
               static_cast<unsigned long long>(r.generation), static_cast<unsigned long long>(r.committed_seq),
               static_cast<unsigned long long>(r.committed_epoch), config_.listen_host.c_str(), config_.listen_port);
    if (r.state == proto::CloneState::inconsistent) LOG_WARN("the clone is inconsistent: %s", r.state_reason.c_str());
    if (r.state == proto::CloneState::diverged)
      LOG_ERROR("the clone is DIVERGED and takes no writes until clonectl decide: %s", r.state_reason.c_str());
    record_event("info", "start", "cloned started on " + device_->describe());
    divergence_.check("at startup");
    start_parts();
    start_stage();
    publish_status();
    notifier_.ready(status_line());
  }
  uv_run(&loop_, UV_RUN_DEFAULT);
  completions_.set_waker(nullptr);
  return (stopped_cleanly_ && !fatal_) ? 0 : 1;
}

void Daemon::apply_actions(apply::Actions& a) {
  if (a.hello_reply && session_ != nullptr) {
    // Each send may close the connection (an original that does not read what
    // the clone sends, while the answer was deferred): then there is no session.
    Conn* const c = session_;
    base::Bytes out;
    proto::encode_hello(*a.hello_reply, out);
    send_plain(c, out);
    if (session_ == c && waker_) waker_->announce();  // right after every hello: how to wake the clone
    if (session_ == c) {
      ++stats_.sessions;
      stats_.peer = session_->peer;
      stats_.session_since_unix_ms = static_cast<uint64_t>(base::unix_ms());
      LOG_INFO("session with %s: the clone is at record %llu (epoch %llu), the original's log ends at %llu",
               session_->peer.c_str(), static_cast<unsigned long long>(a.hello_reply->applied_seq),
               static_cast<unsigned long long>(a.hello_reply->applied_epoch),
               static_cast<unsigned long long>(stats_.original_log_end));
      record_event("info", "session", "session with " + session_->peer + " started at record " +
                                          std::to_string(a.hello_reply->applied_seq));
      publish_status();
      health_.peer_ready(session_);
    }
  }
  for (apply::RecordId id : a.dropped) frames_.erase(id);
  if (a.stage_open) stage_actions(a);  // before anything is appended to it
  for (apply::SubmitIo& s : a.submit) {
    proto::Frame frame;
    if (s.header.type == proto::MsgType::write || s.header.type == proto::MsgType::resync_data) {
      auto it = frames_.find(s.id);
      assert(it != frames_.end());
      frame = std::move(it->second);
      frames_.erase(it);
    }
    // An early flush may have begun before these: it does not cover them
    // (those behind the flush need not be).
    if (s.after_flush_gate == 0) early_flush_.written_since_ask = true;
    if (s.to_stage)
      stage_worker_->append(s.id, s.header, std::move(frame));
    else
      disk_workers_->submit(s.id, s.header, std::move(frame), std::move(s.only), s.after_flush_gate, s.covered_by_gate);
  }
  if (a.cancel_after_flush) disk_workers_->cancel_after_flush();
  if (a.stage_apply) early_flush_.written_since_ask = true;
  if (a.flush) flush_disk(a.flush_gate);
  stage_actions(a);
  for (const apply::Commit& c : a.commits) store_worker_->commit(c.state);
  if (a.clear_out_of_sync) store_worker_->run_job([](store::Store& st) { return st.clear_out_of_sync(); });
  for (const apply::DiskFailed& f : a.disk_failed) {
    LOG_ERROR("the clone's disk failed; no more writes are taken until cloned is restarted: %s", f.message.c_str());
    record_event("error", "disk", f.message);
    health_.disk_failed(f.message);
  }
  for (const apply::MarkReached& m : a.marks_reached) {
    LOG_NOTICE("mark %s reached: the clone holds everything the original wrote before it (record %llu, epoch %llu)",
               m.name.c_str(), static_cast<unsigned long long>(m.seq), static_cast<unsigned long long>(m.epoch));
    record_event("notice", "mark",
                 "reached mark " + m.name + " at record " + std::to_string(m.seq) + " (epoch " +
                     std::to_string(m.epoch) + "): the clone holds everything the original wrote before it");
  }
  if (!a.marks_reached.empty()) publish_status();
  if (session_ != nullptr) send_session_actions(session_, a);
  ask_early_flush();
  if (machine_.replica().state != last_logged_state_) {
    last_logged_state_ = machine_.replica().state;
    LOG_NOTICE("the clone is now %s%s%s", proto::clone_state_name(last_logged_state_),
               machine_.replica().state_reason.empty() ? "" : ": ", machine_.replica().state_reason.c_str());
    record_event("notice", "state", std::string("now ") + proto::clone_state_name(last_logged_state_));
    publish_status();
  }
  health_.note_state();
  finish_if_done();
}

// Acks and resync answers to the session; a failure ends it.
void Daemon::send_session_actions(Conn* c, apply::Actions& a) {
  base::Bytes out;
  for (const apply::SendBarrierAck& b : a.barrier_acks) {
    out.clear();
    proto::encode_barrier_ack(b.epoch, b.seq, out);
    send_plain(c, out);
  }
  for (const apply::SendReceiptAck& r : a.receipt_acks) {
    out.clear();
    proto::encode_receipt_ack(r.seq, out);
    send_plain(c, out);
  }
  for (const apply::SendCommitted& m : a.committed) {
    out.clear();
    proto::encode_committed(m.seq, out);
    send_plain(c, out);
  }
  maintenance_.send_actions(c, a);
  if (!a.fail.empty() && session_ == c) {
    const apply::FailSession& f = a.fail.front();
    LOG_WARN("refused the session with %s: %s", c->peer.c_str(), f.message.c_str());
    send_error(c, f.code, f.message);
    close_conn(c, f.message);
  }
}

// The machine asks for a flush only when nothing is in flight. An early flush
// that ran for this barrier's gate (never one of an earlier session: the
// machine does not reuse gates), after its last write completed and with
// nothing written since, is that same fdatasync: its result answers.
void Daemon::flush_disk(uint64_t gate) {
  base::Status result;
  if (!early_flush_.failure.is_ok()) {
    LOG_DEBUG("the early flush failed; this flush (barrier %llu) reports it",
              static_cast<unsigned long long>(machine_.flushing_barrier_seq()));
    result = std::exchange(early_flush_.failure, base::Status::ok());
  } else if (gate != 0 && early_flush_.done && !early_flush_.written_since_ask && early_flush_.asked_gate == gate) {
    early_flush_.done = false;
  } else {
    return disk_workers_->flush(gate);
  }
  Completion c{Completion::Kind::flush, 0, std::move(result)};
  c.op = "flush";
  completions_.push(std::move(c), /*urgent=*/true);  // taken by the next drain, like a worker's
}

void Daemon::ask_early_flush() {
  const uint64_t gate = machine_.gate_after_in_flight();
  if (gate == 0 || gate == early_flush_.asked_gate) return;
  early_flush_.asked_gate = gate;
  early_flush_.done = false;
  early_flush_.written_since_ask = false;
  disk_workers_->flush_when_drained(gate);
}

// An urgent completion pushed while the ones taken were handled (the
// machine's flush answered by the early one, which the loop pushes itself; a
// worker's flush done) is taken in the same drain: the disk's next step
// waits for it, and the loop would otherwise come back to it only after up
// to kFramesPerBatch more records, or a turn of the loop. A few rounds at
// most, so that the reads go on.
void Daemon::drain_completions() {
  DiskWorkers::Batch batch(*disk_workers_);  // what the completions let go, together
  completions_.drain([this](Completion& c) { handle_completion(c); }, kDrainRounds,
                     // They may have ended the daemon (stop_loop).
                     [this] { return uv_is_closing(reinterpret_cast<uv_handle_t*>(&wakeup_)) != 0; });
  update_reading();
}

void Daemon::handle_completion(Completion& c) {
  apply::Actions actions;
  switch (c.kind) {
    case Completion::Kind::io:
      if (!c.read_back_note.empty()) {
        LOG_ERROR("hardware fault on the clone's disk: %s", c.read_back_note.c_str());
        record_event("error", "read-back", c.read_back_note);
      }
      if (c.disk_fault()) health_.io_error(c);
      machine_.on_io_done(c.id, c.status, c.digest_mismatch, actions);
      break;
    case Completion::Kind::digest:
      if (c.disk_fault()) health_.io_error(c);  // not a scan of an ended session, dropped unread
      maintenance_.on_digest_done(session_, c);
      break;
    case Completion::Kind::store_job:
      if (!c.status.is_ok()) LOG_WARN("state store: %s", c.status.message().c_str());
      break;
    case Completion::Kind::early_flush:
      // Ahead of the completion of the write it followed: the machine's
      // flush, if that write ends the epoch, comes after this. A failure
      // reaches the machine and the health monitor with the flush that
      // reports it (flush_disk); logged now, in case no flush comes (the
      // session ends, the daemon stops).
      if (!c.status.is_ok()) {
        LOG_ERROR("flushing the clone's disk failed: %s (the next flush reports it)", c.status.message().c_str());
        early_flush_.failure = c.status;
      }
      early_flush_.done = c.status.is_ok() && c.id == early_flush_.asked_gate;
      break;
    case Completion::Kind::flush:
      if (!c.status.is_ok()) health_.io_error(c);
      machine_.on_flush_done(c.status, actions);
      break;
    case Completion::Kind::health: health_.pump(); break;
    case Completion::Kind::commit:
      if (!c.status.is_ok()) LOG_ERROR("state store commit failed (will retry): %s", c.status.message().c_str());
      machine_.on_commit_done(c.status, actions);
      answer_decisions();
      break;
    case Completion::Kind::event: break;
    case Completion::Kind::stage_open:
    case Completion::Kind::stage_sync:
    case Completion::Kind::stage_apply: on_stage_completion(c, actions); break;
    case Completion::Kind::checkpoint:
      if (waker_) waker_->on_checkpoint(c.status);
      break;
  }
  apply_actions(actions);
}

void Daemon::on_tick() {
  const uint64_t now = now_ms();
  apply::Actions actions;
  machine_.on_tick(now, actions);
  apply_actions(actions);
  check_deadlines(now);
  if (stopping_ && !machine_.done_for_shutdown() && now >= stop_deadline_ms_) {
    LOG_WARN("the open epoch did not complete within %llu ms; stopping at record %llu",
             static_cast<unsigned long long>(kStopEpochWaitMs), static_cast<unsigned long long>(machine_.durable().seq));
    stop_deadline_ms_ = UINT64_MAX;
    apply::Actions forced;
    machine_.force_shutdown(forced);
    apply_actions(forced);
  }
  if (waker_) waker_->on_tick(now);
  if (now - last_status_ms_ >= kStatusIntervalMs) {
    divergence_.refresh_if_quiet(stopping_);
    publish_status();
  }
  notifier_.watchdog(now);
}

void Daemon::on_signal(int signum) {
  if (stopping_) {
    LOG_WARN("second signal %d: stopping without waiting for the open epoch", signum);
    apply::Actions forced;
    machine_.force_shutdown(forced);
    apply_actions(forced);
    return;
  }
  LOG_NOTICE("signal %d: finishing the open epoch, then stopping", signum);
  notifier_.stopping("finishing the open epoch, then stopping");
  stopping_ = true;
  stop_deadline_ms_ = now_ms() + kStopEpochWaitMs;
  apply::Actions actions;
  machine_.begin_shutdown(actions);
  apply_actions(actions);
}

void Daemon::finish_if_done() {
  if (!stopping_ || !machine_.done_for_shutdown() || stopped_cleanly_) return;
  stopped_cleanly_ = true;
  const apply::Position p = machine_.durable();
  LOG_NOTICE("stopped cleanly at record %llu (epoch %llu)", static_cast<unsigned long long>(p.seq),
             static_cast<unsigned long long>(p.epoch));
  if (session_ != nullptr) {
    base::Bytes out;
    proto::encode_goodbye({proto::ErrorCode::shutting_down, "the clone is stopping; it resumes from record " +
                                                                 std::to_string(p.seq + 1) + " when it is back."},
                          out);
    send_plain(session_, out);
    close_conn(session_, "the daemon is stopping");
  }
  record_event("info", "stop", "stopped cleanly at record " + std::to_string(p.seq));
  divergence_.save_final();
  publish_status();
  stop_loop();
}

void Daemon::stop_loop() {
  // Close every handle; uv_run returns once their close callbacks ran. The
  // workers must not wake a closing async handle: from here on nothing they
  // finish is needed (the final commit has completed, or the start failed).
  completions_.set_waker(nullptr);
  for (Conn* c : conns_) {
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&c->tcp)))
      uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), [](uv_handle_t* h) { delete static_cast<Conn*>(h->data); });
  }
  conns_.clear();
  session_ = nullptr;
  if (control_) control_->close();
  if (waker_) waker_->close_handles();
  for (uv_handle_t* h : {reinterpret_cast<uv_handle_t*>(&listener_), reinterpret_cast<uv_handle_t*>(&wakeup_),
                         reinterpret_cast<uv_handle_t*>(&tick_), reinterpret_cast<uv_handle_t*>(&sigterm_),
                         reinterpret_cast<uv_handle_t*>(&sigint_)}) {
    if (h->loop != nullptr && !uv_is_closing(h)) uv_close(h, nullptr);
  }
}

void Daemon::record_event(const std::string& level, const std::string& kind, const std::string& message) {
  store_worker_->event(level, kind, message);
}

}  // namespace cloned
