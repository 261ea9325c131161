// SPDX-License-Identifier: MIT
// Resync and verify message codecs: round trips, and refusal of truncated,
// mistyped and out-of-limit input.
#include <doctest/doctest.h>

#include <cerrno>

#include "proto/resync.h"

using namespace proto;

namespace {

digest::Digest digest_of(uint8_t seed) {
  digest::Digest d{};
  for (size_t i = 0; i < d.size(); ++i) d[i] = static_cast<uint8_t>(seed + i);
  return d;
}

// Every prefix of a valid fixed-size message, and the message with a byte
// more, is refused.
template <typename Decode>
void check_truncations(const base::Bytes& valid, Decode decode) {
  for (size_t n = 0; n < valid.size(); ++n) {
    base::ByteSpan prefix(valid.data(), n);
    CHECK_FALSE(decode(prefix).is_ok());
  }
  base::Bytes longer = valid;
  longer.push_back(0);
  CHECK_FALSE(decode(base::ByteSpan(longer)).is_ok());
}

}  // namespace

TEST_CASE("resync_begin round-trips and checks its extent size and position") {
  ResyncBegin m{7, 1000, 33, 65536, kResyncDiscardCloneChanges};
  base::Bytes b;
  encode_resync_begin(m, b);
  ResyncBegin out;
  REQUIRE(decode_resync_begin(b, out).is_ok());
  CHECK(out.generation == 7);
  CHECK(out.target_seq == 1000);
  CHECK(out.target_epoch == 33);
  CHECK(out.extent_bytes == 65536);
  CHECK(out.flags == kResyncDiscardCloneChanges);
  check_truncations(b, [](base::ByteSpan s) { ResyncBegin o; return decode_resync_begin(s, o); });

  for (uint32_t bad : {0u, 512u, 4095u, 12288u, 2u << 20}) {
    base::Bytes x;
    encode_resync_begin({7, 1000, 33, bad, 0}, x);
    base::Status s = decode_resync_begin(x, out);
    CHECK_FALSE(s.is_ok());
    CHECK(s.message().find("extent size") != std::string::npos);
  }
  base::Bytes zero_gen;
  encode_resync_begin({0, 0, 0, 4096, 0}, zero_gen);
  CHECK_FALSE(decode_resync_begin(zero_gen, out).is_ok());
  base::Bytes half_position;
  encode_resync_begin({3, 10, 0, 4096, 0}, half_position);
  CHECK_FALSE(decode_resync_begin(half_position, out).is_ok());
}

TEST_CASE("digest_request and digest_reply round-trip; counts are bounded") {
  DigestRequest q{42, 1ull << 40, 65536, 1024};
  base::Bytes b;
  encode_digest_request(q, b);
  DigestRequest qo;
  REQUIRE(decode_digest_request(b, qo).is_ok());
  CHECK(qo.id == 42);
  CHECK(qo.offset_bytes == 1ull << 40);
  CHECK(qo.length_bytes() == 64ull << 20);
  check_truncations(b, [](base::ByteSpan s) { DigestRequest o; return decode_digest_request(s, o); });
  base::Bytes over;
  encode_digest_request({1, 0, 4096, kMaxDigestsPerRequest + 1}, over);
  base::Status s = decode_digest_request(over, qo);
  CHECK(s.code() == EMSGSIZE);

  DigestReply r;
  r.id = 42;
  r.offset_bytes = 8192;
  r.extent_bytes = 4096;
  for (uint8_t i = 0; i < 5; ++i) r.digests.push_back(digest_of(i));
  base::Bytes rb;
  encode_digest_reply(r, rb);
  DigestReply ro;
  REQUIRE(decode_digest_reply(rb, ro).is_ok());
  CHECK(ro.id == 42);
  CHECK(ro.offset_bytes == 8192);
  REQUIRE(ro.digests.size() == 5);
  CHECK(ro.digests[4] == digest_of(4));
  // A count that does not match the bytes that follow.
  for (size_t n = 0; n < rb.size(); ++n) {
    base::ByteSpan prefix(rb.data(), n);
    CHECK_FALSE(decode_digest_reply(prefix, ro).is_ok());
  }
  base::Bytes extra = rb;
  extra.push_back(1);
  CHECK_FALSE(decode_digest_reply(extra, ro).is_ok());
}

TEST_CASE("resync_data and resync_zero use the record layouts, with seq and epoch 0") {
  base::Bytes payload(8192, 0x5a);
  RecordHeader h;
  h.type = MsgType::resync_data;
  h.offset_bytes = 1 << 20;
  h.length_bytes = payload.size();
  h.digest = digest_of(9);
  base::Bytes b;
  encode_record(h, payload, b);
  CHECK(b.size() == kWriteHeaderBytes + payload.size());
  RecordHeader out;
  base::ByteSpan body;
  REQUIRE(decode_resync_extent(b, out, body).is_ok());
  CHECK(out.type == MsgType::resync_data);
  CHECK(out.offset_bytes == 1 << 20);
  CHECK(out.length_bytes == 8192);
  CHECK(out.digest == digest_of(9));
  CHECK(body.size() == 8192);
  // Not a log record: decode_record refuses it, and a log record is refused here.
  CHECK_FALSE(decode_record(b, out, body).is_ok());
  base::Bytes w;
  RecordHeader wh = h;
  wh.type = MsgType::write;
  wh.seq = 5;
  wh.epoch = 1;
  encode_record(wh, payload, w);
  CHECK_FALSE(decode_resync_extent(w, out, body).is_ok());
  // A resync extent that claims a log position is refused.
  base::Bytes numbered = b;
  numbered[8] = 1;  // seq
  CHECK_FALSE(decode_resync_extent(numbered, out, body).is_ok());

  RecordHeader z;
  z.type = MsgType::resync_zero;
  z.offset_bytes = 4096;
  z.length_bytes = 1ull << 30;
  base::Bytes zb;
  encode_record(z, {}, zb);
  REQUIRE(decode_resync_extent(zb, out, body).is_ok());
  CHECK(out.type == MsgType::resync_zero);
  CHECK(out.length_bytes == 1ull << 30);
  CHECK(body.empty());
}

