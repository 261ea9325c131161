// SPDX-License-Identifier: MIT
// Test hooks: an original that misbehaves on purpose. Black-box tests use
// these to check that the clone refuses what it must (design.md invariants 2
// and 3): garbage before the handshake, silence, a wrong secret, a replayed
// handshake, a tampered or oversized frame, and records that are out of
// range, misaligned, with a bad digest or out of sequence.
//
// Nothing here validates anything: every byte and field is the test's
// choice. Not used by clone-origin's normal path.
//
// Threading: a RawSession is used by one thread; it owns its socket. Every
// wait has a time limit.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/bytes.h"
#include "base/status.h"
#include "proto/frame.h"
#include "proto/handshake.h"
#include "proto/messages.h"
#include "origin/net.h"
#include "origin/session.h"

namespace origin::testing {

inline constexpr uint32_t kDefaultTimeoutMs = 5000;

// A TCP connection to the clone; the socket is non-blocking (every call here
// waits with poll and a deadline).
base::Result<base::UniqueFd> connect(const std::string& host, uint16_t port, uint32_t timeout_ms = kDefaultTimeoutMs);
// Sends bytes as they are: garbage, a replayed handshake, a forged frame.
base::Status send_raw(int fd, base::ByteSpan bytes, uint32_t timeout_ms = kDefaultTimeoutMs);
// True when the peer closes the connection (end of file or reset) within the
// time limit; whatever it sends before is read and discarded.
bool wait_closed(int fd, uint32_t timeout_ms = kDefaultTimeoutMs);

struct HandshakeResult {
  proto::SessionKeys keys;
  base::Bytes client_bytes;  // ClientHello then ClientFinish, exactly as sent (for a replay test)
  base::Bytes server_hello;  // as received
};
// The original's side of the handshake over a connected socket. With a wrong
// auth key (a wrong secret) this returns the authentication error.
base::Result<HandshakeResult> handshake(int fd, const proto::Key& auth_key, const proto::PairId& pair_id,
                                        uint32_t timeout_ms = kDefaultTimeoutMs);

// An authenticated session in which the test sends whatever it likes.
class RawSession {
 public:
  RawSession(base::UniqueFd fd, const proto::SessionKeys& keys);
  int fd() const { return fd_.get(); }

  // Seals `plain` as the next frame and returns its wire bytes, unsent (to
  // tamper with; send them with send_raw). Advances the nonce counter.
  base::Bytes seal(base::ByteSpan plain);
  base::Status send_frame(base::ByteSpan plain);
  base::Status send_raw(base::ByteSpan bytes);
  base::Status send_hello(const proto::Hello& hello);
  // Encodes with proto::encode_record; fields are not checked.
  base::Status send_record(const proto::RecordHeader& header, base::ByteSpan payload = {});

  // The next message's plaintext.
  base::Status receive(base::Bytes& plain, uint32_t timeout_ms = kDefaultTimeoutMs);
  // Receives until a message of `type`, answering pings and skipping others.
  base::Status receive_until(proto::MsgType type, base::Bytes& plain, uint32_t timeout_ms = kDefaultTimeoutMs);
  // Receives until the clone's error message and returns it decoded.
  base::Result<proto::ErrorMsg> expect_error(uint32_t timeout_ms = kDefaultTimeoutMs);

 private:
  base::UniqueFd fd_;
  proto::FrameSealer sealer_;
  proto::FrameReader reader_;
  base::Bytes pending_;  // received, not yet fed to the reader
};

using ::origin::original_hello;  // session.h

// Connects, authenticates, sends original_hello(config, log_start_seq,
// log_end_seq) and waits for the clone's hello (stored in *clone_hello when
// not null). A refusal comes back as an error carrying the clone's sentence.
base::Result<std::unique_ptr<RawSession>> open_raw_session(const SessionConfig& config, uint64_t log_start_seq,
                                                           uint64_t log_end_seq, proto::Hello* clone_hello = nullptr,
                                                           uint32_t timeout_ms = kDefaultTimeoutMs);

// A correct write header for `payload` (digest keyed with `digest_key`);
// tests then spoil one field.
proto::RecordHeader write_header(uint64_t seq, uint64_t epoch, uint64_t offset_bytes, base::ByteSpan payload,
                                 const digest::DigestKey& digest_key);
// The 4 length bytes of a frame announcing `wire_length` bytes (ciphertext +
// tag): send one over kMaxFramePlainBytes + kAeadTagBytes to test the limit.
base::Bytes frame_length_prefix(uint32_t wire_length);
// Flips every bit of bytes[index].
void flip_byte(base::Bytes& bytes, size_t index);

}  // namespace origin::testing
