// SPDX-License-Identifier: MIT
// Codecs of the log records: write, trim, zero, barrier (docs/PROTOCOL.md,
// "Records"). These run once per record on both sides; the write header
// encoder does not allocate.
#include <cassert>
#include <cstring>
#include <string>
#include <string_view>

#include "proto/codec_internal.h"
#include "proto/messages.h"

namespace proto {
namespace {

using codec::check_fixed;
using codec::malformed;
using codec::too_large;
using codec::u64s;

inline constexpr size_t kExtentRecordBytes = 1 + 1 + 2 + 4 + 8 + 8 + 8 + 8;
inline constexpr size_t kBarrierBytes = 1 + 1 + 2 + 4 + 8 + 8;
static_assert(kExtentRecordBytes == 40);
static_assert(kBarrierBytes == 24);
static_assert(kWriteHeaderBytes == 1 + 1 + 2 + 4 + 8 + 8 + 8 + digest::kDigestBytes);
static_assert(kMaxWritePayloadBytes <= 0xffffffffu, "write length travels as a u32");

const char* record_name(MsgType t) {
  switch (t) {
    case MsgType::write: return "write record";
    case MsgType::trim: return "trim record";
    case MsgType::zero: return "zero record";
    case MsgType::barrier: return "barrier record";
    case MsgType::resync_data: return "resync_data message";
    case MsgType::resync_zero: return "resync_zero message";
    default: return "record";
  }
}

bool is_record_type(MsgType t) {
  return t == MsgType::write || t == MsgType::trim || t == MsgType::zero || t == MsgType::barrier;
}

bool is_resync_extent_type(MsgType t) { return t == MsgType::resync_data || t == MsgType::resync_zero; }
bool has_payload(MsgType t) { return t == MsgType::write || t == MsgType::resync_data; }

// The record decoders fill `h` and leave the caller's header untouched on error.
base::Status decode_write(base::ByteSpan msg, RecordHeader& h, base::ByteSpan& payload) {
  const std::string_view what = record_name(static_cast<MsgType>(msg[0]));
  if (msg.size() < kWriteHeaderBytes)
    return malformed(what, u64s(msg.size()) + " bytes is shorter than its " +
                               u64s(kWriteHeaderBytes) + "-byte header");
  base::ByteReader r(msg);
  h.type = static_cast<MsgType>(r.u8());
  h.flags = r.u8();
  r.u16();  // reserved: ignored so that a later version may use it
  h.length_bytes = r.u32();
  h.seq = r.u64();
  h.epoch = r.u64();
  h.offset_bytes = r.u64();
  r.raw(h.digest.data(), h.digest.size());
  const std::string range = " is outside 1.." + u64s(kMaxWritePayloadBytes);
  if (h.length_bytes == 0) return malformed(what, "length 0" + range);
  if (h.length_bytes > kMaxWritePayloadBytes)
    return too_large(what, "length " + u64s(h.length_bytes) + range);
  if (r.remaining() != h.length_bytes)
    return malformed(what, "length " + u64s(h.length_bytes) + " does not match the " +
                               u64s(r.remaining()) + " payload bytes that follow");
  payload = r.rest();
  return base::Status::ok();
}

base::Status decode_extent(base::ByteSpan msg, RecordHeader& h) {
  const MsgType type = static_cast<MsgType>(msg[0]);
  const std::string_view what = record_name(type);
  BASE_TRY(check_fixed(msg, type, kExtentRecordBytes, what));
  base::ByteReader r(msg);
  h.type = static_cast<MsgType>(r.u8());
  h.flags = r.u8();
  r.u16();  // reserved
  r.u32();  // reserved
  h.seq = r.u64();
  h.epoch = r.u64();
  h.offset_bytes = r.u64();
  h.length_bytes = r.u64();
  assert(r.done());
  const std::string range = " is outside 1.." + u64s(kMaxExtentBytes);
  if (h.length_bytes == 0) return malformed(what, "length 0" + range);
  if (h.length_bytes > kMaxExtentBytes) return too_large(what, "length " + u64s(h.length_bytes) + range);
  return base::Status::ok();
}

// A barrier names a mark when its flags say so: the u32 after the flags is
// then the name's length, and the name follows the 24 bytes.
base::Status decode_barrier(base::ByteSpan msg, RecordHeader& h, base::ByteSpan& mark) {
  const bool marked = msg.size() >= 2 && (msg[1] & kBarrierFlagMark) != 0;
  if (!marked) BASE_TRY(check_fixed(msg, MsgType::barrier, kBarrierBytes, "barrier record"));
  if (msg.size() < kBarrierBytes)
    return malformed("barrier record", u64s(msg.size()) + " bytes is shorter than its " + u64s(kBarrierBytes) +
                                           "-byte header");
  base::ByteReader r(msg);
  h.type = static_cast<MsgType>(r.u8());
  h.flags = r.u8();
  r.u16();  // reserved
  const uint32_t mark_bytes = r.u32();  // reserved unless marked
  h.seq = r.u64();
  h.epoch = r.u64();
  if (!marked) return base::Status::ok();
  if (mark_bytes == 0 || mark_bytes > kMaxMarkNameBytes)
    return malformed("barrier record", "mark name length " + u64s(mark_bytes) + " is outside 1.." +
                                           u64s(kMaxMarkNameBytes));
  if (r.remaining() != mark_bytes)
    return malformed("barrier record", "mark name length " + u64s(mark_bytes) + " does not match the " +
                                           u64s(r.remaining()) + " bytes that follow");
  mark = r.rest();
  if (!is_valid_mark_name(std::string_view(reinterpret_cast<const char*>(mark.data()), mark.size())))
    return malformed("barrier record", "the mark name holds a byte that is not printable ASCII");
  return base::Status::ok();
}

}  // namespace

bool is_valid_mark_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxMarkNameBytes) return false;
  for (char c : name)
    if (c < 0x20 || c > 0x7e) return false;
  return true;
}

