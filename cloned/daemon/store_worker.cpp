// SPDX-License-Identifier: MIT
// The store worker (workers.h): commits, events, jobs and checkpoints on one
// thread, in order.
#include "base/log.h"
#include "base/thread.h"
#include "cloned/daemon/workers.h"

namespace cloned {

// Events beyond this many waiting are dropped and counted; the count is
// logged with the next event that gets through (StoreWorker::event). The
// event log is informational and must not grow without bound (invariant 9).
static constexpr size_t kMaxQueuedEvents = 256;

StoreWorker::StoreWorker(store::Store& store, Completions& done) : store_(store), done_(done) {
  thread_ = std::thread([this] { run(); });
}

StoreWorker::~StoreWorker() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void StoreWorker::commit(const apply::ReplicaState& state) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    Job job;
    job.is_commit = true;
    job.state = state;
    jobs_.push_back(std::move(job));
  }
  wake_.notify_one();
}

void StoreWorker::event(const std::string& level, const std::string& kind, const std::string& message) {
  uint64_t dropped_before = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (events_queued_ >= kMaxQueuedEvents) {
      ++events_dropped_;
      ++events_dropped_unlogged_;
      return;
    }
    dropped_before = events_dropped_unlogged_;
    events_dropped_unlogged_ = 0;
    ++events_queued_;
    Job job;
    job.level = level;
    job.kind = kind;
    job.message = message;
    jobs_.push_back(std::move(job));
  }
  wake_.notify_one();
  // Once per burst, not once per dropped event: the log is bounded too.
  if (dropped_before > 0)
    LOG_WARN("%llu event(s) were not recorded in the state store: more than %zu were waiting",
             static_cast<unsigned long long>(dropped_before), kMaxQueuedEvents);
}

uint64_t StoreWorker::events_dropped() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return events_dropped_;
}

void StoreWorker::run_job(std::function<base::Status(store::Store&)> fn) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    Job job;
    job.fn = std::move(fn);
    jobs_.push_back(std::move(job));
  }
  wake_.notify_one();
}

void StoreWorker::checkpoint() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    Job job;
    job.is_checkpoint = true;
    jobs_.push_back(std::move(job));
  }
  wake_.notify_one();
}

void StoreWorker::run() {
  base::name_this_thread("cloned-store");
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
      if (!job.is_commit && !job.is_checkpoint && !job.fn) --events_queued_;
    }
    if (job.is_checkpoint) {
      done_.push(Completion{Completion::Kind::checkpoint, 0, store_.checkpoint()});
    } else if (job.is_commit) {
      done_.push(Completion{Completion::Kind::commit, 0, store_.save(job.state)});
    } else if (job.fn) {
      done_.push(Completion{Completion::Kind::store_job, 0, job.fn(store_)});
    } else if (base::Status s = store_.append_event(job.level, job.kind, job.message); !s.is_ok()) {
      LOG_WARN("could not record an event in the state store: %s", s.message().c_str());
    }
  }
}

}  // namespace cloned
