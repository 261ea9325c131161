// SPDX-License-Identifier: MIT
// The daemon's worker threads: disk writers and the store committer.
//
// Both run plain std::threads (no libuv) and report to the event loop through
// a Completions queue, which the loop drains when woken (the waker is set by
// the loop adapter). A job owns its data (the frame holding a write's
// payload) until it completes; the completion hands the id back.
#pragma once

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/status.h"
#include "blockio/device.h"
#include "cloned/apply/apply.h"
#include "cloned/store/store.h"
#include "digest/digest.h"
#include "proto/frame.h"
#include "proto/resync.h"

namespace cloned {

struct Completion {
  // health: the monitor has reports; stage_*: the stage worker (stage_worker.h);
  // early_flush: DiskWorkers::flush_when_drained
  enum class Kind {
    io,
    flush,
    early_flush,
    commit,
    event,
    digest,
    store_job,
    health,
    checkpoint,
    stage_open,
    stage_sync,
    stage_apply
  } kind;
  apply::RecordId id = 0;  // io; digest: the request's id; early_flush: the token given
  base::Status status;
  bool digest_mismatch = false;  // io: refused before writing
  bool disk_failed = false;      // stage_apply: the disk failed, not the stick
  // io: what was done where, for the health monitor's I/O error finding
  // (op "stage": an append to the stage on the stick, not the disk).
  // stage_sync: offset_bytes = the stage's synced bytes, length_bytes = the disk bytes it holds;
  // stage_apply: offset_bytes = the disk bytes copied, length_bytes = the microseconds it took;
  // when the disk failed (disk_failed), the failed operation, as for io.
  const char* op = "";
  uint64_t offset_bytes = 0;
  uint64_t length_bytes = 0;
  // digest: the request and its digests, in order.
  proto::DigestRequest request;
  uint64_t session_serial = 0;  // digest: the session that asked
  std::vector<digest::Digest> digests;
  // io with read-back: a sentence when the read-back found a difference
  // (then the extent was rewritten once; status says whether that held).
  std::string read_back_note;

  // What the health monitor hears as the disk's failure (an io or digest
  // completion): not a write cancelled unstarted (its session ended, or the
  // flush it waited for failed, which is reported itself), not a record
  // refused for its digest, not an append to the stage on the stick.
  bool disk_fault() const {
    return !status.is_ok() && status.code() != ECANCELED && !digest_mismatch && std::string_view(op) != "stage";
  }
};

// Thread-safe queue of completions. `wake` is called after each push, on the
// pushing thread (a disk or store worker, or the health monitor's) and under
// the queue's lock, so it must be quick and must not push: uv_async_send.
class Completions {
 public:
  void set_waker(std::function<void()> wake);
  // `urgent`: the disk waits for the loop to act on it (a flush done, the
  // last write in flight done); the loop takes such completions between the
  // frames of a read, not after megabytes of them (Daemon::feed_frames).
  void push(Completion c, bool urgent = false);
  // All of `batch` (emptied) with one lock and one wake; with `wake` false
  // without the wake, for completions a later push is sure to follow.
  void push_all(std::vector<Completion>& batch, bool wake = true, bool urgent = false);
  std::vector<Completion> take_all();
  // Whether an urgent push waits to be taken.
  bool urgent_waiting();
  // Wakes the loop for what is already pushed.
  void wake();
  // Hands every completion queued to `handle`, in the order pushed; then
  // takes the queue again while an urgent push waits that came meanwhile
  // (from `handle` itself, or a worker), `rounds` takes at most, none once
  // `stopped()` says so. What the disk's next step waits for is then taken
  // in the same drain, not after the loop's next read.
  void drain(const std::function<void(Completion&)>& handle, int rounds, const std::function<bool()>& stopped);

