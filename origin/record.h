// SPDX-License-Identifier: MIT
// One log record as the original holds it: its header and its protocol
// encoding (the exact plaintext of the frame that carries it, which is also
// what a spool entry stores). Keeping the encoded form means sending a record
// is one seal, with no copy of the payload.
//
// A Record is immutable once built and shared between threads as
// std::shared_ptr<const Record> (the producer, the retained log, the sender).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "base/bytes.h"
#include "digest/digest.h"
#include "proto/messages.h"

namespace origin {

struct Record {
  proto::RecordHeader header;
  base::Bytes plain;  // proto::encode_record(header, payload)

  // The write payload inside `plain` (empty for trim, zero and barrier).
  base::ByteSpan payload() const;
  // Data bytes the record stands for: payload or extent length, 0 for a barrier.
  uint64_t data_bytes() const;
};

using RecordPtr = std::shared_ptr<const Record>;

// A write record whose payload the caller fills in place (no extra copy):
// returns the record with header.length_bytes = length_bytes and `plain`
// sized for header + payload; fill payload_of(record), then seal_write().
Record begin_write(uint64_t seq, uint64_t epoch, uint64_t offset_bytes, uint32_t length_bytes);
base::MutableByteSpan payload_of(Record& record);
// Computes the payload digest (digest::keyed_digest) and encodes the header.
void seal_write(Record& record, const digest::DigestKey& digest_key);
// seal_write of every write among `records`, the digests computed together
// (digest::keyed_digests: side by side in SIMD lanes where lengths agree).
void seal_writes(std::span<Record* const> records, const digest::DigestKey& digest_key);
// How many records a producer seals together at most, and up to how many
// payload bytes: 64 records of 4 KiB, 8 of 1 MiB (the digests' eight lanes).
inline constexpr size_t kSealBatchRecords = 64;
inline constexpr uint64_t kSealBatchBytes = 8u << 20;

// Convenience: a write record from a payload span (copies it).
Record make_write(uint64_t seq, uint64_t epoch, uint64_t offset_bytes, base::ByteSpan payload,
                  const digest::DigestKey& digest_key);
// Trim or zero of an extent.
Record make_extent(proto::MsgType type, uint64_t seq, uint64_t epoch, uint64_t offset_bytes, uint64_t length_bytes);
// Barrier closing `epoch`; naming a mark when `mark` is not empty
// (proto::kBarrierFlagMark: 1..255 bytes of printable ASCII, asserted).
Record make_barrier(uint64_t seq, uint64_t epoch, std::string_view mark = {});

bool is_record_type(proto::MsgType type);
const char* record_type_name(proto::MsgType type);

}  // namespace origin
