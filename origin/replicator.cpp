// SPDX-License-Identifier: MIT
#include "origin/replicator.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "base/log.h"
#include "base/thread.h"

namespace origin {

namespace {

// A sentence without its final period, to be embedded in another sentence.
std::string clause(const base::Status& s) {
  std::string text = s.message();
  while (!text.empty() && (text.back() == '.' || text.back() == ' ')) text.pop_back();
  return text;
}

}  // namespace

ReconnectPolicy make_reconnect_policy(const config::OriginConfig& c) {
  ReconnectPolicy p;
  p.initial_ms = std::max<uint32_t>(c.reconnect_initial_ms, 1);
  p.max_ms = std::max(c.reconnect_max_ms, p.initial_ms);
  p.attempts_max = std::max<uint32_t>(c.reconnect_attempts_max, 1);
  return p;
}

Replicator::Replicator(const SessionConfig& session_config, const ReconnectPolicy& policy, RetainedLog& log)
    : session_config_(session_config), policy_(policy), log_(log) {
  // What an earlier run saw acknowledged: every hello says it (rule 2), so a
  // clone that crashed since resumes there rather than at its last commit.
  counters_.acked_seq = session_config.acked_seq;
  counters_.acked_epoch = session_config.acked_epoch;
}

Replicator::~Replicator() {
  stop();
  log_.set_append_listener(nullptr);
}

void Replicator::set_wake_info_handler(std::function<void(const proto::WakeInfo&)> wake_info) {
  wake_info_handler_ = std::move(wake_info);
}

void Replicator::set_silence_handler(std::function<void(const base::Status&)> silence) {
  silence_handler_ = std::move(silence);
}

void Replicator::on_wake_info(const proto::WakeInfo& info) {
  if (wake_info_handler_) wake_info_handler_(info);
}

base::Status Replicator::start() {
  wake_fd_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake_fd_) return base::Status::from_errno("cannot create an eventfd");
  log_.set_append_listener([this] { on_append(); });
  thread_ = std::thread([this] { run(); });
  return base::Status::ok();
}

void Replicator::wake() {
  const uint64_t one = 1;
  ssize_t n = ::write(wake_fd_.get(), &one, sizeof one);
  (void)n;  // a full counter already wakes the reader
}

// The session stores reading_log_ = true and then reads the log under its
// mutex; a producer appends under that mutex and then exchanges the flag.
// Whichever comes second sees the other's work: the read finds the record,
// or the exchange (ordered after the store through the mutex) finds true and
// signals. So no append is left unsent while the session sleeps, and a
// session that is busy is not woken once per record.
void Replicator::on_append() {
  if (reading_log_.exchange(false)) wake();
}

void Replicator::stop() {
  if (stop_.exchange(true)) {
    if (thread_.joinable()) thread_.join();
    return;
  }
  if (wake_fd_) wake();
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Replicator::sleep_unless_stopped(uint32_t ms) {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stop_.load(); });
  return !stop_.load();
}

