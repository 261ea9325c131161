// SPDX-License-Identifier: MIT
#include "origin/log.h"

#include <algorithm>
#include <cassert>

namespace origin {

RetainedLog::RetainedLog(uint64_t retention_bytes_max, uint64_t next_seq)
    : retention_bytes_max_(retention_bytes_max), next_seq_(next_seq) {
  assert(next_seq >= 1);
  assert(retention_bytes_max > 0);
}

bool RetainedLog::append(RecordPtr record) {
  assert(record);
  const uint64_t cost = cost_bytes(*record);
  std::function<void()> listener;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    assert(record->header.seq == next_seq_);
    space_.wait(lock, [&] {
      return closed_ || records_.empty() || held_bytes_ + cost <= retention_bytes_max_;
    });
    if (closed_) return false;
    ++next_seq_;
    if (record->header.seq > trimmed_seq_) {
      records_.push_back(std::move(record));
      held_bytes_ += cost;
    }
    listener = listener_;
  }
  if (listener) listener();
  return true;
}

void RetainedLog::trim_upto(uint64_t seq) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    trimmed_seq_ = std::max(trimmed_seq_, seq);
    while (!records_.empty() && records_.front()->header.seq <= seq) {
      held_bytes_ -= cost_bytes(*records_.front());
      records_.pop_front();
    }
  }
  space_.notify_all();
}

RecordPtr RetainedLog::get(uint64_t seq) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const uint64_t start = start_seq_locked();
  if (seq < start || seq >= next_seq_) return nullptr;
  return records_[seq - start];
}

uint64_t RetainedLog::start_seq() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return start_seq_locked();
}

uint64_t RetainedLog::end_seq() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return next_seq_ - 1;
}

uint64_t RetainedLog::advertised_end_seq() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return std::max(known_end_seq_, next_seq_ - 1);
}

void RetainedLog::set_known_end_seq(uint64_t seq) {
  std::lock_guard<std::mutex> lock(mutex_);
  known_end_seq_ = seq;
}

uint64_t RetainedLog::held_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return held_bytes_;
}

void RetainedLog::set_append_listener(std::function<void()> listener) {
  std::lock_guard<std::mutex> lock(mutex_);
  listener_ = std::move(listener);
}

void RetainedLog::close() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
  }
  space_.notify_all();
}

bool RetainedLog::closed() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return closed_;
}

}  // namespace origin
