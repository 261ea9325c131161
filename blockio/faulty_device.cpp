// SPDX-License-Identifier: MIT
#include "blockio/faulty_device.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/aligned_buffer.h"
#include "base/log.h"
#include "blockio/extent.h"

namespace blockio {
namespace {

// Our own mapping from the engine's output to numbers, because the standard
// distributions differ between standard libraries and a seed must replay
// everywhere. mt19937_64 itself is fully specified.
double unit_interval(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

uint64_t below(std::mt19937_64& rng, uint64_t bound) {
  assert(bound > 0);
  return rng() % bound;  // the bias is far below what a test can notice
}

std::string extent_text(uint64_t offset_bytes, uint64_t length_bytes) {
  return std::to_string(length_bytes) + " bytes at offset " + std::to_string(offset_bytes);
}

}  // namespace

FaultyDevice::FaultyDevice(std::unique_ptr<BlockDevice> inner, uint64_t seed)
    : inner_(std::move(inner)), rng_(seed) {
  assert(inner_);
}

Geometry FaultyDevice::geometry() const { return inner_->geometry(); }

base::Status FaultyDevice::check_powered() const {
  if (powered_) return base::Status::ok();
  return base::Status::error(EIO, "the device is without power after a simulated power cut; "
                                  "nothing was done (revive() it first)");
}

bool FaultyDevice::write_should_fail() {
  const uint64_t seen = write_count_ - writes_at_plan_;
  if (plan_.fail_write_after >= 0 && seen > static_cast<uint64_t>(plan_.fail_write_after)) return true;
  // Draw only when a rate is set, so that setting none leaves the sequence alone.
  return plan_.write_error_rate > 0.0 && unit_interval(rng_) < plan_.write_error_rate;
}

bool FaultyDevice::flush_should_fail() const {
  const uint64_t seen = flush_count_ - flushes_at_plan_;
  return plan_.fail_flush_after >= 0 && seen > static_cast<uint64_t>(plan_.fail_flush_after);
}

base::Status FaultyDevice::write(uint64_t offset_bytes, base::ByteSpan data) {
  assert_extent(geometry(), offset_bytes, data.size());
  assert_io_buffer(data.data());
  std::lock_guard<std::mutex> lock(mutex_);
  BASE_TRY(check_powered());
  ++write_count_;
  if (write_should_fail()) {
    return base::Status::error(plan_.error_code, "injected failure of write " + std::to_string(write_count_) +
                                                     " (" + extent_text(offset_bytes, data.size()) +
                                                     "); nothing of it was written");
  }
  pending_.push_back(Pending{Pending::Kind::write, offset_bytes, data.size(), {data.begin(), data.end()}});
  if (plan_.corrupt_writes > 0) {
    --plan_.corrupt_writes;
    pending_.back().data[0] ^= 0xff;
  }
  return base::Status::ok();
}

base::Status FaultyDevice::push_zero_range(Pending::Kind kind, uint64_t offset_bytes, uint64_t length_bytes) {
  assert_extent(geometry(), offset_bytes, length_bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  BASE_TRY(check_powered());
  pending_.push_back(Pending{kind, offset_bytes, length_bytes, {}});
  return base::Status::ok();
}

base::Status FaultyDevice::write_zeroes(uint64_t offset_bytes, uint64_t length_bytes) {
  return push_zero_range(Pending::Kind::zeroes, offset_bytes, length_bytes);
}

base::Status FaultyDevice::discard(uint64_t offset_bytes, uint64_t length_bytes) {
  return push_zero_range(Pending::Kind::discard, offset_bytes, length_bytes);
}

base::Status FaultyDevice::read(uint64_t offset_bytes, base::MutableByteSpan out) {
  assert_extent(geometry(), offset_bytes, out.size());
  assert_io_buffer(out.data());
  std::lock_guard<std::mutex> lock(mutex_);
  BASE_TRY(check_powered());
  BASE_TRY(inner_->read(offset_bytes, out));
  // Replay the overlay in order, so that later operations win where they overlap.
  const uint64_t end_bytes = offset_bytes + out.size();
  for (const Pending& op : pending_) {
    const uint64_t begin = std::max(op.offset_bytes, offset_bytes);
    const uint64_t end = std::min(op.offset_bytes + op.length_bytes, end_bytes);
    if (begin >= end) continue;
    uint8_t* target = out.data() + (begin - offset_bytes);
    if (op.kind == Pending::Kind::write) {
      std::memcpy(target, op.data.data() + (begin - op.offset_bytes), end - begin);
    } else {
      std::memset(target, 0, end - begin);
    }
  }
  return base::Status::ok();
}

base::Status FaultyDevice::apply(const Pending& op, uint64_t length_bytes) {
  assert(length_bytes <= op.length_bytes);
  if (length_bytes == 0) return base::Status::ok();
  switch (op.kind) {
    case Pending::Kind::write: {
      // The inner device may be an O_DIRECT file: it needs an aligned buffer.
      base::AlignedBuffer buffer(length_bytes);
      std::memcpy(buffer.data(), op.data.data(), length_bytes);
      return inner_->write(op.offset_bytes, buffer.span());
    }
    case Pending::Kind::zeroes: return inner_->write_zeroes(op.offset_bytes, length_bytes);
    case Pending::Kind::discard: return inner_->discard(op.offset_bytes, length_bytes);
  }
  assert(false && "unknown pending kind");
  return base::Status::error(EINVAL, "unknown pending operation");
}

base::Status FaultyDevice::apply_pending() {
  for (size_t i = 0; i < pending_.size(); ++i) {
    base::Status status = apply(pending_[i], pending_[i].length_bytes);
    if (!status.is_ok()) {
      // What reached the inner device is no longer ours to lose; the rest stays pending.
      pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(i));
      return status.with_context("flush could not pass an unflushed operation to " + inner_->describe());
    }
  }
  pending_.clear();
  return base::Status::ok();
}

base::Status FaultyDevice::flush() {
  std::lock_guard<std::mutex> lock(mutex_);
  BASE_TRY(check_powered());
  ++flush_count_;
  if (flush_should_fail()) {
    return base::Status::error(plan_.error_code, "injected failure of flush " + std::to_string(flush_count_) +
                                                     "; " + std::to_string(pending_.size()) +
                                                     " operations stay unflushed");
  }
  BASE_TRY(apply_pending());
  return inner_->flush();
}

void FaultyDevice::survive_power_cut(PowerCutMode mode) {
  std::vector<std::pair<const Pending*, uint64_t>> survivors;  // op and how much of it
  switch (mode) {
    case PowerCutMode::drop_unflushed: break;
    case PowerCutMode::keep_random:
      for (const Pending& op : pending_) {
        if (rng_() & 1) survivors.emplace_back(&op, op.length_bytes);
      }
      break;
    case PowerCutMode::tear_one: {
      if (pending_.empty()) break;
      const Pending& op = pending_[below(rng_, pending_.size())];
      const uint64_t block_bytes = geometry().logical_block_bytes;
      const uint64_t blocks = op.length_bytes / block_bytes;
      // A single sector is written atomically, so it cannot tear: it is lost.
      const uint64_t kept_blocks = blocks >= 2 ? 1 + below(rng_, blocks - 1) : 0;
      survivors.emplace_back(&op, kept_blocks * block_bytes);
      break;
    }
  }
  for (const auto& [op, length_bytes] : survivors) {
    base::Status status = apply(*op, length_bytes);
    if (!status.is_ok()) LOG_WARN("simulated power cut: %s", status.message().c_str());
  }
  // What survived is on the platter: make the inner device hold it durably.
  if (!survivors.empty()) {
    base::Status status = inner_->flush();
    if (!status.is_ok()) LOG_WARN("simulated power cut: %s", status.message().c_str());
  }
}

void FaultyDevice::power_cut(PowerCutMode mode) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (powered_) survive_power_cut(mode);
  pending_.clear();
  powered_ = false;
}

void FaultyDevice::revive() {
  std::lock_guard<std::mutex> lock(mutex_);
  powered_ = true;
}

bool FaultyDevice::is_powered() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return powered_;
}

void FaultyDevice::set_plan(const FaultPlan& plan) {
  assert(plan.write_error_rate >= 0.0 && plan.write_error_rate <= 1.0);
  assert(plan.error_code > 0);
  std::lock_guard<std::mutex> lock(mutex_);
  plan_ = plan;
  writes_at_plan_ = write_count_;
  flushes_at_plan_ = flush_count_;
}

std::string FaultyDevice::describe() const { return "faulty " + inner_->describe(); }

uint64_t FaultyDevice::write_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return write_count_;
}

uint64_t FaultyDevice::flush_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return flush_count_;
}

uint64_t FaultyDevice::unflushed_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return pending_.size();
}

BlockDevice& FaultyDevice::inner() { return *inner_; }

}  // namespace blockio
