// SPDX-License-Identifier: MIT
#include "cloned/daemon/workers.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "base/aligned_buffer.h"
#include "base/thread.h"

#include "base/log.h"

namespace cloned {

// The waker runs under the lock so that set_waker(nullptr) on the loop thread
// cannot race with a worker about to wake a handle that is being closed.
void Completions::set_waker(std::function<void()> wake) {
  std::lock_guard<std::mutex> lock(mutex_);
  wake_ = std::move(wake);
}

void Completions::push(Completion c, bool urgent) {
  std::lock_guard<std::mutex> lock(mutex_);
  items_.push_back(std::move(c));
  urgent_ = urgent_ || urgent;
  if (wake_) wake_();
}

void Completions::push_all(std::vector<Completion>& batch, bool wake, bool urgent) {
  if (batch.empty()) return;
  std::lock_guard<std::mutex> lock(mutex_);
  urgent_ = urgent_ || urgent;
  if (items_.empty()) {
    items_.swap(batch);
  } else {
    for (Completion& c : batch) items_.push_back(std::move(c));
  }
  batch.clear();
  if (wake && wake_) wake_();
}

void Completions::wake() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (wake_) wake_();
}

bool Completions::urgent_waiting() {
  std::lock_guard<std::mutex> lock(mutex_);
  return urgent_;
}

void Completions::drain(const std::function<void(Completion&)>& handle, int rounds,
                        const std::function<bool()>& stopped) {
  for (int round = 0; round < rounds; ++round) {
    for (Completion& c : take_all()) handle(c);
    if (stopped() || !urgent_waiting()) return;
  }
}

std::vector<Completion> Completions::take_all() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<Completion> out;
  out.swap(items_);
  urgent_ = false;
  return out;
}

DiskWorkers::DiskWorkers(blockio::BlockDevice& device, const digest::DigestKey& digest_key, uint32_t threads,
                         Completions& done, bool read_back, DiskWorkerPriority priority)
    : device_(device), digest_key_(digest_key), done_(done), read_back_(read_back), priority_(priority) {
  assert(threads > 0);
  for (uint32_t i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

DiskWorkers::~DiskWorkers() {
  drop_digests_before(UINT64_MAX);  // nobody waits for a scan still queued: not read at exit
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : threads_) t.join();
  std::vector<Completion> cancelled;
  for (const Job& job : held_) cancelled.push_back(cancelled_completion(job));
  done_.push_all(cancelled);
}

DiskWorkers::Batch::~Batch() {
  assert(workers_.batch_depth_ > 0);
  if (--workers_.batch_depth_ == 0) workers_.publish(workers_.staged_);
}

void DiskWorkers::push_job(Job job) {
  staged_.push_back(std::move(job));
  if (batch_depth_ == 0) publish(staged_);
}

// One lock and one wake-up for the lot; a worker that leaves jobs behind
// wakes the next (take_locked), so a burst of big records still spreads.
void DiskWorkers::publish(std::vector<Job>& jobs) {
  if (jobs.empty()) return;
  std::vector<Completion> cancelled;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (Job& job : jobs) {
      if (job.kind == Job::Kind::io && job.after_flush_gate > released_through_) {
        if (job.after_flush_gate <= cancelled_through_) {
          cancelled.push_back(cancelled_completion(job));
        } else {
          if (batchable(job)) ++held_unchecked_;
          held_.push_back(std::move(job));
        }
        continue;
      }
      if (job.kind == Job::Kind::cancel_held) {
        for (const Job& held : held_) {
          cancelled_through_ = std::max(cancelled_through_, held.after_flush_gate);
          cancelled.push_back(cancelled_completion(held));
        }
        held_.clear();
        held_unchecked_ = 0;
        for (OutForCheck& out : checking_) {
          if (out.fate != OutForCheck::Fate::held) continue;
          cancelled_through_ = std::max(cancelled_through_, out.after_flush_gate);
          out.fate = OutForCheck::Fate::cancelled;  // its checker completes it
        }
        continue;
      }
      if (job.kind == Job::Kind::flush_when_drained) {
        early_flush_armed_ = io_outstanding_ > 0;
        ++early_flush_generation_;
        early_flush_token_ = job.id;
        continue;
      }
      if (job.kind == Job::Kind::io) {
        ++io_outstanding_;
        early_flush_armed_ = false;  // it would not cover this one
        ++early_flush_generation_;
      }
      jobs_.push_back(std::move(job));
    }
  }
  jobs.clear();
  done_.push_all(cancelled);
  wake_.notify_one();
}

