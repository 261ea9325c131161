// SPDX-License-Identifier: MIT
// Message codecs: every message round-trips, and every decoder turns away
// truncated, over-long, mistyped and out-of-limit bytes with an error (the
// bytes come from the network: nothing here may assert or read past the end).
#include <doctest/doctest.h>

#include <cerrno>
#include <functional>
#include <string>
#include <vector>

#include "proto/messages.h"

using namespace proto;

namespace {

Hello sample_hello() {
  Hello h;
  h.version = kProtocolVersion;
  h.role = Role::clone;
  h.state = CloneState::inconsistent;
  for (size_t i = 0; i < h.pair_id.size(); ++i) h.pair_id[i] = static_cast<uint8_t>(0xa0 + i);
  h.flags = kHelloWantReceiptAcks;
  h.disk_size_bytes = 512ull << 30;
  h.logical_block_bytes = 4096;
  h.generation = 7;
  h.applied_seq = 1000001;
  h.applied_epoch = 4242;
  h.committed_seq = 999999;
  h.log_start_seq = 0x0102030405060708ull;
  h.log_end_seq = 0xfffffffffffffff0ull;
  return h;
}

RecordHeader sample_record(MsgType type, uint64_t length_bytes) {
  RecordHeader h;
  h.type = type;
  h.seq = 123456789012ull;
  h.epoch = 98765;
  if (type != MsgType::barrier) {
    h.offset_bytes = 1ull << 40;
    h.length_bytes = length_bytes;
  }
  if (type == MsgType::write)
    for (size_t i = 0; i < h.digest.size(); ++i) h.digest[i] = static_cast<uint8_t>(i * 7 + 1);
  return h;
}

base::Bytes encoded_record(const RecordHeader& h, const base::Bytes& payload = {}) {
  base::Bytes out;
  encode_record(h, payload, out);
  return out;
}

bool same_header(const RecordHeader& a, const RecordHeader& b) {
  return a.type == b.type && a.flags == b.flags && a.seq == b.seq && a.epoch == b.epoch &&
         a.offset_bytes == b.offset_bytes && a.length_bytes == b.length_bytes && a.digest == b.digest;
}

// One valid encoding of each message and a decoder that accepts only it.
struct Sample {
  std::string name;
  base::Bytes bytes;
  std::function<base::Status(base::ByteSpan)> decode;
};

base::Status decode_any_record(base::ByteSpan m) {
  RecordHeader h;
  base::ByteSpan p;
  return decode_record(m, h, p);
}

std::vector<Sample> all_samples() {
  std::vector<Sample> s;
  base::Bytes b;
  encode_hello(sample_hello(), b);
  s.push_back({"hello", b, [](base::ByteSpan m) { Hello h; return decode_hello(m, h); }});
  s.push_back({"write", encoded_record(sample_record(MsgType::write, 100), base::Bytes(100, 0x5a)), decode_any_record});
  s.push_back({"trim", encoded_record(sample_record(MsgType::trim, 8192)), decode_any_record});
  s.push_back({"zero", encoded_record(sample_record(MsgType::zero, 8192)), decode_any_record});
  s.push_back({"barrier", encoded_record(sample_record(MsgType::barrier, 0)), decode_any_record});
  b.clear();
  encode_barrier_ack(5, 6, b);
  s.push_back({"barrier_ack", b, [](base::ByteSpan m) { uint64_t e, q; return decode_barrier_ack(m, e, q); }});
  b.clear();
  encode_receipt_ack(9, b);
  s.push_back({"receipt_ack", b, [](base::ByteSpan m) { uint64_t q; return decode_receipt_ack(m, q); }});
  b.clear();
  encode_committed(9, b);
  s.push_back({"committed", b, [](base::ByteSpan m) { uint64_t q; return decode_committed(m, q); }});
  b.clear();
  encode_ping(1, 2, b);
  s.push_back({"ping", b, [](base::ByteSpan m) { uint64_t t, e; return decode_ping(m, t, e); }});
  b.clear();
  encode_pong(1, b);
  s.push_back({"pong", b, [](base::ByteSpan m) { uint64_t t; return decode_pong(m, t); }});
  b.clear();
  encode_error({ErrorCode::digest_mismatch, "bad digest"}, b);
  s.push_back({"error", b, [](base::ByteSpan m) { ErrorMsg e; return decode_error(m, e); }});
  b.clear();
  encode_goodbye({ErrorCode::shutting_down, "bye"}, b);
  s.push_back({"goodbye", b, [](base::ByteSpan m) { ErrorMsg e; return decode_goodbye(m, e); }});
  return s;
}

}  // namespace

