// SPDX-License-Identifier: MIT
// A fault-injecting BlockDevice wrapper (leveldb's fault_injection_test.cc).
//
// It keeps every write, zero and discard that has not been flushed in an
// overlay in memory and passes them to the inner device only at flush(). Reads
// see the overlay. power_cut() loses the overlay (optionally tearing one
// unflushed write, or keeping a seeded random subset), then every call fails
// with EIO until revive(): what the inner device holds is what a real disk
// would hold after the power came back. Write and flush failures can be
// triggered after a count or at a seeded random rate.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <vector>

#include "blockio/device.h"

namespace blockio {

enum class PowerCutMode {
  drop_unflushed,   // all unflushed operations are lost
  keep_random,      // each unflushed operation survives with probability 1/2
  tear_one,         // all lost but one, of which a random prefix of sectors survives
};

// Counts run from set_plan(): fail_write_after = 2 lets two more writes through.
// Only write() and flush() fail by plan; a failed write is not applied at all,
// a failed flush leaves the unflushed operations unflushed.
struct FaultPlan {
  int64_t fail_write_after = -1;  // the (n+1)th write and all after fail; -1 = never
  double write_error_rate = 0.0;  // each write fails with this probability
  int64_t fail_flush_after = -1;  // the (n+1)th flush and all after fail; -1 = never
  int error_code = 5;             // EIO
  // The next this many writes report success but keep a flipped first byte:
  // a disk that does not hold what it is given (the read-back check's case).
  int64_t corrupt_writes = 0;
};

class FaultyDevice final : public BlockDevice {
 public:
  FaultyDevice(std::unique_ptr<BlockDevice> inner, uint64_t seed);

  Geometry geometry() const override;
  base::Status write(uint64_t offset_bytes, base::ByteSpan data) override;
  base::Status read(uint64_t offset_bytes, base::MutableByteSpan out) override;
  base::Status write_zeroes(uint64_t offset_bytes, uint64_t length_bytes) override;
  base::Status discard(uint64_t offset_bytes, uint64_t length_bytes) override;
  base::Status flush() override;
  std::string describe() const override;

  void set_plan(const FaultPlan& plan);
  void power_cut(PowerCutMode mode);
  void revive();  // the power is back: operations work again
  bool is_powered() const;

  uint64_t write_count() const;  // write() calls while powered, failed ones included
  uint64_t flush_count() const;  // flush() calls while powered, failed ones included
  uint64_t unflushed_count() const;
  BlockDevice& inner();

 private:
  struct Pending {
    enum class Kind { write, zeroes, discard };
    Kind kind = Kind::write;
    uint64_t offset_bytes = 0;
    uint64_t length_bytes = 0;
    std::vector<uint8_t> data;  // write only: zero ranges keep no bytes, so they stay cheap
  };
  // All of these require mutex_ held.
  base::Status check_powered() const;
  bool write_should_fail();
  bool flush_should_fail() const;
  base::Status push_zero_range(Pending::Kind kind, uint64_t offset_bytes, uint64_t length_bytes);
  base::Status apply(const Pending& op, uint64_t length_bytes);  // its first length_bytes
  base::Status apply_pending();
  void survive_power_cut(PowerCutMode mode);

  mutable std::mutex mutex_;
  std::unique_ptr<BlockDevice> inner_;
  std::mt19937_64 rng_;
  FaultPlan plan_;
  std::vector<Pending> pending_;
  bool powered_ = true;
  uint64_t write_count_ = 0;
  uint64_t flush_count_ = 0;
  uint64_t writes_at_plan_ = 0;  // write_count_ when the plan was set
  uint64_t flushes_at_plan_ = 0;
};

}  // namespace blockio