Completion DiskWorkers::cancelled_completion(const Job& job) {
  Completion c{Completion::Kind::io, job.id,
               base::Status::error(ECANCELED, "not written: the flush it waited for did not succeed")};
  c.op = "write";
  c.offset_bytes = job.header.offset_bytes;
  c.length_bytes = job.header.length_bytes;
  return c;
}

void DiskWorkers::settle_after_flush_locked(uint64_t token, bool ok, std::vector<Completion>& cancelled) {
  if (token == 0) return;
  ok = ok && failed_gate_ < token;  // a write this flush was to make durable failed
  if (ok) {
    released_through_ = std::max(released_through_, token);
  } else {
    cancelled_through_ = std::max(cancelled_through_, token);
  }
  // The thread that flushed takes the released writes itself: no wake-up.
  size_t kept = 0;
  for (Job& job : held_) {
    if (job.after_flush_gate > token) {
      held_[kept++] = std::move(job);
      continue;
    }
    if (batchable(job) && !job.checked) --held_unchecked_;
    if (ok) {
      release_locked();
      jobs_.push_back(std::move(job));
    } else {
      cancelled.push_back(cancelled_completion(job));
    }
  }
  held_.resize(kept);
  // Those out for their check are counted now, written when they come back.
  for (OutForCheck& out : checking_) {
    if (out.fate != OutForCheck::Fate::held || out.after_flush_gate > token) continue;
    if (ok) release_locked();
    out.fate = ok ? OutForCheck::Fate::released : OutForCheck::Fate::cancelled;
  }
}

void DiskWorkers::release_locked() {
  ++io_outstanding_;
  early_flush_armed_ = false;
  ++early_flush_generation_;
}

void DiskWorkers::take_unchecked_locked(std::vector<Job>& out) {
  uint64_t bytes = 0;
  size_t kept = 0;
  for (Job& job : held_) {
    if (bytes < kBatchBytes && out.size() < kBatchJobsMax && !job.checked && batchable(job)) {
      bytes += job.header.length_bytes;
      job.check_serial = ++check_serial_;
      checking_.push_back(OutForCheck{job.check_serial, job.after_flush_gate});
      --held_unchecked_;
      out.push_back(std::move(job));
    } else {
      held_[kept++] = std::move(job);
    }
  }
  held_.resize(kept);
  if (held_unchecked_ > 0) wake_.notify_one();
}

// The time the disk spends on the epoch before goes to checking the next
// one's digests, so that a whole epoch of small records can go in one batch.
void DiskWorkers::check_held(std::vector<Job>& jobs) {
  check_digests(jobs);
  std::vector<Completion> cancelled;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (Job& job : jobs) {
      const auto out = std::find_if(checking_.begin(), checking_.end(),
                                    [&](const OutForCheck& o) { return o.serial == job.check_serial; });
      assert(out != checking_.end());
      switch (out->fate) {
        case OutForCheck::Fate::held:
          held_.push_back(std::move(job));
          break;
        case OutForCheck::Fate::released:
          jobs_.push_back(std::move(job));
          break;  // counted when released
        case OutForCheck::Fate::cancelled:
          cancelled.push_back(cancelled_completion(job));
          break;
      }
      checking_.erase(out);
    }
  }
  jobs.clear();
  done_.push_all(cancelled);
}

