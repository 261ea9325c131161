// SPDX-License-Identifier: MIT
#include "cloned/daemon/workers.h"

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>

#include "base/aligned_buffer.h"

#include "base/log.h"

namespace cloned {


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

DiskWorkers::DiskWorkers(blockio::BlockDevice& device, const digest::DigestKey& digest_key, uint32_t threads,
                         Completions& done, bool read_back)
    : device_(device), digest_key_(digest_key), done_(done), read_back_(read_back) {
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

void DiskWorkers::push_job(Job job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    jobs_.push_back(std::move(job));
  }
  wake_.notify_one();
}

void DiskWorkers::submit(apply::RecordId id, const proto::RecordHeader& header, proto::Frame frame,
                         std::vector<apply::Extent> only) {
  Job job;
  job.id = id;
  job.header = header;
  job.frame = std::move(frame);
  job.only = std::move(only);
  push_job(std::move(job));
}

void DiskWorkers::flush() {
  Job job;
  job.kind = Job::Kind::flush;
  push_job(std::move(job));
}

void DiskWorkers::digest(const proto::DigestRequest& request, uint64_t session_serial) {
  Job job;
  job.kind = Job::Kind::digest;
  job.request = request;
  job.session_serial = session_serial;
  push_job(std::move(job));
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

namespace {

// Reads are issued in pieces of this size (a whole number of extents).
constexpr uint64_t kDigestReadBytes = 1u << 20;

// What the disk was asked to do, by the name the health monitor reports
// ("The clone's disk failed a write ..."): a resync extent is a write or a
// write of zeroes like a log record, not a different operation.
const char* op_name(proto::MsgType type) {
  switch (type) {
    case proto::MsgType::write:
    case proto::MsgType::resync_data: return "write";
    case proto::MsgType::trim: return "discard";
    case proto::MsgType::zero:
    case proto::MsgType::resync_zero: return "write zeroes";
    default: return "disk operation";
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

void DiskWorkers::perform(Job& job) {
  if (job.kind == Job::Kind::flush) {
    Completion c{Completion::Kind::flush, 0, device_.flush()};
    c.op = "flush";
    done_.push(std::move(c));
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
      // The payload follows the 64-byte header inside the frame, 4096-aligned.
      base::ByteSpan payload(job.frame.plain_data() + proto::kWriteHeaderBytes, h.length_bytes);
      assert(job.frame.plain_bytes == proto::kWriteHeaderBytes + h.length_bytes);
      if (!digest::digest_equal(digest::keyed_digest(digest_key_, payload), h.digest)) {
        c.status = base::Status::error(EBADMSG, extent_text(h) + " does not match its digest; nothing of it was written.");
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
    case proto::MsgType::trim: c.status = device_.discard(h.offset_bytes, h.length_bytes); break;
    case proto::MsgType::zero: c.status = device_.write_zeroes(h.offset_bytes, h.length_bytes); break;
    case proto::MsgType::resync_zero: {
      const std::vector<apply::Extent> whole{{h.offset_bytes, h.length_bytes}};
      for (const apply::Extent& e : job.only.empty() ? whole : job.only) {
        c.status = device_.write_zeroes(e.offset_bytes, e.length_bytes);
        if (!c.status.is_ok()) break;
      }
      break;
    }
    default: assert(false && "only extents reach the disk workers");
  }
  if (!c.status.is_ok() && !c.digest_mismatch) c.status = c.status.with_context(extent_text(h));
  job.frame = proto::Frame{};  // free the payload before reporting
  done_.push(std::move(c));
}

void DiskWorkers::perform_digest(const Job& job) {
  const proto::DigestRequest& q = job.request;
  Completion c{Completion::Kind::digest, q.id, {}};
  c.request = q;
  c.session_serial = job.session_serial;
  c.op = "read";
  c.offset_bytes = q.offset_bytes;
  c.length_bytes = q.length_bytes();
  c.digests.reserve(q.count);
  const uint64_t piece = std::max<uint64_t>(q.extent_bytes, kDigestReadBytes / q.extent_bytes * q.extent_bytes);
  base::AlignedBuffer buf(piece);
  uint64_t done = 0;
  // The last extent may end at the disk's end, shorter than the others.
  const uint64_t total = std::min(q.length_bytes(), device_.geometry().size_bytes - q.offset_bytes);
  while (done < total) {
    const uint64_t n = std::min(piece, total - done);
    base::MutableByteSpan span(buf.data(), n);
    c.status = device_.read(q.offset_bytes + done, span);
    if (!c.status.is_ok()) {
      c.status = c.status.with_context("digest scan at offset " + std::to_string(q.offset_bytes + done));
      break;
    }
    for (uint64_t at = 0; at < n; at += q.extent_bytes) {
      const uint64_t len = std::min<uint64_t>(q.extent_bytes, n - at);
      c.digests.push_back(digest::keyed_digest(digest_key_, base::ByteSpan(buf.data() + at, len)));
    }
    done += n;
  }
  done_.push(std::move(c));
}

}  // namespace cloned
