// SPDX-License-Identifier: MIT
// The target disk, behind an interface with a memory fake and a fault injector
// (ninja's DiskInterface, leveldb's Env). Only blockio opens the target disk.
//
// Thread-safety contract for every BlockDevice: write, read, write_zeroes and
// discard may be called concurrently from several threads for ranges that do
// not overlap; flush may be called from any thread and makes durable every
// operation that *completed* before flush was called. Callers order
// overlapping operations themselves.
//
// Alignment contract: offsets and lengths are multiples of the logical block
// size and inside the device; data buffers passed to write/read are aligned
// to base::kIoAlignmentBytes. Violations are programmer errors (asserted);
// validating peer input is the caller's job, before it gets here.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "base/bytes.h"
#include "base/status.h"

namespace blockio {

struct Geometry {
  uint64_t size_bytes = 0;
  uint32_t logical_block_bytes = 512;
  uint32_t physical_block_bytes = 4096;
};

// One write of a batch (BlockDevice::write_batch).
struct WriteOp {
  uint64_t offset_bytes = 0;
  base::ByteSpan data;  // aligned as write()'s
  base::Status status;  // how it went, set by write_batch
};

class BlockDevice {
 public:
  virtual ~BlockDevice() = default;

  virtual Geometry geometry() const = 0;
  // Writes all of `data` at `offset_bytes`. A short write is an error.
  virtual base::Status write(uint64_t offset_bytes, base::ByteSpan data) = 0;
  // Writes every op as write() would, each op's status saying how it went.
  // The ops must not overlap one another (nor anything else in flight). A
  // device that can do better writes them concurrently, in one submission,
  // adjacent ops as one vectored write; this default writes them in turn.
  virtual void write_batch(std::span<WriteOp> ops) {
    for (WriteOp& op : ops) op.status = write(op.offset_bytes, op.data);
  }
  // Reads exactly out.size() bytes.
  virtual base::Status read(uint64_t offset_bytes, base::MutableByteSpan out) = 0;
  // Reads [offset_bytes, offset_bytes + length_bytes) in order, piece_bytes
  // at a time (the last piece may be shorter), and hands each piece to
  // `consume` with its offset. Stops at the first read that fails and
  // returns its status; every piece before it was consumed. A device that
  // can do better reads the next piece while `consume` runs on this one
  // (read-ahead: a scan's reading and hashing overlap in one thread); this
  // default reads each piece with read() into one buffer.
  using PieceConsumer = std::function<void(uint64_t offset_bytes, base::ByteSpan data)>;
  virtual base::Status read_each(uint64_t offset_bytes, uint64_t length_bytes, uint64_t piece_bytes,
                                 const PieceConsumer& consume);
  // The range reads back as zeroes and stays allocated.
  virtual base::Status write_zeroes(uint64_t offset_bytes, uint64_t length_bytes) = 0;
  // The range is no longer needed; it reads back as zeroes afterwards (we
  // promise zeroes, not "undefined", so that a clone stays byte-identical).
  virtual base::Status discard(uint64_t offset_bytes, uint64_t length_bytes) = 0;
  // Everything that completed before this call is on stable storage when it
  // returns ok (fdatasync: a cache FLUSH on a block device).
  virtual base::Status flush() = 0;
  // One line for logs: "file /var/tmp/disk.img (O_DIRECT)", "memory 64 MiB".
  virtual std::string describe() const = 0;
};

}  // namespace blockio