 private:
  std::mutex mutex_;
  std::vector<Completion> items_;
  bool urgent_ = false;  // since the last take_all
  std::function<void()> wake_;
};

// How the disk workers put themselves first in line ([apply]
// writer_priority_boost and writer_time_slice_us). nice_boost: each lowers its
// nice value by this much (needs CAP_SYS_NICE, which the unit grants).
// time_slice_us: each asks for time slices this short, which lets it run as
// soon as it wakes on kernels since 6.12, where a lower nice value no longer
// does (base::ask_this_thread_time_slice). 0: leave either as it is.
struct DiskWorkerPriority {
  uint32_t nice_boost = 0;
  uint32_t time_slice_us = 0;
};

// Writes, trims, zeroes, flushes and digest scans on a pool of threads.
//
// Small records are carried in batches, because on a virtual machine every
// hand-off between threads and every write syscall costs more than the
// record's crypto (docs/PERFORMANCE.md, "Where the time of a small record
// goes"): the loop thread stages what it submits while a Batch is open and
// hands it over with one lock and one wake-up; a worker takes consecutive
// writes up to kBatchBytes at a time, checks their digests, writes them with
// one BlockDevice::write_batch, and reports them with one push. Order is not
// changed: the apply machine submits only writes that may run concurrently.
class DiskWorkers {
 public:
  // A worker takes writes until its batch holds this many payload bytes or
  // kBatchJobsMax writes (a worker that leaves some wakes the next): an
  // epoch of small records in one write_batch, and up to eight records of
  // 1 MiB whose digests are checked side by side in SIMD lanes
  // (check_digests), which is quicker than one at a time on several
  // threads. With 64 KiB batches, so that larger records went alone, cloned
  // spent 1.54 CPU-s on 512 MiB of 64 KiB records where it now spends 0.87-0.94
  // (docs/PERFORMANCE.md).
  static constexpr uint64_t kBatchBytes = 8 * 1024 * 1024;
  static constexpr size_t kBatchJobsMax = 64;

  // While one is alive, jobs submitted on the loop thread wait in a list of
  // the loop thread's own, and go to the workers together when the last
  // Batch ends. Loop thread only; nestable.
  class Batch {
   public:
    explicit Batch(DiskWorkers& workers) : workers_(workers) { ++workers_.batch_depth_; }
    ~Batch();
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;

   private:
    DiskWorkers& workers_;
  };

  // read_back: after each write, read the data back and compare its digest
  // (a mismatch is rewritten once and reported; twice is a disk error).
  // `digest_key` outlives the workers: it is kept by reference (the daemon's
  // lives in guarded memory, config::GuardedKeys), never copied.
  // priority: how each worker thread puts itself first in line as it starts
  // (DiskWorkerPriority, above), so that a worker whose batch or flush
  // completed gets a CPU ahead of the loop thread's decrypting (and, on a
  // shared machine, of other processes) and issues the next one at once. A
  // worker that cannot keeps the daemon's priority or the kernel's slice, and
  // the first of them says so in the log.
  DiskWorkers(blockio::BlockDevice& device, const digest::DigestKey& digest_key, uint32_t threads, Completions& done,
              bool read_back = false, DiskWorkerPriority priority = {});
  DiskWorkers(blockio::BlockDevice&, digest::DigestKey&&, uint32_t, Completions&, bool = false,
              DiskWorkerPriority = {}) = delete;
  ~DiskWorkers();  // joins; pending jobs are completed first
  DiskWorkers(const DiskWorkers&) = delete;
  DiskWorkers& operator=(const DiskWorkers&) = delete;