void encode_write_header(const RecordHeader& h, uint8_t out[kWriteHeaderBytes]) {
  assert(has_payload(h.type));
  assert(h.length_bytes >= 1 && h.length_bytes <= kMaxWritePayloadBytes);
  // Stored field by field into the caller's array: this runs once per write
  // record on the sending path and must not allocate.
  out[0] = static_cast<uint8_t>(h.type);
  out[1] = h.flags;
  base::store_le16(out + 2, 0);  // reserved
  base::store_le32(out + 4, static_cast<uint32_t>(h.length_bytes));
  base::store_le64(out + 8, h.seq);
  base::store_le64(out + 16, h.epoch);
  base::store_le64(out + 24, h.offset_bytes);
  std::memcpy(out + 32, h.digest.data(), h.digest.size());
  static_assert(32 + digest::kDigestBytes == kWriteHeaderBytes);
}

void encode_record(const RecordHeader& h, base::ByteSpan payload, base::Bytes& out) {
  assert(is_record_type(h.type) || is_resync_extent_type(h.type));
  if (has_payload(h.type)) {
    assert(payload.size() == h.length_bytes);
    uint8_t header[kWriteHeaderBytes];
    encode_write_header(h, header);
    out.insert(out.end(), header, header + kWriteHeaderBytes);
    out.insert(out.end(), payload.begin(), payload.end());
    return;
  }
  const bool marked = h.type == MsgType::barrier && (h.flags & kBarrierFlagMark) != 0;
  assert(marked ? payload.size() >= 1 && payload.size() <= kMaxMarkNameBytes : payload.empty());
  base::ByteWriter w(out);
  w.u8(static_cast<uint8_t>(h.type));
  w.u8(h.flags);
  w.u16(0);  // reserved
  w.u32(marked ? static_cast<uint32_t>(payload.size()) : 0);  // a mark's name length, else reserved
  w.u64(h.seq);
  w.u64(h.epoch);
  if (h.type == MsgType::barrier) {
    if (marked) out.insert(out.end(), payload.begin(), payload.end());
    return;
  }
  assert(h.length_bytes >= 1 && h.length_bytes <= kMaxExtentBytes);
  w.u64(h.offset_bytes);
  w.u64(h.length_bytes);
}

base::Status decode_record(base::ByteSpan msg, RecordHeader& h, base::ByteSpan& payload) {
  payload = {};
  if (msg.empty() || !is_record_type(static_cast<MsgType>(msg[0])))
    return malformed("record", msg.empty() ? std::string("the message is empty")
                                           : "type " + std::to_string(msg[0]) + " is not a record type (2..5)");
  RecordHeader decoded;  // offset, length and digest stay zero where a type has none
  base::ByteSpan body;
  base::Status s;
  switch (static_cast<MsgType>(msg[0])) {
    case MsgType::write: s = decode_write(msg, decoded, body); break;
    case MsgType::barrier: s = decode_barrier(msg, decoded, body); break;
    default: s = decode_extent(msg, decoded); break;
  }
  if (!s.is_ok()) return s;
  h = decoded;
  payload = body;
  return base::Status::ok();
}

base::Status decode_resync_extent(base::ByteSpan msg, RecordHeader& h, base::ByteSpan& payload) {
  payload = {};
  if (msg.empty() || !is_resync_extent_type(static_cast<MsgType>(msg[0])))
    return malformed("resync extent", msg.empty() ? std::string("the message is empty")
                                                  : "type " + std::to_string(msg[0]) + " is not 17 or 18");
  RecordHeader decoded;
  base::ByteSpan body;
  base::Status s = msg[0] == static_cast<uint8_t>(MsgType::resync_data) ? decode_write(msg, decoded, body)
                                                                          : decode_extent(msg, decoded);
  if (!s.is_ok()) return s;
  if (decoded.seq != 0 || decoded.epoch != 0)
    return malformed(record_name(decoded.type), "seq and epoch must be 0 (resync data is not part of the log)");
  h = decoded;
  payload = body;
  return base::Status::ok();
}

}  // namespace proto