TEST_CASE("a hello round-trips field by field and is 85 bytes") {
  base::Bytes b;
  const Hello in = sample_hello();
  encode_hello(in, b);
  CHECK(b.size() == 85);
  CHECK(b[0] == 1);
  Hello out;
  REQUIRE(decode_hello(b, out).is_ok());
  CHECK(out.version == in.version);
  CHECK(out.role == in.role);
  CHECK(out.state == in.state);
  CHECK(out.pair_id == in.pair_id);
  CHECK(out.flags == in.flags);
  CHECK(out.disk_size_bytes == in.disk_size_bytes);
  CHECK(out.logical_block_bytes == in.logical_block_bytes);
  CHECK(out.generation == in.generation);
  CHECK(out.applied_seq == in.applied_seq);
  CHECK(out.applied_epoch == in.applied_epoch);
  CHECK(out.committed_seq == in.committed_seq);
  CHECK(out.log_start_seq == in.log_start_seq);
  CHECK(out.log_end_seq == in.log_end_seq);
}

TEST_CASE("a hello with a bad role or state is rejected and unknown flags are ignored") {
  base::Bytes b;
  encode_hello(sample_hello(), b);
  Hello out;
  for (uint8_t role : {0, 3, 255}) {
    CAPTURE(role);
    base::Bytes bad = b;
    bad[3] = role;
    CHECK(decode_hello(bad, out).code() == EPROTO);
  }
  base::Bytes bad = b;
  bad[4] = 4;  // states are 0..3
  CHECK(decode_hello(bad, out).code() == EPROTO);
  base::Bytes flags = b;
  flags[24] = 0x80;  // bit 31 of the flags: unknown
  REQUIRE(decode_hello(flags, out).is_ok());
  CHECK(out.flags == (0x80000000u | kHelloWantReceiptAcks));
}

TEST_CASE("records of every type round-trip with their layout sizes") {
  const base::Bytes payload(4096, 0xc3);
  for (MsgType t : {MsgType::write, MsgType::trim, MsgType::zero, MsgType::barrier}) {
    CAPTURE(static_cast<int>(t));
    const RecordHeader in = sample_record(t, t == MsgType::write ? payload.size() : kMaxExtentBytes);
    const base::Bytes b = encoded_record(in, t == MsgType::write ? payload : base::Bytes{});
    const size_t expected = t == MsgType::write ? 64 + payload.size() : t == MsgType::barrier ? 24 : 40;
    CHECK(b.size() == expected);
    RecordHeader out;
    base::ByteSpan p;
    REQUIRE(decode_record(b, out, p).is_ok());
    CHECK(same_header(in, out));
    if (t == MsgType::write) {
      CHECK(p.data() == b.data() + 64);  // a view into the message, not a copy
      CHECK(base::Bytes(p.begin(), p.end()) == payload);
    } else {
      CHECK(p.empty());
    }
  }
}