base::ByteSpan DiskWorkers::payload_of(const Job& job) {
  // The payload follows the 64-byte header inside the frame, 4096-aligned.
  assert(job.frame.plain_bytes == proto::kWriteHeaderBytes + job.header.length_bytes);
  return {job.frame.plain_data() + proto::kWriteHeaderBytes, job.header.length_bytes};
}

void DiskWorkers::check_digests(std::vector<Job>& jobs) const {
  // A batch holds kBatchJobsMax writes at most: its payloads and digests fit
  // on the stack, and the write path allocates nothing for them.
  std::array<base::ByteSpan, kBatchJobsMax> payloads;
  std::array<digest::Digest, kBatchJobsMax> got;
  std::array<Job*, kBatchJobsMax> of;
  size_t n = 0;
  auto check = [&] {
    digest::keyed_digests(digest_key_, std::span(payloads.data(), n), std::span(got.data(), n));
    for (size_t i = 0; i < n; ++i) {
      of[i]->digest_ok = digest::digest_equal(got[i], of[i]->header.digest);
      of[i]->checked = true;
    }
    n = 0;
  };
  for (Job& job : jobs) {
    if (job.checked) continue;
    payloads[n] = payload_of(job);
    of[n++] = &job;
    if (n == kBatchJobsMax) check();
  }
  if (n > 0) check();
}

bool DiskWorkers::digest_matches(const Job& job) const {
  if (job.checked) return job.digest_ok;
  return digest::digest_equal(digest::keyed_digest(digest_key_, payload_of(job)), job.header.digest);
}

// Through the loop's staged jobs like any other: a write staged in the same
// Batch before it is held by the time it is published, and cancelled too.
void DiskWorkers::cancel_after_flush() {
  Job job;
  job.kind = Job::Kind::cancel_held;
  push_job(std::move(job));
}

void DiskWorkers::submit(apply::RecordId id, const proto::RecordHeader& header, proto::Frame frame,
                         std::vector<apply::Extent> only, uint64_t after_flush_gate, uint64_t covered_by_gate) {
  Job job;
  job.id = id;
  job.after_flush_gate = after_flush_gate;
  job.covered_by_gate = covered_by_gate;
  job.header = header;
  job.frame = std::move(frame);
  job.only = std::move(only);
  push_job(std::move(job));
}

void DiskWorkers::flush(uint64_t token) {
  Job job;
  job.kind = Job::Kind::flush;
  job.id = token;
  push_job(std::move(job));
}

void DiskWorkers::flush_when_drained(uint64_t token) {
  Job job;
  job.kind = Job::Kind::flush_when_drained;
  job.id = token;
  push_job(std::move(job));
}

void DiskWorkers::drop_digests_before(uint64_t session_serial) {
  uint64_t from = digests_from_serial_.load(std::memory_order_relaxed);
  while (from < session_serial && !digests_from_serial_.compare_exchange_weak(from, session_serial)) {
  }
}

void DiskWorkers::digest(const proto::DigestRequest& request, uint64_t session_serial) {
  Job job;
  job.kind = Job::Kind::digest;
  job.request = request;
  job.session_serial = session_serial;
  push_job(std::move(job));
}

// A write whose digest check and write can go with others': not a resync
// extent cut into parts, and not checked by reading back.
bool DiskWorkers::batchable(const Job& job) const {
  return job.kind == Job::Kind::io && !read_back_ && job.only.empty() &&
         (job.header.type == proto::MsgType::write || job.header.type == proto::MsgType::resync_data);
}

void DiskWorkers::take_locked(std::vector<Job>& out) {
  uint64_t bytes = 0;
  do {
    bytes += jobs_.front().header.length_bytes;
    out.push_back(std::move(jobs_.front()));
    jobs_.pop_front();
  } while (batchable(out.front()) && !jobs_.empty() && batchable(jobs_.front()) && bytes < kBatchBytes &&
           out.size() < kBatchJobsMax);
  if (!jobs_.empty() || held_unchecked_ > 0) wake_.notify_one();
}

