// SPDX-License-Identifier: MIT
#include "cloned/daemon/workers.h"

#include <cassert>
#include <cerrno>

#include "base/log.h"

namespace cloned {

// Events beyond this many waiting are dropped (and counted in the log): the
// event log is informational and must not grow without bound (invariant 9).
static constexpr size_t kMaxQueuedEvents = 256;

// The waker runs under the lock so that set_waker(nullptr) on the loop thread
// cannot race with a worker about to wake a handle that is being closed.
void Completions::set_waker(std::function<void()> wake) {
  std::lock_guard<std::mutex> lock(mutex_);
  wake_ = std::move(wake);
}

void Completions::push(Completion c) {
  std::lock_guard<std::mutex> lock(mutex_);
  items_.push_back(std::move(c));
  if (wake_) wake_();
}

std::vector<Completion> Completions::take_all() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<Completion> out;
  out.swap(items_);
  return out;
}

DiskWorkers::DiskWorkers(blockio::BlockDevice& device, const blockio::DigestKey& digest_key, uint32_t threads,
                         Completions& done)
    : device_(device), digest_key_(digest_key), done_(done) {
  assert(threads > 0);
  for (uint32_t i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

DiskWorkers::~DiskWorkers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void DiskWorkers::submit(apply::RecordId id, const proto::RecordHeader& header, proto::Frame frame) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    jobs_.push_back(Job{false, id, header, std::move(frame)});
  }
  wake_.notify_one();
}

void DiskWorkers::flush() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    jobs_.push_back(Job{true, 0, {}, {}});
  }
  wake_.notify_one();
}

void DiskWorkers::run() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping, and everything done
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    perform(job);
  }
}

void DiskWorkers::perform(Job& job) {
  if (job.is_flush) {
    done_.push(Completion{Completion::Kind::flush, 0, device_.flush()});
    return;
  }
  const proto::RecordHeader& h = job.header;
  Completion c{Completion::Kind::io, job.id, {}};
  switch (h.type) {
    case proto::MsgType::write: {
      // The payload follows the 64-byte header inside the frame, 4096-aligned.
      base::ByteSpan payload(job.frame.plain_data() + proto::kWriteHeaderBytes, h.length_bytes);
      assert(job.frame.plain_bytes == proto::kWriteHeaderBytes + h.length_bytes);
      if (!blockio::digest_equal(blockio::keyed_digest(digest_key_, payload), h.digest)) {
        c.status = base::Status::error(EBADMSG, "record " + std::to_string(h.seq) + " (offset=" +
                                                    std::to_string(h.offset_bytes) + " len=" +
                                                    std::to_string(h.length_bytes) +
                                                    ") does not match its digest; nothing of it was written.");
        c.digest_mismatch = true;
        break;
      }
      c.status = device_.write(h.offset_bytes, payload);
      break;
    }
    case proto::MsgType::trim: c.status = device_.discard(h.offset_bytes, h.length_bytes); break;
    case proto::MsgType::zero: c.status = device_.write_zeroes(h.offset_bytes, h.length_bytes); break;
    default: assert(false && "only extents reach the disk workers");
  }
  job.frame = proto::Frame{};  // free the payload before reporting
  done_.push(std::move(c));
}

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

void StoreWorker::commit(const store::ReplicaState& state) {
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
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (events_queued_ >= kMaxQueuedEvents) return;
    ++events_queued_;
    Job job;
    job.level = level;
    job.kind = kind;
    job.message = message;
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
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
      if (!job.is_commit && !job.is_checkpoint) --events_queued_;
    }
    if (job.is_checkpoint) {
      done_.push(Completion{Completion::Kind::checkpoint, 0, store_.checkpoint()});
    } else if (job.is_commit) {
      done_.push(Completion{Completion::Kind::commit, 0, store_.save(job.state)});
    } else if (base::Status s = store_.append_event(job.level, job.kind, job.message); !s.is_ok()) {
      LOG_WARN("could not record an event in the state store: %s", s.message().c_str());
    }
  }
}

}  // namespace cloned
