// SPDX-License-Identifier: MIT
// The original's client: keeps a session with the clone going, reconnecting
// with exponential backoff after any failure (connection refused or reset,
// timeout, the clone busy or going away), and resumes each new session from
// the clone's applied position, which the retained log still holds.
//
// Gives up (failed(), wait_durable() returns the sentence) when the clone,
// authenticated, refuses for good (another pair, disk mismatch, resync needed,
// a record it rejects), when its address refuses the handshake the same way
// kUnauthenticatedRefusalsMax times in a row (connection.h: one such refusal
// may be forged), or after reconnect_attempts_max failed sessions in a row, a
// session that made progress resetting the count. On failure it closes the
// log so that a producer blocked in append() wakes.
//
// Threading: start(), wait_durable(), counters() and stop() may be called
// from any thread; the sessions run on the replicator's own connection thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

#include "base/status.h"
#include "base/unique_fd.h"
#include "origin/log.h"
#include "origin/session.h"

namespace origin {

struct ReconnectPolicy {
  uint32_t initial_ms = 100;
  uint32_t max_ms = 5000;
  uint32_t attempts_max = 50;  // failed sessions in a row, then give up
  // Called with each failed session's status before the wait (a resync's:
  // wake a clone that looks asleep, wake.h silence_waker); may be empty.
  std::function<void(const base::Status&)> on_silence;
};
ReconnectPolicy make_reconnect_policy(const config::OriginConfig& config);

struct ReplicatorCounters {
  uint64_t bytes_sent = 0;     // wire bytes, frames included
  uint64_t records_sent = 0;   // records queued for sending, resends included
  uint64_t acked_seq = 0;      // durable on the clone (barrier_ack or its hello)
  uint64_t acked_epoch = 0;
  uint64_t committed_seq = 0;  // in the clone's state store
  uint64_t receipt_seq = 0;    // received by the clone (receipt_ack)
  uint64_t sessions = 0;       // sessions established
  uint64_t reconnects = 0;     // connection attempts after a failure
};

class Replicator final : private SessionListener {
 public:
  // session_config.acked_seq/acked_epoch: the last barrier an earlier run saw
  // acknowledged (0: none); acked_seq starts there.
  Replicator(const SessionConfig& session_config, const ReconnectPolicy& policy, RetainedLog& log);
  ~Replicator() override;  // stop()
  Replicator(const Replicator&) = delete;
  Replicator& operator=(const Replicator&) = delete;

  // Hooks for waking the clone (origin/wake.h); set before start(), they run
  // on the connection thread. `wake_info`: the clone told how to wake it.
  // `silence`: a session failed (the status says why), before the backoff wait.
  void set_wake_info_handler(std::function<void(const proto::WakeInfo&)> wake_info);
  void set_silence_handler(std::function<void(const base::Status&)> silence);

  // Starts the connection thread. Call once.
  base::Status start();
  // Blocks until the clone has acknowledged `seq` as durable (a barrier ack
  // at or past it): ok; or until the replicator failed or was stopped: why.
  base::Status wait_durable(uint64_t seq);
  // Same for the clone's committed position (its state store holds `seq`).
  base::Status wait_committed(uint64_t seq);
  // Blocks until a first session is established (ok) or the replicator
  // failed: lets a command learn that the clone refuses before it changes
  // anything.
  base::Status wait_established();
  // Ends the session with a goodbye and joins the thread. Idempotent.
  void stop();

  ReplicatorCounters counters() const;
  bool failed() const;
  base::Status failure() const;

 private:
  void run();
  bool sleep_unless_stopped(uint32_t ms);
  void finish(base::Status failure);
  void wake();
  base::Status wait_for(uint64_t ReplicatorCounters::*position, uint64_t seq, const char* what);

  // SessionListener, called on the connection thread.
  void on_established(const proto::Hello& clone_hello) override;
  void on_barrier_ack(uint64_t epoch, uint64_t seq) override;
  void on_committed(uint64_t seq) override;
  void on_receipt_ack(uint64_t seq) override;
  void on_records_queued(uint64_t record_count) override;
  void on_bytes_sent(uint64_t wire_bytes) override;
  bool stop_requested() const override { return stop_.load(); }
  void on_wake_info(const proto::WakeInfo& info) override;
  void on_reading_log() override { reading_log_.store(true); }
  void on_append();

  const SessionConfig session_config_;
  const ReconnectPolicy policy_;
  RetainedLog& log_;
  std::function<void(const proto::WakeInfo&)> wake_info_handler_;
  std::function<void(const base::Status&)> silence_handler_;
  base::UniqueFd wake_fd_;  // eventfd, written by producers, read by the session
  // Set by the session before each read of the log, cleared by the first
  // append after it, which alone signals wake_fd: one eventfd write per turn
  // of the session's loop instead of one per record.
  std::atomic<bool> reading_log_{false};
  std::thread thread_;
  std::atomic<bool> stop_{false};

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  bool finished_ = false;
  base::Status failure_;
  ReplicatorCounters counters_;
};

}  // namespace origin