void DiskWorkers::put_first_in_line() {
  if (base::Status s = base::raise_this_thread_priority(priority_.nice_boost);
      !s.is_ok() && !priority_noted_.exchange(true))
    LOG_NOTICE("disk workers keep the daemon's priority ([apply] writer_priority_boost = %u): %s", priority_.nice_boost,
               s.message().c_str());
  if (base::Status s = base::ask_this_thread_time_slice(priority_.time_slice_us);
      !s.is_ok() && !slice_noted_.exchange(true))
    LOG_NOTICE("disk workers keep the kernel's time slice ([apply] writer_time_slice_us = %u): %s",
               priority_.time_slice_us, s.message().c_str());
}

void DiskWorkers::run() {
  base::name_this_thread("cloned-disk");
  put_first_in_line();
  std::vector<Job> jobs;
  for (;;) {
    bool checking = false;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !jobs_.empty() || held_unchecked_ > 0; });
      if (!jobs_.empty()) {
        take_locked(jobs);
      } else if (!stopping_) {
        take_unchecked_locked(jobs);
        checking = true;
      } else {
        return;  // stopping, and everything done; what is held is cancelled by the destructor
      }
    }
    if (checking) {
      check_held(jobs);
      continue;
    }
    std::vector<Completion> done;
    size_t io_jobs = 0;
    uint64_t covered_by_gate = 0;  // the highest of the batch: writes of one epoch share theirs
    for (const Job& j : jobs) {
      if (j.kind != Job::Kind::io) continue;
      ++io_jobs;
      covered_by_gate = std::max(covered_by_gate, j.covered_by_gate);
    }
    if (jobs.size() == 1 && !batchable(jobs.front())) {
      perform(jobs.front(), done);
    } else {
      perform_batch(jobs, done);
    }
    jobs.clear();
    const bool failed = std::any_of(done.begin(), done.end(), [](const Completion& c) {
      return c.kind == Completion::Kind::io && !c.status.is_ok();
    });
    IoSettled settled;
    if (io_jobs > 0) settled = complete_io(io_jobs, failed ? covered_by_gate : 0);
    if (test_after_settle_) test_after_settle_();
    if (settled.flush_now) {
      // Every operation submitted before the request has completed: this
      // flush makes all of them durable, as the loop's own flush would.
      Completion c{Completion::Kind::early_flush, settled.token, device_.flush()};
      c.op = "flush";
      std::vector<Completion> cancelled;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        settle_after_flush_locked(settled.token, c.status.is_ok(), cancelled);
      }
      done.insert(done.begin(), std::move(c));
      for (Completion& x : cancelled) done.push_back(std::move(x));
    }
    // Completions an armed early flush will follow need not wake the loop:
    // the push that carries the flush does, and they are drained with it.
    // With nothing left on the disk (an early flush done with it, or not
    // armed), the next step of the epoch's chain is the loop's: urgent.
    done_.push_all(done, /*wake=*/!settled.flush_follows, /*urgent=*/settled.disk_idle);
    // Unless that flush fired (or was dropped) since this worker settled:
    // its push may then have come before this one and been drained without
    // it, and nothing would wake the loop for these.
    if (settled.flush_follows && early_flush_changed_since(settled.early_flush_generation)) done_.wake();
  }
}

bool DiskWorkers::early_flush_changed_since(uint64_t generation) {
  std::lock_guard<std::mutex> lock(mutex_);
  return early_flush_generation_ != generation;
}

DiskWorkers::IoSettled DiskWorkers::complete_io(size_t io_jobs, uint64_t failed_gate) {
  std::lock_guard<std::mutex> lock(mutex_);
  failed_gate_ = std::max(failed_gate_, failed_gate);
  assert(io_outstanding_ >= io_jobs);
  io_outstanding_ -= io_jobs;
  IoSettled out;
  out.disk_idle = io_outstanding_ == 0;
  out.flush_follows = io_outstanding_ > 0 && early_flush_armed_;
  out.early_flush_generation = early_flush_generation_;
  if (io_outstanding_ > 0 || !early_flush_armed_) return out;
  early_flush_armed_ = false;
  ++early_flush_generation_;
  out.flush_now = true;
  out.token = early_flush_token_;
  return out;
}

