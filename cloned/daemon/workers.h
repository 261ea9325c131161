// SPDX-License-Identifier: MIT
// The daemon's worker threads: disk writers and the store committer.
//
// Both run plain std::threads (no libuv) and report to the event loop through
// a Completions queue, which the loop drains when woken (the waker is set by
// the loop adapter). A job owns its data (the frame holding a write's
// payload) until it completes; the completion hands the id back.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "blockio/device.h"
#include "blockio/digest.h"
#include "cloned/apply/apply.h"
#include "cloned/proto/frame.h"
#include "cloned/store/store.h"

namespace cloned {

struct Completion {
  enum class Kind { io, flush, commit, event, checkpoint } kind;
  apply::RecordId id = 0;  // io
  base::Status status;
  bool digest_mismatch = false;  // io: refused before writing
};

// Thread-safe queue of completions; `wake` is called after each push (from
// the worker thread) and must be async-signal-safe-ish: uv_async_send.
class Completions {
 public:
  void set_waker(std::function<void()> wake);
  void push(Completion c);
  std::vector<Completion> take_all();

 private:
  std::mutex mutex_;
  std::vector<Completion> items_;
  std::function<void()> wake_;
};

// Writes, trims, zeroes and flushes on a pool of threads.
class DiskWorkers {
 public:
  DiskWorkers(blockio::BlockDevice& device, const blockio::DigestKey& digest_key, uint32_t threads,
              Completions& done);
  ~DiskWorkers();  // joins; pending jobs are completed first
  DiskWorkers(const DiskWorkers&) = delete;
  DiskWorkers& operator=(const DiskWorkers&) = delete;

  // A write carries its frame; the payload sits 4096-aligned inside it.
  void submit(apply::RecordId id, const proto::RecordHeader& header, proto::Frame frame);
  void flush();

 private:
  struct Job {
    bool is_flush = false;
    apply::RecordId id = 0;
    proto::RecordHeader header;
    proto::Frame frame;
  };
  void run();
  void perform(Job& job);

  blockio::BlockDevice& device_;
  blockio::DigestKey digest_key_;
  Completions& done_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// Runs store commits and event appends on one thread, in order.
class StoreWorker {
 public:
  StoreWorker(store::Store& store, Completions& done);
  ~StoreWorker();
  StoreWorker(const StoreWorker&) = delete;
  StoreWorker& operator=(const StoreWorker&) = delete;

  void commit(const store::ReplicaState& state);
  void event(const std::string& level, const std::string& kind, const std::string& message);
  // Checkpoints the store after the jobs queued before it; completes as Kind::checkpoint.
  void checkpoint();

 private:
  struct Job {
    bool is_commit = false;
    bool is_checkpoint = false;
    store::ReplicaState state;
    std::string level, kind, message;
  };
  void run();

  store::Store& store_;
  Completions& done_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> jobs_;
  size_t events_queued_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace cloned
