// SPDX-License-Identifier: MIT
// The decoders' contract, checked on untrusted bytes: every decoder returns a
// Status (never asserts, never reads out of bounds), only the decoder of the
// message's own type accepts it, and what it accepts re-encodes to bytes that
// decode to the same message. Byte-exact where the layout has no reserved
// field; field-wise for records, whose reserved fields are not kept.
#include <cstring>

#include "proto/resync.h"
#include "proto/wake_messages.h"
#include "fuzz/fuzz_support.h"

namespace fuzz {
namespace {

using proto::MsgType;

bool same(const proto::RecordHeader& a, const proto::RecordHeader& b) {
  return a.type == b.type && a.flags == b.flags && a.seq == b.seq && a.epoch == b.epoch &&
         a.offset_bytes == b.offset_bytes && a.length_bytes == b.length_bytes && a.digest == b.digest;
}

bool equal_bytes(const base::Bytes& a, base::ByteSpan b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

bool is_record(MsgType t) {
  return t == MsgType::write || t == MsgType::trim || t == MsgType::zero || t == MsgType::barrier;
}

// Accepted only if the type byte says so.
void check_type(bool decoded, base::ByteSpan msg, MsgType type) {
  if (decoded) FUZZ_CHECK(!msg.empty() && msg[0] == static_cast<uint8_t>(type));
}

bool check_hello(base::ByteSpan msg) {
  proto::Hello h;
  const bool ok = proto::decode_hello(msg, h).is_ok();
  check_type(ok, msg, MsgType::hello);
  if (ok) {
    base::Bytes again;
    proto::encode_hello(h, again);
    FUZZ_CHECK(equal_bytes(again, msg));
  }
  return ok;
}

bool check_record(base::ByteSpan msg) {
  proto::RecordHeader h;
  h.seq = 0x5eed;  // a failed decode must leave the caller's header alone
  base::ByteSpan payload;
  const bool ok = proto::decode_record(msg, h, payload).is_ok();
  if (!ok) {
    FUZZ_CHECK(h.seq == 0x5eed && payload.empty());
    return false;
  }
  FUZZ_CHECK(!msg.empty() && is_record(static_cast<MsgType>(msg[0])) && h.type == static_cast<MsgType>(msg[0]));
  if (h.type == MsgType::write) {
    FUZZ_CHECK(payload.size() == h.length_bytes && payload.data() == msg.data() + proto::kWriteHeaderBytes);
  } else if (h.type == MsgType::barrier && (h.flags & proto::kBarrierFlagMark) != 0) {
    // A marked barrier views its mark's name: the bytes that end the message.
    FUZZ_CHECK(payload.size() >= 1 && payload.size() <= proto::kMaxMarkNameBytes &&
               payload.data() + payload.size() == msg.data() + msg.size());
    FUZZ_CHECK(proto::is_valid_mark_name(std::string_view(reinterpret_cast<const char*>(payload.data()),
                                                          payload.size())));
  } else {
    FUZZ_CHECK(payload.empty());
  }
  base::Bytes again;
  proto::encode_record(h, payload, again);
  proto::RecordHeader h2;
  base::ByteSpan payload2;
  FUZZ_CHECK(proto::decode_record(again, h2, payload2).is_ok());
  FUZZ_CHECK(same(h, h2) && payload.size() == payload2.size());
  FUZZ_CHECK(payload.empty() || std::memcmp(payload.data(), payload2.data(), payload.size()) == 0);
  return true;
}

bool check_text(base::ByteSpan msg, MsgType type) {
  proto::ErrorMsg m;
  const bool ok = type == MsgType::error ? proto::decode_error(msg, m).is_ok() : proto::decode_goodbye(msg, m).is_ok();
  check_type(ok, msg, type);
  if (ok) {
    FUZZ_CHECK(m.message.size() <= proto::kMaxMessageTextBytes);
    base::Bytes again;
    if (type == MsgType::error) proto::encode_error(m, again);
    else proto::encode_goodbye(m, again);
    FUZZ_CHECK(equal_bytes(again, msg));
  }
  return ok;
}

bool check_small(base::ByteSpan msg) {
  uint64_t a = 0, b = 0;
  bool any = false;
  base::Bytes again;
  if (proto::decode_barrier_ack(msg, a, b).is_ok()) {
    check_type(true, msg, MsgType::barrier_ack);
    proto::encode_barrier_ack(a, b, again);
    any = true;
  }
  if (proto::decode_receipt_ack(msg, a).is_ok()) {
    check_type(true, msg, MsgType::receipt_ack);
    proto::encode_receipt_ack(a, again);
    any = true;
  }
  if (proto::decode_committed(msg, a).is_ok()) {
    check_type(true, msg, MsgType::committed);
    proto::encode_committed(a, again);
    any = true;
  }
  if (proto::decode_ping(msg, a, b).is_ok()) {
    check_type(true, msg, MsgType::ping);
    proto::encode_ping(a, b, again);
    any = true;
  }
  if (proto::decode_pong(msg, a).is_ok()) {
    check_type(true, msg, MsgType::pong);
    proto::encode_pong(a, again);
    any = true;
  }
  if (proto::decode_health_ack(msg, a).is_ok()) {
    check_type(true, msg, MsgType::health_ack);
    proto::encode_health_ack(a, again);
    any = true;
  }
  base::ByteSpan report;
  if (proto::decode_health_report(msg, a, report).is_ok()) {
    check_type(true, msg, MsgType::health_report);
    FUZZ_CHECK(report.size() <= proto::kMaxHealthReportBytes);
    proto::encode_health_report(a, report, again);
    any = true;
  }
  if (any) FUZZ_CHECK(equal_bytes(again, msg));  // at most one decoder accepted: `again` is its encoding
  return any;
}

// The resync and verify messages (proto/resync.h): each accepted only
// for its own type, and re-encoded byte for byte.
bool check_resync(base::ByteSpan msg) {
  base::Bytes again;
  int accepted = 0;
  uint64_t a = 0, b = 0;
  auto note = [&](bool ok, MsgType t) {
    check_type(ok, msg, t);
    accepted += ok ? 1 : 0;
  };
  proto::ResyncBegin begin;
  if (proto::decode_resync_begin(msg, begin).is_ok()) {
    note(true, MsgType::resync_begin);
    FUZZ_CHECK(proto::is_valid_extent_size(begin.extent_bytes) && begin.generation != 0);
    proto::encode_resync_begin(begin, again);
  }
  proto::ResyncState state;
  if (proto::decode_resync_state(msg, state).is_ok()) {
    note(true, MsgType::resync_state);
    FUZZ_CHECK(state.cursor_bytes <= state.total_bytes);
    proto::encode_resync_state(state, again);
  }
  proto::DigestRequest q;
  if (proto::decode_digest_request(msg, q).is_ok()) {
    note(true, MsgType::digest_request);
    FUZZ_CHECK(q.count >= 1 && q.count <= proto::kMaxDigestsPerRequest);
    proto::encode_digest_request(q, again);
  }
  proto::DigestReply r;
  if (proto::decode_digest_reply(msg, r).is_ok()) {
    note(true, MsgType::digest_reply);
    FUZZ_CHECK(!r.digests.empty() && r.digests.size() <= proto::kMaxDigestsPerRequest);
    proto::encode_digest_reply(r, again);
  }
  if (proto::decode_resync_mark(msg, a).is_ok()) {
    note(true, MsgType::resync_mark);
    proto::encode_resync_mark(a, again);
  }
  if (proto::decode_resync_mark_ack(msg, a).is_ok()) {
    note(true, MsgType::resync_mark_ack);
    proto::encode_resync_mark_ack(a, again);
  }
  if (proto::decode_resync_end(msg, a).is_ok()) {
    note(true, MsgType::resync_end);
    proto::encode_resync_end(a, again);
  }
  proto::ResyncDone done;
  if (proto::decode_resync_done(msg, done).is_ok()) {
    note(true, MsgType::resync_done);
    proto::encode_resync_done(done, again);
  }
  if (proto::decode_out_of_sync(msg, a, b).is_ok()) {
    note(true, MsgType::out_of_sync);
    FUZZ_CHECK(b != 0);
    proto::encode_out_of_sync(a, b, again);
  }
  proto::Progress p;
  if (proto::decode_progress(msg, p).is_ok()) {
    note(true, MsgType::progress);
    FUZZ_CHECK(p.done_bytes <= p.total_bytes);
    proto::encode_progress(p, again);
  }
  proto::ResyncPlan plan;
  if (proto::decode_resync_plan(msg, plan).is_ok()) {
    note(true, MsgType::resync_plan);
    proto::encode_resync_plan(plan, again);
  }
  proto::ResyncPlanReply reply;
  if (proto::decode_resync_plan_reply(msg, reply).is_ok()) {
    note(true, MsgType::resync_plan_reply);
    FUZZ_CHECK(static_cast<uint8_t>(reply.verdict) <= static_cast<uint8_t>(proto::PlanVerdict::refused));
    proto::encode_resync_plan_reply(reply, again);
  }
  FUZZ_CHECK(accepted <= 1);
  if (accepted == 1) FUZZ_CHECK(equal_bytes(again, msg));
  // resync_data / resync_zero share the record codecs: the header must say 0/0.
  proto::RecordHeader h;
  base::ByteSpan payload;
  if (proto::decode_resync_extent(msg, h, payload).is_ok()) {
    FUZZ_CHECK(h.seq == 0 && h.epoch == 0);
    FUZZ_CHECK(h.type == MsgType::resync_data ? payload.size() == h.length_bytes : payload.empty());
    check_type(true, msg, h.type);
    ++accepted;
  }
  FUZZ_CHECK(accepted <= 1);
  return accepted == 1;
}

bool same(const proto::WakeInfo& a, const proto::WakeInfo& b) {
  return a.arm == b.arm && a.flags == b.flags && a.mac == b.mac && a.idle_sleep_s == b.idle_sleep_s &&
         a.interface == b.interface && a.broadcast == b.broadcast && a.reason == b.reason;
}

// The wake messages (proto/wake_messages.h), found missing in review: each
// accepted only for its own type, within its bounds, and re-encoded to bytes
// that decode to the same message (wake_info's reserved byte is not kept).
bool check_wake(base::ByteSpan msg) {
  int accepted = 0;
  proto::WakeInfo info;
  if (proto::decode_wake_info(msg, info).is_ok()) {
    check_type(true, msg, MsgType::wake_info);
    FUZZ_CHECK(info.interface.size() <= proto::kWakeTextBytesMax && info.broadcast.size() <= proto::kWakeTextBytesMax &&
               info.reason.size() <= proto::kMaxMessageTextBytes);
    base::Bytes again;
    proto::encode_wake_info(info, again);
    FUZZ_CHECK(again.size() == msg.size());
    proto::WakeInfo info2;
    FUZZ_CHECK(proto::decode_wake_info(again, info2).is_ok() && same(info, info2));
    ++accepted;
  }
  proto::GoingToSleep going;
  if (proto::decode_going_to_sleep(msg, going).is_ok()) {
    check_type(true, msg, MsgType::going_to_sleep);
    FUZZ_CHECK(going.reason.size() <= proto::kMaxMessageTextBytes);
    base::Bytes again;
    proto::encode_going_to_sleep(going, again);
    FUZZ_CHECK(equal_bytes(again, msg));
    ++accepted;
  }
  if (proto::decode_sleep_request(msg).is_ok()) {
    check_type(true, msg, MsgType::sleep_request);
    ++accepted;
  }
  FUZZ_CHECK(accepted <= 1);
  return accepted == 1;
}

}  // namespace

bool decode_any(base::ByteSpan msg) {
  const base::Result<MsgType> type = proto::peek_type(msg);
  // Every decoder sees every message, not only the one peek_type picks: a
  // decoder must refuse another type's bytes as cleanly as garbage.
  const bool hello = check_hello(msg);
  const bool record = check_record(msg);
  const bool error = check_text(msg, MsgType::error);
  const bool goodbye = check_text(msg, MsgType::goodbye);
  const bool small = check_small(msg);
  const bool resync = check_resync(msg);
  const bool wake = check_wake(msg);
  const int accepted = int{hello} + int{record} + int{error} + int{goodbye} + int{small} + int{resync} + int{wake};
  FUZZ_CHECK(accepted <= 1);
  if (accepted == 1) FUZZ_CHECK(type.is_ok());  // nothing decodes that peek_type calls unknown
  return accepted == 1;
}

}  // namespace fuzz