namespace {

// Reads are issued in pieces of this size (a whole number of extents).
constexpr uint64_t kDigestReadBytes = 1u << 20;

// What the disk was asked to do, by the name the health monitor reports
// ("The clone's disk failed a write ..."): a resync extent is a write or a
// write of zeroes like a log record, not a different operation.
const char* op_name(proto::MsgType type) {
  switch (type) {
    case proto::MsgType::write:
    case proto::MsgType::resync_data:
      return "write";
    case proto::MsgType::trim:
      return "discard";
    case proto::MsgType::zero:
    case proto::MsgType::resync_zero:
      return "write zeroes";
    default:
      return "disk operation";
  }
}

std::string extent_text(const proto::RecordHeader& h) {
  const std::string what = h.type == proto::MsgType::resync_data ? "resync data" : "record " + std::to_string(h.seq);
  return what + " (offset=" + std::to_string(h.offset_bytes) + " len=" + std::to_string(h.length_bytes) + ")";
}

}  // namespace

// Writes, and with read-back on, reads the data back: a difference is a
// hardware fault; it is rewritten once and reported in `note`.
base::Status DiskWorkers::write_checked(uint64_t offset, base::ByteSpan data, std::string& note) {
  BASE_TRY(device_.write(offset, data));
  if (!read_back_) return base::Status::ok();
  base::AlignedBuffer back(data.size());
  const digest::Digest want = digest::keyed_digest(digest_key_, data);
  for (int attempt = 0; attempt < 2; ++attempt) {
    BASE_TRY(device_.read(offset, back.span()));
    if (digest::digest_equal(digest::keyed_digest(digest_key_, back.span()), want)) return base::Status::ok();
    if (attempt == 0) {
      note = "read-back of " + std::to_string(data.size()) + " bytes at offset " + std::to_string(offset) +
             " differed from what was written; rewritten once";
      BASE_TRY(device_.write(offset, data));
    }
  }
  return base::Status::error(EIO, "read-back at offset " + std::to_string(offset) +
                                      " still differs after a rewrite: the disk does not keep what it is given");
}

void DiskWorkers::perform(Job& job, std::vector<Completion>& done) {
  if (job.kind == Job::Kind::flush) {
    Completion c{Completion::Kind::flush, 0, device_.flush()};
    c.op = "flush";
    std::vector<Completion> cancelled;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      settle_after_flush_locked(job.id, c.status.is_ok(), cancelled);
    }
    cancelled.push_back(std::move(c));
    done_.push_all(cancelled, /*wake=*/true, /*urgent=*/true);
    return;
  }
  if (job.kind == Job::Kind::digest) return perform_digest(job);
  const proto::RecordHeader& h = job.header;
  Completion c{Completion::Kind::io, job.id, {}};
  c.offset_bytes = h.offset_bytes;
  c.length_bytes = h.length_bytes;
  c.op = op_name(h.type);
  switch (h.type) {
    case proto::MsgType::write:
    case proto::MsgType::resync_data: {
      const base::ByteSpan payload = payload_of(job);
      if (!digest_matches(job)) {
        c.status =
            base::Status::error(EBADMSG, extent_text(h) + " does not match its digest; nothing of it was written.");
        c.digest_mismatch = true;
        break;
      }
      if (job.only.empty()) {
        c.status = write_checked(h.offset_bytes, payload, c.read_back_note);
        break;
      }
      // Parts of a resync extent: each starts on a logical block, maybe not on
      // the 4096-byte boundary O_DIRECT buffers need, so it is copied.
      for (const apply::Extent& e : job.only) {
        base::AlignedBuffer part(e.length_bytes);
        std::memcpy(part.data(), payload.data() + (e.offset_bytes - h.offset_bytes), e.length_bytes);
        c.status = write_checked(e.offset_bytes, part.span(), c.read_back_note);
        if (!c.status.is_ok()) break;
      }
      break;
    }
    case proto::MsgType::trim:
      c.status = device_.discard(h.offset_bytes, h.length_bytes);
      break;
    case proto::MsgType::zero:
      c.status = device_.write_zeroes(h.offset_bytes, h.length_bytes);
      break;
    case proto::MsgType::resync_zero: {
      const std::vector<apply::Extent> whole{{h.offset_bytes, h.length_bytes}};
      for (const apply::Extent& e : job.only.empty() ? whole : job.only) {
        c.status = device_.write_zeroes(e.offset_bytes, e.length_bytes);
        if (!c.status.is_ok()) break;
      }
      break;
    }
    default:
      assert(false && "only extents reach the disk workers");
  }
  if (!c.status.is_ok() && !c.digest_mismatch) c.status = c.status.with_context(extent_text(h));
  job.frame = proto::Frame{};  // free the payload before reporting
  done.push_back(std::move(c));
}

