// SPDX-License-Identifier: MIT
// The stage worker (stage_worker.h).
#include "cloned/daemon/stage_worker.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>

#include "base/log.h"
#include "base/thread.h"
#include "base/units.h"

namespace cloned {

using base::u64s;

static_assert(stage::kHeaderBytes == apply::kStageHeaderBytes &&
                  stage::kEntryHeaderBytes == apply::kStageEntryHeaderBytes,
              "the apply machine reckons a resync_plan's cost on the stick with the stage's sizes");

StageWorker::StageWorker(std::string path, const stage::Limits& limits, blockio::BlockDevice& device,
                         const digest::DigestKey& digest_key, Completions& done)
    : path_(std::move(path)), limits_(limits), device_(device), digest_key_(digest_key), done_(done) {
  thread_ = std::thread([this] { run(); });
}

StageWorker::~StageWorker() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void StageWorker::push(Job job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    jobs_.push_back(std::move(job));
  }
  wake_.notify_one();
}

void StageWorker::open(const apply::StageOpen& how) {
  Job j;
  j.kind = Job::Kind::open;
  j.how = how;
  push(std::move(j));
}

void StageWorker::append(apply::RecordId id, const proto::RecordHeader& header, proto::Frame frame) {
  Job j;
  j.kind = Job::Kind::append;
  j.id = id;
  j.header = header;
  j.frame = std::move(frame);
  push(std::move(j));
}

apply::StageRoom StageWorker::room() const {
  apply::StageRoom r;
  r.bound_bytes = limits_.max_bytes;
  const std::string dir = path_.substr(0, path_.find_last_of('/') == std::string::npos ? 0 : path_.find_last_of('/'));
  base::Result<uint64_t> free = stage::free_bytes_at(dir.empty() ? "." : dir);
  if (!free) {
    LOG_WARN("%s", free.status().message().c_str());
    return r;  // nothing known free: the plan does not fit, and says why in its figures
  }
  r.free_bytes = *free - std::min(*free, limits_.free_reserve_bytes);
  struct stat st {};
  if (::stat(path_.c_str(), &st) == 0) r.stage_file_bytes = static_cast<uint64_t>(st.st_blocks) * 512;
  return r;
}

void StageWorker::sync() { push(Job{Job::Kind::sync}); }
void StageWorker::apply() { push(Job{Job::Kind::apply}); }
void StageWorker::remove() { push(Job{Job::Kind::remove}); }

void StageWorker::run() {
  base::name_this_thread("cloned-stage");
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    perform(job);
  }
}

void StageWorker::do_open(const apply::StageOpen& how) {
  stage_.reset();
  broken_ = base::Status::ok();
  base::Result<std::unique_ptr<stage::Medium>> medium = stage::open_file(path_, how.create);
  base::Status st = medium.is_ok() ? base::Status::ok() : medium.status();
  if (st.is_ok()) {
    base::Result<stage::Stage> s =
        how.create ? stage::Stage::create(std::move(medium).value(),
                                          {how.generation, how.base_generation, device_.geometry().size_bytes}, limits_)
                   : stage::Stage::open(std::move(medium).value(), how.durable_bytes, limits_);
    if (s.is_ok() && s->header().generation != how.generation)
      s = base::Status::error(
          EINVAL, path_ + " stages generation " + u64s(s->header().generation) + ", not " + u64s(how.generation) + ".");
    if (s.is_ok())
      stage_.emplace(std::move(s).value());
    else
      st = s.status();
  }
  broken_ = st;
  done_.push(Completion{Completion::Kind::stage_open, 0, st});
}

void StageWorker::do_append(Job& job) {
  const proto::RecordHeader& h = job.header;
  Completion c{Completion::Kind::io, job.id, broken_};
  c.op = "stage";
  c.offset_bytes = h.offset_bytes;
  c.length_bytes = h.length_bytes;
  if (c.status.is_ok() && !stage_)
    c.status = base::Status::error(EINVAL, "resync data arrived for a stage that is not open.");
  if (c.status.is_ok() && h.type == proto::MsgType::resync_data) {
    base::ByteSpan payload(job.frame.plain_data() + proto::kWriteHeaderBytes, h.length_bytes);
    if (!digest::digest_equal(digest::keyed_digest(digest_key_, payload), h.digest)) {
      c.status =
          base::Status::error(EBADMSG, "resync data (offset=" + u64s(h.offset_bytes) + " len=" + u64s(h.length_bytes) +
                                           ") does not match its digest; nothing of it was staged.");
      c.digest_mismatch = true;
    } else {
      c.status = stage_->append_data(h.offset_bytes, payload, h.digest);
    }
  } else if (c.status.is_ok()) {
    c.status = stage_->append_zero(h.offset_bytes, h.length_bytes);
  }
  if (!c.status.is_ok() && !c.digest_mismatch && broken_.is_ok()) broken_ = c.status;
  job.frame = proto::Frame{};
  done_.push(std::move(c));
}

void StageWorker::perform(Job& job) {
  switch (job.kind) {
    case Job::Kind::open:
      return do_open(job.how);
    case Job::Kind::append:
      return do_append(job);
    case Job::Kind::sync: {
      Completion c{Completion::Kind::stage_sync, 0, broken_};
      if (c.status.is_ok() && !stage_) c.status = base::Status::error(EINVAL, "no stage is open to sync.");
      if (c.status.is_ok()) c.status = stage_->sync();
      if (c.status.is_ok()) {
        c.offset_bytes = stage_->synced_bytes();
        c.length_bytes = stage_->staged_disk_bytes();
      } else if (broken_.is_ok()) {
        broken_ = c.status;
      }
      return done_.push(std::move(c));
    }
    case Job::Kind::apply: {
      Completion c{Completion::Kind::stage_apply, 0, broken_};
      if (c.status.is_ok() && !stage_) c.status = base::Status::error(EINVAL, "no stage is open to apply.");
      const uint64_t start_ns = base::monotonic_ns();
      stage::DiskFault fault;
      if (c.status.is_ok()) c.status = stage::apply_stage(*stage_, device_, &fault);
      c.disk_failed = fault.op != nullptr;
      if (c.disk_failed) {  // for the health monitor's I/O error finding
        c.op = fault.op;
        c.offset_bytes = fault.offset_bytes;
        c.length_bytes = fault.length_bytes;
        return done_.push(std::move(c));
      }
      if (stage_) c.offset_bytes = stage_->staged_disk_bytes();
      c.length_bytes = (base::monotonic_ns() - start_ns) / 1000;  // the window the disk is no whole generation
      return done_.push(std::move(c));
    }
    case Job::Kind::remove: {
      stage_.reset();
      broken_ = base::Status::ok();
      if (base::Status s = stage::remove_file(path_); !s.is_ok()) LOG_WARN("%s", s.message().c_str());
      return;
    }
  }
}

}  // namespace cloned
