// SPDX-License-Identifier: MIT
// Codecs of the resync and verify messages (resync.h; layouts in
// docs/PROTOCOL.md, "Resync and verify"). resync_data and resync_zero share
// the record codecs (records.cpp).
#include "proto/resync.h"

#include <cassert>
#include <string>

#include "proto/codec_internal.h"

namespace proto {
namespace {

using codec::check_fixed;
using codec::malformed;
using codec::too_large;
using codec::u64s;

inline constexpr size_t kResyncBeginBytes = 1 + 8 + 8 + 8 + 4 + 4;
inline constexpr size_t kResyncStateBytes = 1 + 8 + 8 + 8 + 1;
inline constexpr size_t kDigestRequestBytes = 1 + 8 + 8 + 4 + 4;
inline constexpr size_t kDigestReplyHeaderBytes = 1 + 8 + 8 + 4 + 4;
inline constexpr size_t kU64MsgBytes = 1 + 8;
inline constexpr size_t kResyncDoneBytes = 1 + 8 + 8 + 8;
inline constexpr size_t kOutOfSyncBytes = 1 + 8 + 8;
inline constexpr size_t kProgressBytes = 1 + 1 + 8 + 8;
inline constexpr size_t kResyncPlanBytes = 1 + 8 + 8 + 8 + 4;
inline constexpr size_t kResyncPlanReplyBytes = 1 + 1 + 8 + 8 + 8 + 8;
static_assert(kDigestReplyHeaderBytes + kMaxDigestsPerRequest * digest::kDigestBytes <= 64 * 1024 - 64,
              "a digest reply fits the original's 64 KiB receive limit");

void encode_u64_msg(MsgType type, uint64_t v, base::Bytes& out) {
  base::ByteWriter w(out);
  w.u8(static_cast<uint8_t>(type));
  w.u64(v);
}

base::Status decode_u64_msg(base::ByteSpan msg, MsgType type, const char* what, uint64_t& v) {
  BASE_TRY(check_fixed(msg, type, kU64MsgBytes, what));
  v = base::load_le64(msg.data() + 1);
  return base::Status::ok();
}

base::Status check_extent(const char* what, uint32_t extent_bytes) {
  if (!is_valid_extent_size(extent_bytes))
    return malformed(what, "extent size " + u64s(extent_bytes) + " is not a power of two from " +
                               u64s(kMinExtentBytes) + " to " + u64s(kMaxResyncExtentBytes));
  return base::Status::ok();
}

base::Status check_count(const char* what, uint32_t count) {
  if (count == 0) return malformed(what, "count 0");
  if (count > kMaxDigestsPerRequest)
    return too_large(what, "count " + u64s(count) + " is over the limit of " + u64s(kMaxDigestsPerRequest));
  return base::Status::ok();
}

}  // namespace

bool is_valid_extent_size(uint64_t e) {
  return e >= kMinExtentBytes && e <= kMaxResyncExtentBytes && (e & (e - 1)) == 0;
}

void encode_resync_begin(const ResyncBegin& m, base::Bytes& out) {
  base::ByteWriter w(out);
  w.u8(static_cast<uint8_t>(MsgType::resync_begin));
  w.u64(m.generation);
  w.u64(m.target_seq);
  w.u64(m.target_epoch);
  w.u32(m.extent_bytes);
  w.u32(m.flags);
}

base::Status decode_resync_begin(base::ByteSpan msg, ResyncBegin& out) {
  BASE_TRY(check_fixed(msg, MsgType::resync_begin, kResyncBeginBytes, "resync_begin"));
  base::ByteReader r(msg.subspan(1));
  ResyncBegin m;
  m.generation = r.u64();
  m.target_seq = r.u64();
  m.target_epoch = r.u64();
  m.extent_bytes = r.u32();
  m.flags = r.u32();
  BASE_TRY(check_extent("resync_begin", m.extent_bytes));
  if (m.generation == 0) return malformed("resync_begin", "generation 0");
  if ((m.target_seq == 0) != (m.target_epoch == 0))
    return malformed("resync_begin", "position " + u64s(m.target_seq) + " with epoch " + u64s(m.target_epoch));
  out = m;
  return base::Status::ok();
}

void encode_resync_state(const ResyncState& m, base::Bytes& out) {
  base::ByteWriter w(out);
  w.u8(static_cast<uint8_t>(MsgType::resync_state));
  w.u64(m.generation);
  w.u64(m.cursor_bytes);
  w.u64(m.total_bytes);
  w.u8(m.resumed ? 1 : 0);
}

base::Status decode_resync_state(base::ByteSpan msg, ResyncState& out) {
  BASE_TRY(check_fixed(msg, MsgType::resync_state, kResyncStateBytes, "resync_state"));
  base::ByteReader r(msg.subspan(1));
  ResyncState m;
  m.generation = r.u64();
  m.cursor_bytes = r.u64();
  m.total_bytes = r.u64();
  const uint8_t resumed = r.u8();
  if (resumed > 1) return malformed("resync_state", "resumed flag " + u64s(resumed));
  if (m.cursor_bytes > m.total_bytes)
    return malformed("resync_state", "cursor " + u64s(m.cursor_bytes) + " past the disk's end " + u64s(m.total_bytes));
  m.resumed = resumed == 1;
  out = m;
  return base::Status::ok();
}

void encode_digest_request(const DigestRequest& m, base::Bytes& out) {
  base::ByteWriter w(out);
  w.u8(static_cast<uint8_t>(MsgType::digest_request));
  w.u64(m.id);
  w.u64(m.offset_bytes);
  w.u32(m.extent_bytes);
  w.u32(m.count);
}

base::Status decode_digest_request(base::ByteSpan msg, DigestRequest& out) {
  BASE_TRY(check_fixed(msg, MsgType::digest_request, kDigestRequestBytes, "digest_request"));
  base::ByteReader r(msg.subspan(1));
  DigestRequest m;
  m.id = r.u64();
  m.offset_bytes = r.u64();
  m.extent_bytes = r.u32();
  m.count = r.u32();
  BASE_TRY(check_extent("digest_request", m.extent_bytes));
  BASE_TRY(check_count("digest_request", m.count));
  out = m;
  return base::Status::ok();
}

void encode_digest_reply(const DigestReply& m, base::Bytes& out) {
  assert(!m.digests.empty() && m.digests.size() <= kMaxDigestsPerRequest);
  base::ByteWriter w(out);
  w.u8(static_cast<uint8_t>(MsgType::digest_reply));
  w.u64(m.id);
  w.u64(m.offset_bytes);
  w.u32(m.extent_bytes);
  w.u32(static_cast<uint32_t>(m.digests.size()));
  for (const digest::Digest& d : m.digests) w.raw(d.data(), d.size());
}

base::Status decode_digest_reply(base::ByteSpan msg, DigestReply& out) {
  if (msg.empty() || msg[0] != static_cast<uint8_t>(MsgType::digest_reply))
    return malformed("digest_reply", "the type byte is not 16");
  base::ByteReader r(msg.subspan(1));
  DigestReply m;
  m.id = r.u64();
  m.offset_bytes = r.u64();
  m.extent_bytes = r.u32();
  const uint32_t count = r.u32();
  if (!r.ok()) return malformed("digest_reply", u64s(msg.size()) + " bytes is shorter than its header");
  BASE_TRY(check_extent("digest_reply", m.extent_bytes));
  BASE_TRY(check_count("digest_reply", count));
  if (r.remaining() != uint64_t{count} * digest::kDigestBytes)
    return malformed("digest_reply", u64s(count) + " digests do not match the " + u64s(r.remaining()) + " bytes that follow");
  m.digests.resize(count);
  for (digest::Digest& d : m.digests) r.raw(d.data(), d.size());
  out = std::move(m);
  return base::Status::ok();
}

void encode_resync_mark(uint64_t cursor, base::Bytes& out) { encode_u64_msg(MsgType::resync_mark, cursor, out); }
void encode_resync_mark_ack(uint64_t cursor, base::Bytes& out) { encode_u64_msg(MsgType::resync_mark_ack, cursor, out); }
void encode_resync_end(uint64_t seq, base::Bytes& out) { encode_u64_msg(MsgType::resync_end, seq, out); }
base::Status decode_resync_mark(base::ByteSpan msg, uint64_t& cursor) {
  return decode_u64_msg(msg, MsgType::resync_mark, "resync_mark", cursor);
}
base::Status decode_resync_mark_ack(base::ByteSpan msg, uint64_t& cursor) {
  return decode_u64_msg(msg, MsgType::resync_mark_ack, "resync_mark_ack", cursor);
}
base::Status decode_resync_end(base::ByteSpan msg, uint64_t& seq) {
  return decode_u64_msg(msg, MsgType::resync_end, "resync_end", seq);
}

void encode_resync_done(const ResyncDone& m, base::Bytes& out) {
  base::ByteWriter w(out);
  w.u8(static_cast<uint8_t>(MsgType::resync_done));
  w.u64(m.generation);
  w.u64(m.seq);
  w.u64(m.epoch);
}

base::Status decode_resync_done(base::ByteSpan msg, ResyncDone& out) {
  BASE_TRY(check_fixed(msg, MsgType::resync_done, kResyncDoneBytes, "resync_done"));
  base::ByteReader r(msg.subspan(1));
  out.generation = r.u64();
  out.seq = r.u64();
  out.epoch = r.u64();
  return base::Status::ok();
}

void encode_out_of_sync(uint64_t offset, uint64_t length, base::Bytes& out) {
  base::ByteWriter w(out);
  w.u8(static_cast<uint8_t>(MsgType::out_of_sync));
  w.u64(offset);
  w.u64(length);
}

base::Status decode_out_of_sync(base::ByteSpan msg, uint64_t& offset, uint64_t& length) {
  BASE_TRY(check_fixed(msg, MsgType::out_of_sync, kOutOfSyncBytes, "out_of_sync"));
  base::ByteReader r(msg.subspan(1));
  offset = r.u64();
  length = r.u64();
  if (length == 0) return malformed("out_of_sync", "length 0");
  return base::Status::ok();
}

void encode_progress(const Progress& m, base::Bytes& out) {
  base::ByteWriter w(out);
  w.u8(static_cast<uint8_t>(MsgType::progress));
  w.u8(static_cast<uint8_t>(m.kind));
  w.u64(m.done_bytes);
  w.u64(m.total_bytes);
}

base::Status decode_progress(base::ByteSpan msg, Progress& out) {
  BASE_TRY(check_fixed(msg, MsgType::progress, kProgressBytes, "progress"));
  base::ByteReader r(msg.subspan(1));
  const uint8_t kind = r.u8();
  Progress m;
  m.done_bytes = r.u64();
  m.total_bytes = r.u64();
  if (kind != 1 && kind != 2) return malformed("progress", "kind " + u64s(kind) + " is neither 1 (resync) nor 2 (verify)");
  if (m.done_bytes > m.total_bytes) return malformed("progress", "done " + u64s(m.done_bytes) + " past total " + u64s(m.total_bytes));
  m.kind = static_cast<ProgressKind>(kind);
  out = m;
  return base::Status::ok();
}

const char* plan_verdict_name(PlanVerdict v) {
  switch (v) {
    case PlanVerdict::staged:
      return "staged";
    case PlanVerdict::in_place:
      return "in_place";
    case PlanVerdict::in_place_unbootable:
      return "in_place_unbootable";
    case PlanVerdict::refused:
      return "refused";
  }
  return "unknown";
}

void encode_resync_plan(const ResyncPlan& m, base::Bytes& out) {
  base::ByteWriter w(out);
  w.u8(static_cast<uint8_t>(MsgType::resync_plan));
  w.u64(m.data_bytes);
  w.u64(m.zero_bytes);
  w.u64(m.extent_count);
  w.u32(m.flags);
}

base::Status decode_resync_plan(base::ByteSpan msg, ResyncPlan& out) {
  BASE_TRY(check_fixed(msg, MsgType::resync_plan, kResyncPlanBytes, "resync_plan"));
  base::ByteReader r(msg.subspan(1));
  ResyncPlan m;
  m.data_bytes = r.u64();
  m.zero_bytes = r.u64();
  m.extent_count = r.u64();
  m.flags = r.u32();  // unknown bits are ignored
  out = m;
  return base::Status::ok();
}

void encode_resync_plan_reply(const ResyncPlanReply& m, base::Bytes& out) {
  base::ByteWriter w(out);
  w.u8(static_cast<uint8_t>(MsgType::resync_plan_reply));
  w.u8(static_cast<uint8_t>(m.verdict));
  w.u64(m.cursor_bytes);
  w.u64(m.needed_bytes);
  w.u64(m.bound_bytes);
  w.u64(m.free_bytes);
}

base::Status decode_resync_plan_reply(base::ByteSpan msg, ResyncPlanReply& out) {
  BASE_TRY(check_fixed(msg, MsgType::resync_plan_reply, kResyncPlanReplyBytes, "resync_plan_reply"));
  base::ByteReader r(msg.subspan(1));
  const uint8_t verdict = r.u8();
  if (verdict > static_cast<uint8_t>(PlanVerdict::refused))
    return malformed("resync_plan_reply", "verdict " + u64s(verdict) + " is not 0..3");
  ResyncPlanReply m;
  m.verdict = static_cast<PlanVerdict>(verdict);
  m.cursor_bytes = r.u64();
  m.needed_bytes = r.u64();
  m.bound_bytes = r.u64();
  m.free_bytes = r.u64();
  out = m;
  return base::Status::ok();
}

}  // namespace proto