TEST_CASE("the small resync messages round-trip and refuse wrong sizes") {
  base::Bytes b;
  uint64_t v = 0;
  encode_resync_mark(123, b);
  REQUIRE(decode_resync_mark(b, v).is_ok());
  CHECK(v == 123);
  CHECK_FALSE(decode_resync_mark_ack(b, v).is_ok());  // wrong type byte
  check_truncations(b, [](base::ByteSpan s) { uint64_t o; return decode_resync_mark(s, o); });

  b.clear();
  encode_resync_done({4, 99, 7}, b);
  ResyncDone d;
  REQUIRE(decode_resync_done(b, d).is_ok());
  CHECK(d.generation == 4);
  CHECK(d.seq == 99);
  CHECK(d.epoch == 7);

  b.clear();
  encode_resync_state({4, 4096, 8192, true}, b);
  ResyncState st;
  REQUIRE(decode_resync_state(b, st).is_ok());
  CHECK(st.resumed);
  CHECK(st.cursor_bytes == 4096);
  b.clear();
  encode_resync_state({4, 8193, 8192, false}, b);
  CHECK_FALSE(decode_resync_state(b, st).is_ok());

  b.clear();
  uint64_t off = 0, len = 0;
  encode_out_of_sync(4096, 0, b);
  CHECK_FALSE(decode_out_of_sync(b, off, len).is_ok());
  b.clear();
  encode_out_of_sync(4096, 8192, b);
  REQUIRE(decode_out_of_sync(b, off, len).is_ok());
  CHECK(len == 8192);

  b.clear();
  encode_progress({ProgressKind::verify, 10, 20}, b);
  Progress p;
  REQUIRE(decode_progress(b, p).is_ok());
  CHECK(p.kind == ProgressKind::verify);
  b[1] = 3;
  CHECK_FALSE(decode_progress(b, p).is_ok());
}

TEST_CASE("a resync_plan is 29 bytes and keeps its figures and flags") {
  base::Bytes b;
  encode_resync_plan({3ull << 40, 5ull << 20, 1234567, kPlanInPlaceUnbootable | 0x80u}, b);
  REQUIRE(b.size() == 29);
  CHECK(b[0] == 25);
  ResyncPlan p;
  REQUIRE(decode_resync_plan(b, p).is_ok());
  CHECK(p.data_bytes == 3ull << 40);
  CHECK(p.zero_bytes == 5ull << 20);
  CHECK(p.extent_count == 1234567);
  CHECK(p.flags == (kPlanInPlaceUnbootable | 0x80u));  // unknown bits kept, ignored by the clone
  base::Bytes again;
  encode_resync_plan(p, again);
  CHECK(again == b);
  b.push_back(0);
  CHECK_FALSE(decode_resync_plan(b, p).is_ok());
  b.pop_back();
  b.pop_back();
  CHECK_FALSE(decode_resync_plan(b, p).is_ok());
  b.clear();
  encode_progress({ProgressKind::resync, 1, 2}, b);
  CHECK_FALSE(decode_resync_plan(b, p).is_ok());
}

TEST_CASE("a resync_plan_reply is 34 bytes, keeps the figures and refuses an unknown verdict") {
  base::Bytes b;
  const ResyncPlanReply in{PlanVerdict::refused, 8192, 10ull << 20, 1ull << 20, 7ull << 30};
  encode_resync_plan_reply(in, b);
  REQUIRE(b.size() == 34);
  CHECK(b[0] == 26);
  ResyncPlanReply out;
  REQUIRE(decode_resync_plan_reply(b, out).is_ok());
  CHECK(out.verdict == PlanVerdict::refused);
  CHECK(out.cursor_bytes == 8192);
  CHECK(out.needed_bytes == 10ull << 20);
  CHECK(out.bound_bytes == 1ull << 20);
  CHECK(out.free_bytes == 7ull << 30);
  for (uint8_t v = 0; v <= 4; ++v) {
    CAPTURE(v);
    b[1] = v;
    CHECK(decode_resync_plan_reply(b, out).is_ok() == (v <= 3));
  }
  CHECK(std::string(plan_verdict_name(PlanVerdict::in_place_unbootable)) == "in_place_unbootable");
  b.pop_back();
  CHECK_FALSE(decode_resync_plan_reply(b, out).is_ok());
}

TEST_CASE("peek_type knows the resync range and nothing past it") {
  for (uint8_t t = 13; t <= 26; ++t) {
    uint8_t msg[1] = {t};
    CHECK(static_cast<bool>(peek_type(base::ByteSpan(msg, 1))));
  }
  uint8_t unknown[1] = {27};
  CHECK_FALSE(static_cast<bool>(peek_type(base::ByteSpan(unknown, 1))));
}