// Digests first (a record that does not match is refused, unwritten), then
// one write_batch for the rest; run() reports every completion with one push.
void DiskWorkers::perform_batch(std::vector<Job>& jobs, std::vector<Completion>& done) {
  done.reserve(jobs.size() + 1);  // and maybe an early flush
  std::vector<blockio::WriteOp> ops;
  std::vector<size_t> op_of;  // done[i]'s op, or SIZE_MAX when refused
  ops.reserve(jobs.size());
  op_of.reserve(jobs.size());
  check_digests(jobs);
  for (Job& job : jobs) {
    const proto::RecordHeader& h = job.header;
    assert(batchable(job));
    Completion c{Completion::Kind::io, job.id, {}};
    c.offset_bytes = h.offset_bytes;
    c.length_bytes = h.length_bytes;
    c.op = op_name(h.type);
    const base::ByteSpan payload = payload_of(job);
    if (digest_matches(job)) {
      op_of.push_back(ops.size());
      ops.push_back(blockio::WriteOp{h.offset_bytes, payload, {}});
    } else {
      c.status =
          base::Status::error(EBADMSG, extent_text(h) + " does not match its digest; nothing of it was written.");
      c.digest_mismatch = true;
      op_of.push_back(SIZE_MAX);
    }
    done.push_back(std::move(c));
  }
  device_.write_batch(ops);
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (op_of[i] != SIZE_MAX && !ops[op_of[i]].status.is_ok())
      done[i].status = ops[op_of[i]].status.with_context(extent_text(jobs[i].header));
    jobs[i].frame = proto::Frame{};  // free the payload before reporting
  }
}

void DiskWorkers::perform_digest(const Job& job) {
  const proto::DigestRequest& q = job.request;
  Completion c{Completion::Kind::digest, q.id, {}};
  c.request = q;
  c.session_serial = job.session_serial;
  c.op = "read";
  c.offset_bytes = q.offset_bytes;
  c.length_bytes = q.length_bytes();
  if (job.session_serial < digests_from_serial_.load(std::memory_order_relaxed)) {
    c.status = base::Status::error(ECANCELED, "digest scan not run: the session that asked for it has ended");
    return done_.push(std::move(c));
  }
  c.digests.reserve(q.count);
  const uint64_t piece = std::max<uint64_t>(q.extent_bytes, kDigestReadBytes / q.extent_bytes * q.extent_bytes);
  // The last extent may end at the disk's end, shorter than the others.
  const uint64_t total = std::min(q.length_bytes(), device_.geometry().size_bytes - q.offset_bytes);
  uint64_t done = 0;
  // Pieces come in order, the next one read while this one is hashed.
  c.status = device_.read_each(q.offset_bytes, total, piece, [&](uint64_t, base::ByteSpan data) {
    digest::append_extent_digests(digest_key_, data, q.extent_bytes, c.digests);
    done += data.size();
  });
  if (!c.status.is_ok())
    c.status = c.status.with_context("digest scan at offset " + std::to_string(q.offset_bytes + done));
  done_.push(std::move(c));
}

}  // namespace cloned
