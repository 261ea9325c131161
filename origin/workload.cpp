// SPDX-License-Identifier: MIT
#include "origin/workload.h"

#include <cassert>
#include <cerrno>
#include <string>

#include "base/units.h"

namespace origin {

using base::u64s;

base::Status check_workload_options(const WorkloadOptions& o, uint64_t disk_size_bytes, uint32_t logical_block_bytes) {
  const uint64_t lbs = logical_block_bytes;
  auto bad = [](const std::string& s) { return base::Status::error(EINVAL, s); };
  if (lbs == 0 || disk_size_bytes < lbs)
    return bad("the disk (" + u64s(disk_size_bytes) + " bytes) holds no whole block.");
  if (o.total_bytes == 0) return bad("--bytes must be more than 0.");
  if (o.write_min_bytes == 0 || o.write_min_bytes % lbs != 0 || o.write_max_bytes % lbs != 0)
    return bad("--write-min " + u64s(o.write_min_bytes) + " and --write-max " + u64s(o.write_max_bytes) +
               " must be whole multiples of the " + u64s(lbs) + "-byte logical block size.");
  if (o.write_min_bytes > o.write_max_bytes)
    return bad("--write-min " + u64s(o.write_min_bytes) + " is larger than --write-max " + u64s(o.write_max_bytes) +
               ".");
  if (o.write_max_bytes > proto::kMaxWritePayloadBytes)
    return bad("--write-max " + u64s(o.write_max_bytes) + " is over the protocol's 1 MiB per record.");
  if (o.write_max_bytes > disk_size_bytes)
    return bad("--write-max " + u64s(o.write_max_bytes) + " is larger than the disk (" + u64s(disk_size_bytes) +
               " bytes).");
  if (o.epoch_records_max == 0) return bad("--epoch-max must be at least 1 record.");
  if (o.trim_percent > 100) return bad("--trim-percent must be between 0 and 100.");
  return base::Status::ok();
}

base::Status check_epoch_fits_retention(const WorkloadOptions& o, uint64_t retention_bytes_max) {
  const uint64_t records = o.epoch_records != 0 ? o.epoch_records : o.epoch_records_max;
  const uint64_t largest = records * o.write_max_bytes;
  if (largest <= retention_bytes_max / 2) return base::Status::ok();
  return base::Status::error(EINVAL, "an epoch of up to " + u64s(records) + " records of up to " +
                                         u64s(o.write_max_bytes) + " bytes (" + u64s(largest) +
                                         " bytes) does not fit half the original's retained log ([origin] "
                                         "retention_bytes_max = " +
                                         u64s(retention_bytes_max) +
                                         "), which frees records only once a barrier after them is committed: "
                                         "lower --epoch-max or --write-max, or raise retention_bytes_max.");
}

WorkloadGenerator::WorkloadGenerator(const WorkloadOptions& options, uint64_t disk_size_bytes,
                                     uint32_t logical_block_bytes, const digest::DigestKey& digest_key,
                                     uint64_t first_seq, uint64_t first_epoch)
    : options_(options),
      disk_blocks_(disk_size_bytes / logical_block_bytes),
      block_bytes_(logical_block_bytes),
      digest_key_(digest_key),
      rng_(options.seed),
      next_seq_(first_seq),
      epoch_(first_epoch) {
  assert(check_workload_options(options, disk_size_bytes, logical_block_bytes).is_ok());
  assert(first_seq >= 1 && first_epoch >= 1);
}

bool WorkloadGenerator::next(Record& out) {
  if (!next_unsealed(out)) return false;
  if (out.header.type == proto::MsgType::write) seal_write(out, digest_key_);
  return true;
}

bool WorkloadGenerator::next_batch(std::vector<Record>& out, size_t max_records, uint64_t max_bytes) {
  assert(max_records > 0);
  out.clear();
  uint64_t bytes = 0;
  while (out.size() < max_records && bytes < max_bytes) {
    if (!next_unsealed(out.emplace_back())) {
      out.pop_back();
      break;
    }
    bytes += out.back().header.length_bytes;
  }
  std::vector<Record*> records;
  records.reserve(out.size());
  for (Record& r : out) records.push_back(&r);
  seal_writes(records, digest_key_);
  return !out.empty();
}

bool WorkloadGenerator::next_unsealed(Record& out) {
  if (finished_) return false;
  if (!epoch_open_) {
    epoch_records_left_ = draw_epoch_records();
    epoch_open_ = true;
  }
  const bool done = data_bytes_done_ >= options_.total_bytes;
  if (done || epoch_records_left_ == 0) {
    out = make_barrier(next_seq_++, epoch_++);
    epoch_open_ = false;
    finished_ = done;
    return true;
  }
  make_data_record(out);
  --epoch_records_left_;
  return true;
}

// A fixed count draws nothing, so the rest of the stream does not shift.
uint64_t WorkloadGenerator::draw_epoch_records() {
  if (options_.epoch_records > 0) return options_.epoch_records;
  return rng_.uniform(1, options_.epoch_records_max);
}

// Sequential placement draws nothing either; a record that would cross the
// end of the disk starts over at 0 (write_max_bytes <= disk size: checked).
uint64_t WorkloadGenerator::place_record(uint64_t length_bytes) {
  const uint64_t blocks = length_bytes / block_bytes_;
  if (options_.pattern == WorkloadPattern::random) return rng_.uniform(0, disk_blocks_ - blocks) * block_bytes_;
  if (next_offset_bytes_ + length_bytes > disk_blocks_ * block_bytes_) next_offset_bytes_ = 0;
  const uint64_t offset_bytes = next_offset_bytes_;
  next_offset_bytes_ += length_bytes;
  return offset_bytes;
}

void WorkloadGenerator::make_data_record(Record& out) {
  const bool trim = rng_.uniform(0, 99) < options_.trim_percent;
  const uint64_t blocks =
      rng_.uniform(options_.write_min_bytes / block_bytes_, options_.write_max_bytes / block_bytes_);
  const uint64_t length_bytes = blocks * block_bytes_;
  const uint64_t offset_bytes = place_record(length_bytes);
  if (trim) {
    out = make_extent(proto::MsgType::trim, next_seq_++, epoch_, offset_bytes, length_bytes);
  } else {
    const uint64_t payload_seed = rng_.next();
    out = begin_write(next_seq_++, epoch_, offset_bytes, static_cast<uint32_t>(length_bytes));
    const base::MutableByteSpan payload = payload_of(out);
    assert(payload.size() % 8 == 0);  // whole logical blocks
    fill_splitmix64(payload_seed, payload.data(), payload.size());
  }
  data_bytes_done_ += length_bytes;
}

}  // namespace origin
