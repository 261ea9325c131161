// SPDX-License-Identifier: MIT
// The messages of the replication protocol, version 1, and their byte codecs.
// docs/PROTOCOL.md is the specification; this file follows it field by field.
//
// Every message travels as the plaintext of one AEAD frame (frame.h). The
// first byte is the MsgType. All integers are little-endian. Decoders take
// untrusted bytes: they check every length against the frame and the limits
// below and return an error Status (never assert) on anything malformed.
// They do not judge semantics (offset inside the disk, sequence order): that
// is the apply state machine's job.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/status.h"
#include "digest/digest.h"

namespace proto {

inline constexpr uint16_t kProtocolVersion = 1;
inline constexpr size_t kPairIdBytes = 16;
using PairId = std::array<uint8_t, kPairIdBytes>;

// Largest payload of one write record, and largest trim/zero extent.
inline constexpr uint32_t kMaxWritePayloadBytes = 1u << 20;          // 1 MiB
inline constexpr uint64_t kMaxExtentBytes = 1ull << 30;               // 1 GiB per trim/zero
// Largest plaintext of any frame: a write header plus the largest payload.
inline constexpr uint32_t kWriteHeaderBytes = 64;
inline constexpr uint32_t kMaxFramePlainBytes = kWriteHeaderBytes + kMaxWritePayloadBytes;
inline constexpr size_t kMaxMessageTextBytes = 512;                   // error/goodbye sentences

enum class MsgType : uint8_t {
  hello = 1,
  write = 2,
  trim = 3,
  zero = 4,
  barrier = 5,
  barrier_ack = 6,
  receipt_ack = 7,
  committed = 8,
  ping = 9,
  pong = 10,
  error = 11,
  goodbye = 12,
  // Resync and verify (resync.h): 13..24.
  resync_begin = 13,
  resync_state = 14,
  digest_request = 15,
  digest_reply = 16,
  resync_data = 17,
  resync_zero = 18,
  resync_mark = 19,
  resync_mark_ack = 20,
  resync_end = 21,
  resync_done = 22,
  out_of_sync = 23,
  progress = 24,
  resync_plan = 25,        // original -> clone: what the resync will send, before any of it
  resync_plan_reply = 26,  // clone -> original: whether that fits the stage, with the figures
  // Hardware health (health.h): 32..39.
  health_report = 32,  // clone -> original: a hardware health report (health.cpp)
  health_ack = 33,     // original -> clone: that report is kept; drop it from the backlog
  // 40..47: waking the clone (wake_messages.h).
  wake_info = 40,       // clone -> original: how to wake it
  going_to_sleep = 41,  // clone -> original: it sleeps now
  sleep_request = 42,   // original -> clone: sleep when you can
};
// True for every type this version knows (peek_type refuses the others).
bool is_known_type(uint8_t type);

// The clone's replication state as told in its hello and status.
enum class CloneState : uint8_t {
  fresh = 0,         // paired, nothing applied yet
  consistent = 1,    // a bootable copy at an epoch boundary
  inconsistent = 2,  // catching up after an unclean stop, or resyncing
  diverged = 3,      // the disk changed behind the daemon: no writes until a decision
};
const char* clone_state_name(CloneState s);

enum class Role : uint8_t { original = 1, clone = 2 };

// Hello flags (original -> clone).
inline constexpr uint32_t kHelloWantReceiptAcks = 1u << 0;
// A maintenance session (resync, verify, repair): the clone opens it whatever
// its generation and position, and takes records only once they line up
// (after a resync_begin, or when they did already).
inline constexpr uint32_t kHelloMaintenance = 1u << 1;
// The original only collects health reports in this session: the clone
// answers with its hello but takes no records and does not change its
// replication state (`clone-origin health`; works while the disk is failed).
inline constexpr uint32_t kHelloHealthOnly = 1u << 2;
// Clone -> original: the clone takes a resync_plan (resync.h) after a
// resync_begin that announces one. Without it an original sends none.
inline constexpr uint32_t kHelloTakesResyncPlan = 1u << 3;

// A health report's payload (hwhealth::encode_report) is at most this long.
inline constexpr uint32_t kMaxHealthReportBytes = 48 * 1024;

struct Hello {
  uint16_t version = kProtocolVersion;
  Role role = Role::original;
  PairId pair_id{};
  uint32_t flags = 0;
  uint64_t disk_size_bytes = 0;
  uint32_t logical_block_bytes = 0;
  uint64_t generation = 0;
  // Clone: last sequence number durable on its disk (known in this process),
  // else the committed one. Original: the last barrier the clone acknowledged
  // (barrier_ack), 0 if none: after a crash of the clone this is where it
  // resumes, if it is past the clone's committed position.
  uint64_t applied_seq = 0;
  // The epoch closed by the barrier at applied_seq (0 before any).
  uint64_t applied_epoch = 0;
  // Clone: last sequence number committed in its state store. Original: 0.
  uint64_t committed_seq = 0;
  CloneState state = CloneState::fresh;
  // Original: oldest sequence number it still holds and the newest it has.
  uint64_t log_start_seq = 0;
  uint64_t log_end_seq = 0;
};

// A log record: a write, trim, zero, or barrier (end of epoch). Every record
// has the next sequence number; barrier e closes epoch e.
// A barrier with this flag names a mark (docs/PROTOCOL.md 6.2): a point of
// the original's log a person can ask the clone about ("before-upgrade").
// The name is 1..kMaxMarkNameBytes of printable ASCII.
inline constexpr uint8_t kBarrierFlagMark = 1u << 0;
inline constexpr size_t kMaxMarkNameBytes = 255;
bool is_valid_mark_name(std::string_view name);

struct RecordHeader {
  MsgType type = MsgType::write;   // write, trim, zero or barrier
  uint8_t flags = 0;               // barrier: kBarrierFlagMark; else reserved, 0
  uint64_t seq = 0;
  uint64_t epoch = 0;
  uint64_t offset_bytes = 0;       // write/trim/zero
  uint64_t length_bytes = 0;       // write: payload length; trim/zero: extent
  digest::Digest digest{};        // write only: keyed BLAKE2b-256 of the payload
};

enum class ErrorCode : uint16_t {
  protocol = 1,            // unexpected or malformed message
  version = 2,             // protocol version not supported
  pair_mismatch = 3,       // hello for another pair
  disk_mismatch = 4,       // disk size or block size differ from the peer's
  out_of_range = 5,        // record outside the disk
  misaligned = 6,          // record not aligned to the logical block size
  digest_mismatch = 7,     // payload does not match its digest
  sequence_gap = 8,        // record sequence number is not the next one
  generation_mismatch = 9, // log of another generation: resync needed
  resync_needed = 10,      // the original cannot continue from the clone's position
  disk_io = 11,            // the clone's disk failed a write or flush
  busy = 12,               // another original session is active
  shutting_down = 13,      // the clone is stopping
  timeout = 14,            // the peer was silent too long
  too_large = 15,          // frame or record over the limits
  diverged = 16,           // the clone refuses writes until a decision
  internal = 17,
  corrupted = 18,          // a frame failed authentication: damaged in transit (or forged)
  stage_full = 19,         // the clone's stick cannot hold the staged resync (final: a person must act)
};
const char* error_code_name(ErrorCode c);
// The code that tells a peer why its message was refused, from a decoder's or
// frame reader's status: too_large for a length over a limit (EMSGSIZE),
// corrupted for a frame that failed authentication (EBADMSG), version for a
// protocol version not spoken (EPROTONOSUPPORT), else protocol.
ErrorCode error_code_for(const base::Status& refused);

struct ErrorMsg {
  ErrorCode code = ErrorCode::protocol;
  std::string message;  // a sentence; truncated to kMaxMessageTextBytes on encode
};

// --- Encoding: each appends one message's plaintext to `out`. ---
void encode_hello(const Hello& m, base::Bytes& out);
// Writes only the 64-byte header of a write record; the payload follows it.
void encode_write_header(const RecordHeader& h, uint8_t out[kWriteHeaderBytes]);
void encode_record(const RecordHeader& h, base::ByteSpan payload, base::Bytes& out);  // any record type
void encode_barrier_ack(uint64_t epoch, uint64_t seq, base::Bytes& out);
void encode_receipt_ack(uint64_t seq, base::Bytes& out);
void encode_committed(uint64_t seq, base::Bytes& out);
void encode_ping(uint64_t token, uint64_t log_end_seq, base::Bytes& out);
void encode_pong(uint64_t token, base::Bytes& out);
void encode_error(const ErrorMsg& m, base::Bytes& out);
void encode_goodbye(const ErrorMsg& m, base::Bytes& out);

// --- Decoding: `msg` is one frame's whole plaintext. ---
// The type byte, or an error for an empty frame or an unknown type.
base::Result<MsgType> peek_type(base::ByteSpan msg);
base::Status decode_hello(base::ByteSpan msg, Hello& out);
// For write: `payload` views the bytes after the header inside `msg` and its
// size equals h.length_bytes. For a marked barrier it views the mark's name.
// For the other record types `payload` is empty.
base::Status decode_record(base::ByteSpan msg, RecordHeader& h, base::ByteSpan& payload);
base::Status decode_barrier_ack(base::ByteSpan msg, uint64_t& epoch, uint64_t& seq);
base::Status decode_receipt_ack(base::ByteSpan msg, uint64_t& seq);
base::Status decode_committed(base::ByteSpan msg, uint64_t& seq);
base::Status decode_ping(base::ByteSpan msg, uint64_t& token, uint64_t& log_end_seq);
base::Status decode_pong(base::ByteSpan msg, uint64_t& token);
base::Status decode_error(base::ByteSpan msg, ErrorMsg& out);    // type error
base::Status decode_goodbye(base::ByteSpan msg, ErrorMsg& out);  // type goodbye

// Health reports (health.cpp): health_report = type:u8 id:u64 length:u32
// report[length] (length <= kMaxHealthReportBytes); health_ack = type:u8 id:u64.
// The report bytes are opaque here (decoded with hwhealth::decode_report).
void encode_health_report(uint64_t id, base::ByteSpan report, base::Bytes& out);
void encode_health_ack(uint64_t id, base::Bytes& out);
// `report` views the bytes inside `msg`.
base::Status decode_health_report(base::ByteSpan msg, uint64_t& id, base::ByteSpan& report);
base::Status decode_health_ack(base::ByteSpan msg, uint64_t& id);

}  // namespace proto
