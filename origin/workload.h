// SPDX-License-Identifier: MIT
// A seeded workload: the stream of records a busy original would capture.
//
// Records per epoch are uniform in 1..epoch_records_max, or exactly
// epoch_records when that is set (benchmarks want a fixed barrier interval);
// each data record is a trim with probability trim_percent/100, otherwise a
// write; its length is uniform in whole logical blocks between
// write_min_bytes and write_max_bytes. Its offset is uniform and
// block-aligned inside the disk (pattern random), or follows the previous
// record's end, starting at 0 and wrapping to 0 when the record would not fit
// (pattern sequential). A write's payload comes from a fast PRNG. Generation
// stops once the write and trim lengths add up to total_bytes; the open epoch
// is then closed by a barrier, so the stream always ends with one (and its
// last epoch may be shorter). The same options, seed and starting position
// give the same records, byte for byte.
//
// Threading: a generator is used by one thread.
#pragma once

#include <cstdint>
#include <vector>

#include "base/status.h"
#include "digest/digest.h"
#include "origin/record.h"
#include "origin/rng.h"

namespace origin {

enum class WorkloadPattern { random, sequential };

struct WorkloadOptions {
  uint64_t seed = 0;
  uint64_t total_bytes = 0;
  uint64_t write_min_bytes = 4096;
  uint64_t write_max_bytes = 1u << 20;
  uint32_t epoch_records_max = 64;
  uint32_t trim_percent = 0;
  WorkloadPattern pattern = WorkloadPattern::random;
  uint32_t epoch_records = 0;  // 0: uniform in 1..epoch_records_max; else exactly this many
};

// A sentence for the first option that does not fit the disk or the protocol
// limits (sizes must be whole logical blocks, at most 1 MiB, min <= max).
base::Status check_workload_options(const WorkloadOptions& options, uint64_t disk_size_bytes,
                                    uint32_t logical_block_bytes);
// An epoch of these options at its largest must fit half the original's
// retained log: records are freed only once a barrier after them is
// committed, so one epoch larger than the log would wait for ever.
base::Status check_epoch_fits_retention(const WorkloadOptions& options, uint64_t retention_bytes_max);

class WorkloadGenerator {
 public:
  // Options must have passed check_workload_options (asserted).
  WorkloadGenerator(const WorkloadOptions& options, uint64_t disk_size_bytes, uint32_t logical_block_bytes,
                    const digest::DigestKey& digest_key, uint64_t first_seq, uint64_t first_epoch);

  // The next record; false once the final barrier has been produced.
  bool next(Record& out);
  // The next records, as next() would give them one by one, into `out`
  // (cleared first): up to `max_records`, stopping once they hold
  // `max_bytes` of payload. Their digests are computed together, several at
  // once (seal_writes). False, `out` empty, once the final barrier is out.
  bool next_batch(std::vector<Record>& out, size_t max_records, uint64_t max_bytes);

  uint64_t data_bytes_done() const { return data_bytes_done_; }
  uint64_t total_bytes() const { return options_.total_bytes; }
  uint64_t next_seq() const { return next_seq_; }
  uint64_t next_epoch() const { return epoch_; }  // epoch the next record would open or continue
  bool finished() const { return finished_; }

 private:
  bool next_unsealed(Record& out);  // next() but for the write's digest
  void make_data_record(Record& out);
  uint64_t draw_epoch_records();
  uint64_t place_record(uint64_t length_bytes);  // the offset of the next data record

  WorkloadOptions options_;
  uint64_t disk_blocks_;
  uint32_t block_bytes_;
  digest::DigestKey digest_key_;
  Rng rng_;
  uint64_t next_seq_;
  uint64_t epoch_;
  uint64_t epoch_records_left_ = 0;  // drawn at an epoch's first record
  uint64_t next_offset_bytes_ = 0;   // sequential pattern: where the next record starts
  bool epoch_open_ = false;
  uint64_t data_bytes_done_ = 0;
  bool finished_ = false;
};

}  // namespace origin
