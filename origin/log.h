// SPDX-License-Identifier: MIT
// The retained log: the records the original has captured and the clone has
// not yet committed (design.md invariant 4). Records stay here, in memory,
// until the clone's `committed(seq)` says its state store holds seq; only
// then may trim_upto(seq) free them, so that after any disconnect or clone
// crash the original can resend everything after the clone's applied
// position.
//
// Bounded: append blocks while the held bytes would exceed
// retention_bytes_max (backpressure on the producer, not buffering); a
// record is always admitted into an empty log so that one record larger than
// the bound cannot deadlock.
//
// Threading: thread-safe. Typically one producer thread appends and the
// connection thread reads (get) and trims. close() wakes a blocked producer,
// whose append then returns false.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>

#include "origin/record.h"

namespace origin {

// Memory charged per record on top of its encoding, so that a flood of tiny
// records is bounded too.
inline constexpr uint64_t kRecordOverheadBytes = 128;

class RetainedLog {
 public:
  // `next_seq`: the sequence number the first appended record must carry.
  RetainedLog(uint64_t retention_bytes_max, uint64_t next_seq);
  RetainedLog(const RetainedLog&) = delete;
  RetainedLog& operator=(const RetainedLog&) = delete;

  // Appends the next record (its seq must be end_seq() + 1: asserted).
  // Blocks while the log is full. False once close() was called. A record
  // the clone has committed already (seq <= the highest trim_upto) is
  // counted but not kept: a replay may start behind the clone.
  bool append(RecordPtr record);
  // Frees every record with seq <= `seq` (the clone committed it), and
  // those appended later with such a seq.
  void trim_upto(uint64_t seq);
  // The record with this seq, or null when it is not held (trimmed already,
  // or not yet appended).
  RecordPtr get(uint64_t seq) const;

  // Oldest record held; end_seq() + 1 when the log is empty.
  uint64_t start_seq() const;
  // Newest record appended; start - 1 before anything was appended.
  uint64_t end_seq() const;
  // Newest record the original has: end_seq(), or more when the producer
  // declared records it will append (a spool being replayed).
  uint64_t advertised_end_seq() const;
  void set_known_end_seq(uint64_t seq);
  uint64_t held_bytes() const;
  uint64_t retention_bytes_max() const { return retention_bytes_max_; }

  // Called after each append, outside the lock, on the producer's thread
  // (the replicator wakes its connection thread with it). Set before use.
  void set_append_listener(std::function<void()> listener);
  // Wakes and refuses producers from now on.
  void close();
  bool closed() const;

 private:
  static uint64_t cost_bytes(const Record& r) { return r.plain.size() + kRecordOverheadBytes; }
  uint64_t start_seq_locked() const { return records_.empty() ? next_seq_ : records_.front()->header.seq; }

  const uint64_t retention_bytes_max_;
  mutable std::mutex mutex_;
  std::condition_variable space_;
  std::deque<RecordPtr> records_;  // consecutive seqs, the last one next_seq_ - 1
  uint64_t next_seq_;              // seq of the next append
  uint64_t trimmed_seq_ = 0;       // highest seq the clone committed
  uint64_t known_end_seq_ = 0;
  uint64_t held_bytes_ = 0;
  bool closed_ = false;
  std::function<void()> listener_;
};

}  // namespace origin