  // A write carries its frame; the payload sits 4096-aligned inside it.
  // A resync extent with `only` not empty writes just those parts.
  // `after_flush_gate` not 0: held back until a flush with that gate (or a
  // later one) succeeds with every write it covers done without error (then
  // it runs like any other), completed unwritten with ECANCELED if that flush
  // or one of those writes fails (apply::SubmitIo::after_flush_gate; gates
  // increase and are never reused, so what a gate's flush decided holds for
  // the workers' lifetime).
  // `covered_by_gate`: the gate of the flush that is to make it durable; if
  // it fails, that flush lets nothing go (apply::SubmitIo::covered_by_gate).
  void submit(apply::RecordId id, const proto::RecordHeader& header, proto::Frame frame,
              std::vector<apply::Extent> only = {}, uint64_t after_flush_gate = 0, uint64_t covered_by_gate = 0);
  // `token`: the gate of the barrier flush this is (0: none); writes held
  // back behind it go once it succeeds.
  void flush(uint64_t token = 0);
  // Completes every write still held back, unwritten (ECANCELED): the
  // barrier they wait for will not be flushed.
  void cancel_after_flush();
  // An early flush: once every disk operation submitted before this call has
  // completed, the worker that completes the last one flushes the disk right
  // away and reports a Completion::Kind::early_flush (id = `token`) in the
  // same push as, and ahead of, that operation's completion. The daemon asks
  // for one when the apply machine will ask for a flush as soon as the writes
  // in flight complete (Machine::gate_after_in_flight), and answers that
  // flush with its result: the flush no longer waits for the completions to
  // travel to the loop thread and the flush request back to a worker. An
  // operation submitted after this call, or nothing outstanding when it is
  // made, cancels it (nothing is reported).
  void flush_when_drained(uint64_t token);
  // Reads the request's extents and digests them (keyed BLAKE2b), 1 MiB at a
  // time with the next piece read while this one is hashed; the range is
  // inside the disk (the caller checked).
  void digest(const proto::DigestRequest& request, uint64_t session_serial);
  // Scans asked by sessions before `session_serial` are not run any more:
  // one still queued is reported at once, ECANCELED, with no digests (a scan
  // already reading finishes). An original that reconnects during a verify
  // must not leave its old session's reads, up to a GiB each, queued before
  // the new session's writes (invariant 9).
  void drop_digests_before(uint64_t session_serial);
  // Tests only: run by a worker between settling a batch's writes and its
  // last push (set before anything is submitted).
  void set_test_hook_after_settle(std::function<void()> hook) { test_after_settle_ = std::move(hook); }

 private:
  struct Job {
    // flush_when_drained: never queued, it arms the early flush when published;
    // cancel_held: never queued, it cancels what is held when published (in
    // order with the writes staged before it in a Batch)
    enum class Kind { io, flush, digest, flush_when_drained, cancel_held } kind = Kind::io;
    apply::RecordId id = 0;         // io; flush, flush_when_drained: the token
    uint64_t after_flush_gate = 0;  // io: held back until this gate's flush
    uint64_t covered_by_gate = 0;   // io: the gate of the flush that makes it durable
    proto::RecordHeader header;
    proto::Frame frame;
    std::vector<apply::Extent> only;
    proto::DigestRequest request;
    uint64_t session_serial = 0;
    // io: its digest was checked while it was held back (check_held), and
    // whether it matched
    bool checked = false;
    bool digest_ok = false;
    uint64_t check_serial = 0;  // io: while out for its check, its entry in checking_
  };
  // A held write out with a worker for its digest check: what became of its
  // barrier's flush meanwhile, decided under the lock when it happened, and
  // carried out when the write comes back (check_held).
  struct OutForCheck {
    uint64_t serial = 0;
    uint64_t after_flush_gate = 0;
    enum class Fate { held, released, cancelled } fate = Fate::held;
  };
  void run();
  // Takes the next job, or a run of batchable writes (under the lock).
  void take_locked(std::vector<Job>& out);
  bool batchable(const Job& job) const;
  void publish(std::vector<Job>& jobs);
  // Both leave an io job's completion in `done` (flush and digest jobs push
  // their own); run() reports it after the accounting for the early flush.
  void perform(Job& job, std::vector<Completion>& done);
  void perform_batch(std::vector<Job>& jobs, std::vector<Completion>& done);
  // Counts `io_jobs` completed (`failed_gate`: the highest covered_by_gate
  // of those that failed, or 0).
  struct IoSettled {
    bool flush_now = false;  // that ends the wait of an early flush, `token`'s (so disk_idle)
    uint64_t token = 0;
    bool flush_follows = false;           // one is still armed for others outstanding
    bool disk_idle = false;               // nothing is left outstanding
    uint64_t early_flush_generation = 0;  // early_flush_generation_ when settled
  };
  IoSettled complete_io(size_t io_jobs, uint64_t failed_gate);
  // Whether the early flush was armed, fired or dropped since `generation`.
  bool early_flush_changed_since(uint64_t generation);
  void perform_digest(const Job& job);
  // Takes held writes whose digests are not checked yet, up to kBatchBytes
  // (under the lock), and checks them off the lock; then each goes where its
  // barrier's flush sent it meanwhile (OutForCheck).
  void take_unchecked_locked(std::vector<Job>& out);
  void check_held(std::vector<Job>& jobs);
  // A write's payload inside its frame, and whether it matches the record's
  // digest (checked while held, or now).
  static base::ByteSpan payload_of(const Job& job);
  bool digest_matches(const Job& job) const;
  // Checks the digests of every write in `jobs` not checked yet, all at once:
  // a batch of small records mostly shares one length, and the digests of
  // such a run are computed side by side in SIMD lanes (digest::keyed_digests).
  void check_digests(std::vector<Job>& jobs) const;
  // A held write's barrier flush succeeded: it counts as outstanding from
  // now on, and an early flush asked before must cover it.
  void release_locked();
  // After a flush for `token` (under the lock): lets the writes held back
  // behind it go (ok) or completes them unwritten into `cancelled`.
  void settle_after_flush_locked(uint64_t token, bool ok, std::vector<Completion>& cancelled);
  static Completion cancelled_completion(const Job& job);
  base::Status write_checked(uint64_t offset_bytes, base::ByteSpan data, std::string& note);
  void push_job(Job job);
  void put_first_in_line();  // a worker thread's priority and time slice (priority_)