void Replicator::run() {
  base::name_this_thread("origin-link");
  uint32_t failures = 0;
  uint32_t delay_ms = policy_.initial_ms;
  RefusalStreak refusals;
  base::Status end;
  while (!stop_.load()) {
    SessionConfig config = session_config_;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      config.acked_seq = counters_.acked_seq;
      config.acked_epoch = counters_.acked_epoch;
    }
    Session session(config, log_, *this, wake_fd_.get());
    SessionOutcome o = session.run();
    if (o.end == SessionEnd::stopped) break;
    if (o.end == SessionEnd::fatal) {
      end = o.status;
      break;
    }
    if (o.established && o.progressed) {
      failures = 0;
      delay_ms = policy_.initial_ms;
    }
    const std::string& heard = o.unauthenticated_answer;
    if (refusals.final_after(heard)) {
      end = base::Status::error(o.status.code(), "the clone's address answered '" + heard + "' before authenticating " +
                                                     std::to_string(refusals.count()) +
                                                     " times in a row: " + clause(o.status) + ".");
      break;
    }
    if (++failures >= policy_.attempts_max) {
      end = base::Status::error(o.status.code(), "gave up after " + std::to_string(failures) +
                                                     " failed attempts in a row to reach the clone at " +
                                                     session_config_.host + ":" + std::to_string(session_config_.port) +
                                                     "; the last one: " + clause(o.status) +
                                                     ". Check that cloned runs there and the network.");
      break;
    }
    if (silence_handler_) silence_handler_(o.status);
    if (!heard.empty())
      LOG_NOTICE("the clone's address answered '%s' before authenticating (%u of %u in a row): %s; retrying in %u ms",
                 heard.c_str(), refusals.count(), kUnauthenticatedRefusalsMax, clause(o.status).c_str(), delay_ms);
    else
      LOG_NOTICE("no session with the clone: %s; trying again in %u ms (attempt %u of %u)", clause(o.status).c_str(),
                 delay_ms, failures + 1, policy_.attempts_max);
    if (!sleep_unless_stopped(delay_ms)) break;
    delay_ms = std::min(delay_ms * 2, policy_.max_ms);
    std::lock_guard<std::mutex> lock(mutex_);
    ++counters_.reconnects;
  }
  finish(end);
}

void Replicator::finish(base::Status failure) {
  if (!failure.is_ok()) log_.close();  // wake a producer blocked on a full log
  {
    std::lock_guard<std::mutex> lock(mutex_);
    finished_ = true;
    failure_ = std::move(failure);
  }
  changed_.notify_all();
}

base::Status Replicator::wait_for(uint64_t ReplicatorCounters::*position, uint64_t seq, const char* what) {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return counters_.*position >= seq || finished_; });
  if (counters_.*position >= seq) return base::Status::ok();
  if (!failure_.is_ok()) return failure_;
  return base::Status::error(ECANCELED, "replication was stopped before the clone was " + std::string(what) +
                                            " (awaited position " + std::to_string(seq) + ").");
}

base::Status Replicator::wait_durable(uint64_t seq) { return wait_for(&ReplicatorCounters::acked_seq, seq, "durable"); }

base::Status Replicator::wait_committed(uint64_t seq) {
  return wait_for(&ReplicatorCounters::committed_seq, seq, "committed");
}

base::Status Replicator::wait_established() { return wait_for(&ReplicatorCounters::sessions, 1, "connected"); }

ReplicatorCounters Replicator::counters() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return counters_;
}

bool Replicator::failed() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return !failure_.is_ok();
}

base::Status Replicator::failure() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return failure_;
}

void Replicator::on_established(const proto::Hello& h) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++counters_.sessions;
    if (h.applied_seq > counters_.acked_seq) {
      counters_.acked_seq = h.applied_seq;
      counters_.acked_epoch = h.applied_epoch;
    }
    counters_.committed_seq = std::max(counters_.committed_seq, h.committed_seq);
  }
  changed_.notify_all();
}

void Replicator::on_barrier_ack(uint64_t epoch, uint64_t seq) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (seq > counters_.acked_seq) {
      counters_.acked_seq = seq;
      counters_.acked_epoch = epoch;
    }
  }
  changed_.notify_all();
}

void Replicator::on_committed(uint64_t seq) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    counters_.committed_seq = std::max(counters_.committed_seq, seq);
  }
  changed_.notify_all();
}

void Replicator::on_receipt_ack(uint64_t seq) {
  std::lock_guard<std::mutex> lock(mutex_);
  counters_.receipt_seq = std::max(counters_.receipt_seq, seq);
}

void Replicator::on_records_queued(uint64_t record_count) {
  std::lock_guard<std::mutex> lock(mutex_);
  counters_.records_sent += record_count;
}

void Replicator::on_bytes_sent(uint64_t wire_bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  counters_.bytes_sent += wire_bytes;
}

}  // namespace origin
