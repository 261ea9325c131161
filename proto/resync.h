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
// A resync_plan follows the scan: the clone answers the begin at once and
// decides staged or in place (or refuses) only on the plan. Sent only to a
// clone whose hello has kHelloTakesResyncPlan; not part of what a resumed
// begin must match.
inline constexpr uint32_t kResyncPlanFollows = 1u << 2;

// resync_plan flags: if the stage does not fit, go in place (the clone is not
// bootable until the resync completes) instead of refusing.
inline constexpr uint32_t kPlanInPlaceUnbootable = 1u << 0;

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

// What the rest of the resync (from the cursor of the clone's resync_state)
// will send, known after comparing digests and before sending any data.
struct ResyncPlan {
  uint64_t data_bytes = 0;    // payload bytes of the resync_data messages
  uint64_t zero_bytes = 0;    // bytes covered by resync_zero messages
  uint64_t extent_count = 0;  // resync_data and resync_zero messages
  uint32_t flags = 0;         // kPlanInPlaceUnbootable
};

enum class PlanVerdict : uint8_t {
  staged = 0,               // it fits: the resync is staged, the disk stays whole
  in_place = 1,             // nothing to keep (or staging is off): in place, as without a plan
  in_place_unbootable = 2,  // it does not fit, and the plan allowed in place
  refused = 3,              // it does not fit: an error stage_full follows
};
struct ResyncPlanReply {
  PlanVerdict verdict = PlanVerdict::staged;
  uint64_t cursor_bytes = 0;  // where the resync now goes on (0 when in place replaced a staged resync)
  uint64_t needed_bytes = 0;  // the stage's size once all of the plan is staged
  uint64_t bound_bytes = 0;   // [resync] stage_max_bytes (0: staging off)
  uint64_t free_bytes = 0;    // free on the stick now, less what is kept for the state store
};
const char* plan_verdict_name(PlanVerdict v);

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
void encode_resync_plan(const ResyncPlan& m, base::Bytes& out);
void encode_resync_plan_reply(const ResyncPlanReply& m, base::Bytes& out);
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
base::Status decode_resync_plan(base::ByteSpan msg, ResyncPlan& out);
// Refuses a verdict above 3.
base::Status decode_resync_plan_reply(base::ByteSpan msg, ResyncPlanReply& out);
// resync_data (payload = the bytes after the header) or resync_zero.
base::Status decode_resync_extent(base::ByteSpan msg, RecordHeader& h, base::ByteSpan& payload);

bool is_valid_extent_size(uint64_t extent_bytes);

}  // namespace proto