  blockio::BlockDevice& device_;
  const digest::DigestKey& digest_key_;
  Completions& done_;
  const bool read_back_;
  const DiskWorkerPriority priority_;
  std::function<void()> test_after_settle_;
  std::atomic<bool> priority_noted_{false};  // the failure to raise it is logged once
  std::atomic<bool> slice_noted_{false};     // the failure to shorten the slice likewise
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  // Under mutex_: io jobs published and not yet completed, and the early
  // flush waiting for them to reach zero (armed) with its token.
  uint64_t io_outstanding_ = 0;
  bool early_flush_armed_ = false;
  uint64_t early_flush_token_ = 0;
  // Counts every change of early_flush_armed_: a worker whose completions
  // wait for the flush's push (no wake) learns from it that the push may
  // have gone before its own, and wakes the loop itself.
  uint64_t early_flush_generation_ = 0;
  // Under mutex_: writes held back behind a barrier's flush, the highest
  // gate whose flush let them go and the highest that cancelled them, and
  // the highest gate covering a write that failed (its flush lets none go).
  std::vector<Job> held_;
  size_t held_unchecked_ = 0;          // of held_: batchable and not checked
  std::vector<OutForCheck> checking_;  // held writes out for their check
  uint64_t check_serial_ = 0;
  uint64_t released_through_ = 0;
  uint64_t cancelled_through_ = 0;
  uint64_t failed_gate_ = 0;
  std::atomic<uint64_t> digests_from_serial_{0};  // drop_digests_before
  std::vector<std::thread> threads_;
  // Loop thread only: the open Batches, and what they hold back.
  uint32_t batch_depth_ = 0;
  std::vector<Job> staged_;
};

// Runs store commits and event appends on one thread, in order.
class StoreWorker {
 public:
  StoreWorker(store::Store& store, Completions& done);
  ~StoreWorker();
  StoreWorker(const StoreWorker&) = delete;
  StoreWorker& operator=(const StoreWorker&) = delete;

  void commit(const apply::ReplicaState& state);
  // Queues an event for the store's log. At most kMaxQueuedEvents wait; more
  // are dropped and counted, and the count is logged when the next event is
  // queued after them.
  void event(const std::string& level, const std::string& kind, const std::string& message);
  uint64_t events_dropped() const;  // since construction
  // Any other store work, in order with the commits (out-of-sync ranges, ...);
  // its status comes back as a store_job completion.
  void run_job(std::function<base::Status(store::Store&)> job);
  // Checkpoints the store after the jobs queued before it; completes as Kind::checkpoint.
  void checkpoint();

 private:
  struct Job {
    bool is_commit = false;
    bool is_checkpoint = false;
    apply::ReplicaState state;
    std::string level, kind, message;
    std::function<base::Status(store::Store&)> fn;
  };
  void run();

  store::Store& store_;
  Completions& done_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> jobs_;
  size_t events_queued_ = 0;
  uint64_t events_dropped_ = 0;           // in total
  uint64_t events_dropped_unlogged_ = 0;  // since the last event that got through
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace cloned
