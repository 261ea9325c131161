// SPDX-License-Identifier: MIT
// The resync and verify messages (docs/PROTOCOL.md, "Resync and verify").
//
// The original drives both. It asks the clone for keyed digests of extents
// (digest_request / digest_reply), compares them with its own, and for a
// resync sends the extents that differ (resync_data, or resync_zero for an
// all-zero extent). resync_mark asks the clone to make everything sent before
// it durable and to persist the cursor, so an interrupted resync resumes
// there; resync_end closes it. out_of_sync reports a range a verify found
// different; progress tells the clone how far a resync or verify has come.
//
// resync_data uses the write record's layout (64-byte header then payload,
// records.cpp) with seq and epoch 0; resync_zero the trim/zero layout.
#pragma once

#include <cstdint>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"
#include "digest/digest.h"
#include "proto/messages.h"

namespace proto {

// Extents of a digest request or a resync: a power of two in this range.
inline constexpr uint32_t kMinExtentBytes = 4096;
inline constexpr uint32_t kMaxResyncExtentBytes = 1u << 20;
// Digests per request (a reply carries at most 32 KiB of digests).
inline constexpr uint32_t kMaxDigestsPerRequest = 1024;

// resync_begin flags.
inline constexpr uint32_t kResyncDiscardCloneChanges = 1u << 0;  // the clone is Diverged: overwrite it
inline constexpr uint32_t kResyncRepair = 1u << 1;               // same generation: repair ranges only

struct ResyncBegin {
  uint64_t generation = 0;    // the generation the clone holds after the resync
  uint64_t target_seq = 0;    // the original's log position the resync brings the clone to
  uint64_t target_epoch = 0;  // the epoch closed at target_seq
  uint32_t extent_bytes = 0;
  uint32_t flags = 0;
};

struct ResyncState {
  uint64_t generation = 0;
  uint64_t cursor_bytes = 0;  // everything below is durable on the clone
  uint64_t total_bytes = 0;   // the disk's size
  bool resumed = false;       // an interrupted resync of this generation continues
};

struct DigestRequest {
  uint64_t id = 0;
  uint64_t offset_bytes = 0;
  uint32_t extent_bytes = 0;
  uint32_t count = 0;
  uint64_t length_bytes() const { return uint64_t{extent_bytes} * count; }
};

struct DigestReply {
  uint64_t id = 0;
  uint64_t offset_bytes = 0;
  uint32_t extent_bytes = 0;
  std::vector<digest::Digest> digests;
};

struct ResyncDone {
  uint64_t generation = 0;
  uint64_t seq = 0;
  uint64_t epoch = 0;
};

enum class ProgressKind : uint8_t { resync = 1, verify = 2 };
struct Progress {
  ProgressKind kind = ProgressKind::resync;
  uint64_t done_bytes = 0;
  uint64_t total_bytes = 0;
};

void encode_resync_begin(const ResyncBegin& m, base::Bytes& out);
void encode_resync_state(const ResyncState& m, base::Bytes& out);
void encode_digest_request(const DigestRequest& m, base::Bytes& out);
void encode_digest_reply(const DigestReply& m, base::Bytes& out);
void encode_resync_mark(uint64_t cursor_bytes, base::Bytes& out);
void encode_resync_mark_ack(uint64_t cursor_bytes, base::Bytes& out);
void encode_resync_end(uint64_t consistent_at_seq, base::Bytes& out);
void encode_resync_done(const ResyncDone& m, base::Bytes& out);
void encode_out_of_sync(uint64_t offset_bytes, uint64_t length_bytes, base::Bytes& out);
void encode_progress(const Progress& m, base::Bytes& out);
// resync_data and resync_zero: encode_record() with h.type set to them.

base::Status decode_resync_begin(base::ByteSpan msg, ResyncBegin& out);
base::Status decode_resync_state(base::ByteSpan msg, ResyncState& out);
// Checks the extent size (power of two, kMinExtentBytes..kMaxResyncExtentBytes)
// and the count (1..kMaxDigestsPerRequest); not the range against the disk.
base::Status decode_digest_request(base::ByteSpan msg, DigestRequest& out);
base::Status decode_digest_reply(base::ByteSpan msg, DigestReply& out);
base::Status decode_resync_mark(base::ByteSpan msg, uint64_t& cursor_bytes);
base::Status decode_resync_mark_ack(base::ByteSpan msg, uint64_t& cursor_bytes);
base::Status decode_resync_end(base::ByteSpan msg, uint64_t& consistent_at_seq);
base::Status decode_resync_done(base::ByteSpan msg, ResyncDone& out);
base::Status decode_out_of_sync(base::ByteSpan msg, uint64_t& offset_bytes, uint64_t& length_bytes);
base::Status decode_progress(base::ByteSpan msg, Progress& out);
// resync_data (payload = the bytes after the header) or resync_zero.
base::Status decode_resync_extent(base::ByteSpan msg, RecordHeader& h, base::ByteSpan& payload);

bool is_valid_extent_size(uint64_t extent_bytes);

}  // namespace proto