TEST_CASE("a marked barrier carries its name, and a bad name is refused") {
  RecordHeader in = sample_record(MsgType::barrier, 0);
  in.flags = proto::kBarrierFlagMark;
  const std::string name = "before-upgrade";
  base::Bytes b;
  proto::encode_record(in, base::ByteSpan(reinterpret_cast<const uint8_t*>(name.data()), name.size()), b);
  CHECK(b.size() == 24 + name.size());
  RecordHeader out;
  base::ByteSpan p;
  REQUIRE(decode_record(b, out, p).is_ok());
  CHECK(same_header(in, out));
  CHECK(std::string(p.begin(), p.end()) == name);

  auto refused = [](base::Bytes bytes, const char* why) {
    RecordHeader h;
    base::ByteSpan q;
    const base::Status s = decode_record(bytes, h, q);
    REQUIRE_FALSE(s.is_ok());
    CHECK(s.message().find(why) != std::string::npos);
  };
  base::Bytes bad = b;
  bad.push_back('x');  // more bytes than the length says
  refused(bad, "does not match");
  bad = b;
  bad[4] = 0;  // length 0
  refused(bad, "outside 1..255");
  bad = b;
  bad[24] = '\n';
  refused(bad, "not printable ASCII");
  bad = b;
  bad.resize(24);
  refused(bad, "does not match");
  base::Bytes longest;
  const std::string long_name(255, 'm');
  proto::encode_record(in, base::ByteSpan(reinterpret_cast<const uint8_t*>(long_name.data()), 255), longest);
  CHECK(decode_record(longest, out, p).is_ok());
  longest.push_back('m');
  longest[4] = 0;
  longest[5] = 1;  // 256
  refused(longest, "outside 1..255");
  CHECK(proto::is_valid_mark_name("a b-c_9"));
  CHECK_FALSE(proto::is_valid_mark_name(""));
  CHECK_FALSE(proto::is_valid_mark_name("caf\xc3\xa9"));
}

TEST_CASE("the write header encoder writes the same bytes as the record encoder") {
  const RecordHeader h = sample_record(MsgType::write, 512);
  uint8_t header[kWriteHeaderBytes];
  encode_write_header(h, header);
  const base::Bytes b = encoded_record(h, base::Bytes(512, 1));
  CHECK(base::Bytes(header, header + kWriteHeaderBytes) == base::Bytes(b.begin(), b.begin() + 64));
}

TEST_CASE("acks, committed, ping and pong round-trip") {
  base::Bytes b;
  uint64_t a = 0, c = 0;
  encode_barrier_ack(0x1111222233334444ull, 0x5555666677778888ull, b);
  REQUIRE(decode_barrier_ack(b, a, c).is_ok());
  CHECK(a == 0x1111222233334444ull);
  CHECK(c == 0x5555666677778888ull);
  b.clear();
  encode_receipt_ack(77, b);
  REQUIRE(decode_receipt_ack(b, a).is_ok());
  CHECK(a == 77);
  b.clear();
  encode_committed(78, b);
  REQUIRE(decode_committed(b, a).is_ok());
  CHECK(a == 78);
  b.clear();
  encode_ping(0xabcdef, 79, b);
  REQUIRE(decode_ping(b, a, c).is_ok());
  CHECK(a == 0xabcdef);
  CHECK(c == 79);
  b.clear();
  encode_pong(0xabcdef, b);
  REQUIRE(decode_pong(b, a).is_ok());
  CHECK(a == 0xabcdef);
}

TEST_CASE("error and goodbye round-trip and keep unknown codes") {
  base::Bytes b;
  ErrorMsg out;
  encode_error({ErrorCode::sequence_gap, "record 5 is not the next one (expected 4)."}, b);
  REQUIRE(decode_error(b, out).is_ok());
  CHECK(out.code == ErrorCode::sequence_gap);
  CHECK(out.message == "record 5 is not the next one (expected 4).");
  CHECK_FALSE(decode_goodbye(b, out).is_ok());  // the type byte tells them apart
  b.clear();
  encode_goodbye({static_cast<ErrorCode>(999), ""}, b);
  REQUIRE(decode_goodbye(b, out).is_ok());
  CHECK(static_cast<int>(out.code) == 999);
  CHECK(out.message.empty());
  CHECK(std::string(error_code_name(static_cast<ErrorCode>(999))) == "unknown");
  CHECK(std::string(error_code_name(ErrorCode::digest_mismatch)) == "digest_mismatch");
  CHECK(std::string(clone_state_name(CloneState::consistent)) == "consistent");
}

TEST_CASE("long texts are truncated on encode without splitting a character, and refused on decode") {
  std::string text(kMaxMessageTextBytes - 1, 'a');
  text += "\xc3\xa9";  // é straddles the limit
  text += std::string(100, 'b');
  base::Bytes b;
  encode_error({ErrorCode::internal, text}, b);
  ErrorMsg out;
  REQUIRE(decode_error(b, out).is_ok());
  CHECK(out.message == std::string(kMaxMessageTextBytes - 1, 'a'));

  base::Bytes big;
  base::ByteWriter w(big);
  w.u8(static_cast<uint8_t>(MsgType::error));
  w.u16(1);
  w.str16(std::string(kMaxMessageTextBytes + 1, 'x'));
  CHECK(decode_error(big, out).code() == EMSGSIZE);
}

