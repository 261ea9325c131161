// SPDX-License-Identifier: MIT
// Byte codecs of the protocol messages. The layouts are docs/PROTOCOL.md,
// "Messages"; the sizes below are asserted against them so that a field
// added here without the spec (or the other way round) fails to compile.
// The record codecs are in records.cpp.
#include "proto/messages.h"

#include <cassert>
#include <cerrno>
#include <string>
#include <string_view>

#include "proto/codec_internal.h"

namespace proto {
namespace {

using codec::check_fixed;
using codec::malformed;
using codec::too_large;
using codec::u64s;

inline constexpr size_t kHelloBytes = 1 + 2 + 1 + 1 + kPairIdBytes + 4 + 8 + 4 + 6 * 8;
inline constexpr size_t kBarrierAckBytes = 1 + 8 + 8;
inline constexpr size_t kSeqMsgBytes = 1 + 8;
inline constexpr size_t kPingBytes = 1 + 8 + 8;
inline constexpr size_t kPongBytes = 1 + 8;
inline constexpr size_t kTextHeaderBytes = 1 + 2 + 2;
static_assert(kHelloBytes == 85);
static_assert(kMaxMessageTextBytes <= 0xffff, "text length travels as a u16");

// Truncates to kMaxMessageTextBytes without splitting a UTF-8 sequence:
// a receiver logs the text, and half a character would garble its end.
std::string_view truncated_text(std::string_view s) {
  if (s.size() <= kMaxMessageTextBytes) return s;
  size_t n = kMaxMessageTextBytes;
  while (n > 0 && (static_cast<uint8_t>(s[n]) & 0xc0) == 0x80) --n;
  return s.substr(0, n);
}

void encode_text(MsgType type, const ErrorMsg& m, base::Bytes& out) {
  const std::string_view text = truncated_text(m.message);
  base::ByteWriter w(out);
  w.u8(static_cast<uint8_t>(type));
  w.u16(static_cast<uint16_t>(m.code));
  w.str16(text);
}

base::Status decode_text(base::ByteSpan msg, MsgType type, std::string_view what, ErrorMsg& out) {
  if (msg.empty() || msg[0] != static_cast<uint8_t>(type))
    return malformed(what, "the type byte is not " + std::to_string(static_cast<int>(type)));
  base::ByteReader r(msg);
  r.u8();
  const uint16_t code = r.u16();
  const uint16_t text_bytes = r.u16();
  if (!r.ok()) return malformed(what, u64s(msg.size()) + " bytes is shorter than its " +
                                          u64s(kTextHeaderBytes) + "-byte header");
  if (text_bytes > kMaxMessageTextBytes)
    return too_large(what, "text of " + u64s(text_bytes) + " bytes is over the limit of " +
                               u64s(kMaxMessageTextBytes));
  if (r.remaining() != text_bytes)
    return malformed(what, "text length " + u64s(text_bytes) + " does not match the " +
                               u64s(r.remaining()) + " bytes that follow");
  const base::ByteSpan text = r.rest();
  out.code = static_cast<ErrorCode>(code);  // unknown codes are kept: a newer peer may send them
  out.message.assign(text.begin(), text.end());
  return base::Status::ok();
}

}  // namespace

const char* clone_state_name(CloneState s) {
  switch (s) {
    case CloneState::fresh: return "fresh";
    case CloneState::consistent: return "consistent";
    case CloneState::inconsistent: return "inconsistent";
    case CloneState::diverged: return "diverged";
  }
  return "unknown";
}

ErrorCode error_code_for(const base::Status& refused) {
  switch (refused.code()) {
    case EMSGSIZE: return ErrorCode::too_large;
    case EBADMSG: return ErrorCode::corrupted;
    case EPROTONOSUPPORT: return ErrorCode::version;
    default: return ErrorCode::protocol;
  }
}

const char* error_code_name(ErrorCode c) {
  switch (c) {
    case ErrorCode::protocol: return "protocol";
    case ErrorCode::version: return "version";
    case ErrorCode::pair_mismatch: return "pair_mismatch";
    case ErrorCode::disk_mismatch: return "disk_mismatch";
    case ErrorCode::out_of_range: return "out_of_range";
    case ErrorCode::misaligned: return "misaligned";
    case ErrorCode::digest_mismatch: return "digest_mismatch";
    case ErrorCode::sequence_gap: return "sequence_gap";
    case ErrorCode::generation_mismatch: return "generation_mismatch";
    case ErrorCode::resync_needed: return "resync_needed";
    case ErrorCode::disk_io: return "disk_io";
    case ErrorCode::busy: return "busy";
    case ErrorCode::shutting_down: return "shutting_down";
    case ErrorCode::timeout: return "timeout";
    case ErrorCode::too_large: return "too_large";
    case ErrorCode::diverged: return "diverged";
    case ErrorCode::internal: return "internal";
    case ErrorCode::corrupted: return "corrupted";
    case ErrorCode::stage_full: return "stage_full";
  }
  return "unknown";
}

// --- Encoding ---

void encode_hello(const Hello& m, base::Bytes& out) {
  base::ByteWriter w(out);
  w.u8(static_cast<uint8_t>(MsgType::hello));
  w.u16(m.version);
  w.u8(static_cast<uint8_t>(m.role));
  w.u8(static_cast<uint8_t>(m.state));
  w.raw(m.pair_id.data(), m.pair_id.size());
  w.u32(m.flags);
  w.u64(m.disk_size_bytes);
  w.u32(m.logical_block_bytes);
  w.u64(m.generation);
  w.u64(m.applied_seq);
  w.u64(m.applied_epoch);
  w.u64(m.committed_seq);
  w.u64(m.log_start_seq);
  w.u64(m.log_end_seq);
}

void encode_barrier_ack(uint64_t epoch, uint64_t seq, base::Bytes& out) {
  base::ByteWriter w(out);
  w.u8(static_cast<uint8_t>(MsgType::barrier_ack));
  w.u64(epoch);
  w.u64(seq);
}

void encode_receipt_ack(uint64_t seq, base::Bytes& out) {
  base::ByteWriter w(out);
  w.u8(static_cast<uint8_t>(MsgType::receipt_ack));
  w.u64(seq);
}

void encode_committed(uint64_t seq, base::Bytes& out) {
  base::ByteWriter w(out);
  w.u8(static_cast<uint8_t>(MsgType::committed));
  w.u64(seq);
}

void encode_ping(uint64_t token, uint64_t log_end_seq, base::Bytes& out) {
  base::ByteWriter w(out);
  w.u8(static_cast<uint8_t>(MsgType::ping));
  w.u64(token);
  w.u64(log_end_seq);
}

void encode_pong(uint64_t token, base::Bytes& out) {
  base::ByteWriter w(out);
  w.u8(static_cast<uint8_t>(MsgType::pong));
  w.u64(token);
}

void encode_error(const ErrorMsg& m, base::Bytes& out) { encode_text(MsgType::error, m, out); }
void encode_goodbye(const ErrorMsg& m, base::Bytes& out) { encode_text(MsgType::goodbye, m, out); }

// --- Decoding ---

bool is_known_type(uint8_t t) {
  return (t >= static_cast<uint8_t>(MsgType::hello) && t <= static_cast<uint8_t>(MsgType::goodbye)) ||
         (t >= static_cast<uint8_t>(MsgType::resync_begin) && t <= static_cast<uint8_t>(MsgType::resync_plan_reply)) ||
         t == static_cast<uint8_t>(MsgType::health_report) || t == static_cast<uint8_t>(MsgType::health_ack) ||
         (t >= static_cast<uint8_t>(MsgType::wake_info) && t <= static_cast<uint8_t>(MsgType::sleep_request));
}

base::Result<MsgType> peek_type(base::ByteSpan msg) {
  if (msg.empty())
    return base::Status::error(EPROTO, "malformed message: the frame is empty and has no type byte.");
  const uint8_t t = msg[0];
  if (!is_known_type(t))
    return base::Status::error(EPROTO, "malformed message: unknown message type " + std::to_string(t) + ".");
  return static_cast<MsgType>(t);
}

base::Status decode_hello(base::ByteSpan msg, Hello& out) {
  BASE_TRY(check_fixed(msg, MsgType::hello, kHelloBytes, "hello"));
  base::ByteReader r(msg);
  r.u8();
  Hello m;
  m.version = r.u16();
  const uint8_t role = r.u8();
  const uint8_t state = r.u8();
  r.raw(m.pair_id.data(), m.pair_id.size());
  m.flags = r.u32();  // unknown bits are ignored: they are requests a newer peer may make
  m.disk_size_bytes = r.u64();
  m.logical_block_bytes = r.u32();
  m.generation = r.u64();
  m.applied_seq = r.u64();
  m.applied_epoch = r.u64();
  m.committed_seq = r.u64();
  m.log_start_seq = r.u64();
  m.log_end_seq = r.u64();
  assert(r.done());
  if (role != static_cast<uint8_t>(Role::original) && role != static_cast<uint8_t>(Role::clone))
    return malformed("hello", "role " + std::to_string(role) + " is neither 1 (original) nor 2 (clone)");
  if (state > static_cast<uint8_t>(CloneState::diverged))
    return malformed("hello", "state " + std::to_string(state) + " is outside 0..3");
  m.role = static_cast<Role>(role);
  m.state = static_cast<CloneState>(state);
  out = m;
  return base::Status::ok();
}

base::Status decode_barrier_ack(base::ByteSpan msg, uint64_t& epoch, uint64_t& seq) {
  BASE_TRY(check_fixed(msg, MsgType::barrier_ack, kBarrierAckBytes, "barrier_ack"));
  base::ByteReader r(msg.subspan(1));
  epoch = r.u64();
  seq = r.u64();
  return base::Status::ok();
}

base::Status decode_receipt_ack(base::ByteSpan msg, uint64_t& seq) {
  BASE_TRY(check_fixed(msg, MsgType::receipt_ack, kSeqMsgBytes, "receipt_ack"));
  seq = base::load_le64(msg.data() + 1);
  return base::Status::ok();
}

base::Status decode_committed(base::ByteSpan msg, uint64_t& seq) {
  BASE_TRY(check_fixed(msg, MsgType::committed, kSeqMsgBytes, "committed"));
  seq = base::load_le64(msg.data() + 1);
  return base::Status::ok();
}

base::Status decode_ping(base::ByteSpan msg, uint64_t& token, uint64_t& log_end_seq) {
  BASE_TRY(check_fixed(msg, MsgType::ping, kPingBytes, "ping"));
  base::ByteReader r(msg.subspan(1));
  token = r.u64();
  log_end_seq = r.u64();
  return base::Status::ok();
}

base::Status decode_pong(base::ByteSpan msg, uint64_t& token) {
  BASE_TRY(check_fixed(msg, MsgType::pong, kPongBytes, "pong"));
  token = base::load_le64(msg.data() + 1);
  return base::Status::ok();
}

base::Status decode_error(base::ByteSpan msg, ErrorMsg& out) {
  return decode_text(msg, MsgType::error, "error message", out);
}

base::Status decode_goodbye(base::ByteSpan msg, ErrorMsg& out) {
  return decode_text(msg, MsgType::goodbye, "goodbye message", out);
}

}  // namespace proto