TEST_CASE("every decoder rejects each truncation, one extra byte, and a wrong type byte") {
  for (const Sample& s : all_samples()) {
    CAPTURE(s.name);
    REQUIRE(s.decode(s.bytes).is_ok());
    for (size_t n = 0; n < s.bytes.size(); ++n) {
      CAPTURE(n);
      base::Status st = s.decode(base::ByteSpan(s.bytes).first(n));
      CHECK_FALSE(st.is_ok());
      CHECK(st.message().rfind("malformed ", 0) == 0);
    }
    base::Bytes longer = s.bytes;
    longer.push_back(0);
    CHECK(s.decode(longer).code() == EPROTO);
    for (const Sample& other : all_samples()) {
      if (other.name == s.name) continue;
      // Trim and zero share one layout: the decoder reports the type, the caller tells them apart.
      const bool extents = (s.name == "trim" || s.name == "zero") && (other.name == "trim" || other.name == "zero");
      if (extents) continue;
      CAPTURE(other.name);
      base::Bytes retyped = s.bytes;
      retyped[0] = other.bytes[0];
      CHECK_FALSE(s.decode(retyped).is_ok());
    }
  }
}

TEST_CASE("record lengths outside their limits are rejected with a sentence") {
  RecordHeader h;
  base::ByteSpan p;
  base::Bytes w = encoded_record(sample_record(MsgType::write, 1), base::Bytes(1, 0));
  base::store_le32(w.data() + 4, 0);
  w.pop_back();
  base::Status s = decode_record(w, h, p);
  CHECK(s.code() == EPROTO);
  CHECK(s.message() == "malformed write record: length 0 is outside 1..1048576.");

  base::Bytes big = encoded_record(sample_record(MsgType::write, kMaxWritePayloadBytes),
                                   base::Bytes(kMaxWritePayloadBytes, 0));
  CHECK(decode_record(big, h, p).is_ok());
  base::store_le32(big.data() + 4, kMaxWritePayloadBytes + 1);
  big.push_back(0);
  CHECK(decode_record(big, h, p).code() == EMSGSIZE);

  base::Bytes mismatch = encoded_record(sample_record(MsgType::write, 10), base::Bytes(10, 0));
  base::store_le32(mismatch.data() + 4, 11);
  CHECK(decode_record(mismatch, h, p).code() == EPROTO);

  for (MsgType t : {MsgType::trim, MsgType::zero}) {
    CAPTURE(static_cast<int>(t));
    base::Bytes e = encoded_record(sample_record(t, 4096));
    base::store_le64(e.data() + 32, 0);
    CHECK(decode_record(e, h, p).code() == EPROTO);
    base::store_le64(e.data() + 32, kMaxExtentBytes + 1);
    CHECK(decode_record(e, h, p).code() == EMSGSIZE);
  }
}

TEST_CASE("reserved record fields are ignored on decode and a failed decode leaves the header alone") {
  base::Bytes b = encoded_record(sample_record(MsgType::trim, 4096));
  b[2] = 0xff;
  b[5] = 0xff;
  RecordHeader h;
  base::ByteSpan p;
  REQUIRE(decode_record(b, h, p).is_ok());
  CHECK(h.length_bytes == 4096);
  const RecordHeader before = h;
  b.pop_back();
  CHECK_FALSE(decode_record(b, h, p).is_ok());
  CHECK(same_header(before, h));
}

TEST_CASE("peek_type names the type and rejects empty frames and unknown types") {
  CHECK_FALSE(peek_type({}).is_ok());
  for (int t = 0; t < 256; ++t) {
    CAPTURE(t);
    const uint8_t byte = static_cast<uint8_t>(t);
    base::Result<MsgType> r = peek_type(base::ByteSpan(&byte, 1));
    // 13..24: resync and verify; 32, 33: health; 40..42: wake.
    CHECK(r.is_ok() == ((t >= 1 && t <= 26) || t == 32 || t == 33 || (t >= 40 && t <= 42)));
    if (r.is_ok()) CHECK(static_cast<int>(*r) == t);
  }
}
