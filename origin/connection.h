// SPDX-License-Identifier: MIT
// One authenticated connection to the clone: the transport under every
// session the original runs (replication and health in Session, resync and
// verify in maintenance). It connects and runs the handshake, seals what the
// session queues into a bounded send buffer, opens the clone's frames and
// hands them to the session, answers pings, sends keepalive pings, enforces
// the idle timeout, and turns the clone's error and goodbye into a Status.
// What the messages mean is the session's business, not this class's.
//
// Threading: one thread owns a Connection (the session's). It owns the socket
// and closes it on destruction; `wake_fd` (see pump) is not owned.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/bytes.h"
#include "base/status.h"
#include "base/unique_fd.h"
#include "proto/frame.h"
#include "proto/handshake.h"
#include "proto/messages.h"

namespace origin {

struct SessionConfig;

// An authenticated connection to the clone, before any message.
struct ClientLink {
  base::UniqueFd fd;
  proto::SessionKeys keys{};
  // On failure: what the clone's address answered before the handshake proved
  // it holds the pairing secret ("unknown_pair", "version", a reply that is not
  // a ServerHello, a proof that does not verify); "" when nothing was heard (no
  // connection, a timeout, a cut) or the answer was busy.
  std::string unauthenticated_answer;
};
// Connects and runs the handshake within config.connect_timeout_ms.
base::Status connect_to_clone(const SessionConfig& config, ClientLink& out);

// A refusal heard before the handshake authenticated the clone is not the
// clone's word: whoever answers at its address can send one (104 bytes). It
// is final only when the same one comes this many times in a row, a streak
// that any other outcome breaks (docs/PROTOCOL.md, section 4.3). With the
// default backoff (100 ms doubling) that takes 1.5 s of waiting: a wrong
// pairing is still told within about 2 s, while a forger must win every
// one of five races against the real clone.
inline constexpr uint32_t kUnauthenticatedRefusalsMax = 5;

// Counts unauthenticated refusals in a row. One thread.
class RefusalStreak {
 public:
  // Records one session's outcome: its unauthenticated answer, "" for any
  // other. Returns true when the streak has become final.
  bool final_after(const std::string& unauthenticated_answer);
  uint32_t count() const { return count_; }

 private:
  std::string answer_;
  uint32_t count_ = 0;
};
// Frames from the clone are small; this bounds what the original accepts.
inline constexpr uint32_t kRecvFrameBytesMax = 64 * 1024;

// True for the clone's error codes after which a new session may succeed.
bool is_retryable(proto::ErrorCode code);

// Called for each whole, authenticated frame the connection does not handle
// itself (everything but ping, pong, error and goodbye).
using FrameHandler = std::function<base::Status(proto::MsgType, base::ByteSpan)>;

class Connection {
 public:
  Connection();
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Connects and authenticates. A failure is never fatal() here: nothing the
  // clone's address says before authenticating is final on its own;
  // unauthenticated_answer() tells what was heard, for a RefusalStreak.
  base::Status open(const SessionConfig& config);
  const std::string& unauthenticated_answer() const { return unauthenticated_answer_; }

  // Seals `plain` into the send buffer; nothing is sent before pump().
  void queue(base::ByteSpan plain);
  size_t send_pending() const { return send_buf_.size() - send_head_; }

  // One round: checks the idle timeout, queues a keepalive ping (telling
  // `ping_end_seq`) when nothing was sent for a while, waits at most
  // `wait_ms_max` (less when a timer is due) for the socket or `wake_fd`
  // (-1: none; drained when readable), then handles what arrived and sends
  // what it can. Frames other than ping, pong, error and goodbye go to
  // `handler`. An error ends the connection; fatal() says whether for good.
  base::Status pump(int wait_ms_max, const FrameHandler& handler, int wake_fd = -1, uint64_t ping_end_seq = 0);

  // Tells the clone why this side ends the session (an error message, as the
  // protocol asks), closes, and returns the sentence as a fatal error.
  base::Status refuse(proto::ErrorCode code, int err, const std::string& sentence);
  // The clone sent what the protocol does not allow: refuse(protocol).
  base::Status violation(const std::string& what);
  // An error after which a new session would not help.
  base::Status fatal(int code, const std::string& message);
  bool fatal() const { return fatal_; }
  // The clone refused with `busy` after authenticating: it is working (for
  // one, copying a staged generation to its disk) and the refusal is no failure.
  bool clone_busy() const { return clone_busy_; }

  // Sends a goodbye with `sentence`, then closes gracefully.
  void say_goodbye(const std::string& sentence);
  // Sends what is queued, half-closes and reads until the clone closes its
  // side (bounded), then closes the socket.
  void close_gracefully();

  uint64_t wire_bytes_queued() const { return wire_bytes_queued_; }
  uint64_t wire_bytes_sent() const { return wire_bytes_sent_; }
  uint64_t wire_bytes_received() const { return wire_bytes_received_; }

 private:
  int poll_timeout_ms(uint64_t now, int wait_ms_max) const;
  base::Status flush_some();
  base::Status receive(const FrameHandler& handler);
  base::Status handle(base::ByteSpan plain, const FrameHandler& handler);
  base::Status on_error_or_goodbye(proto::MsgType type, base::ByteSpan plain);

  base::UniqueFd fd_;
  std::unique_ptr<proto::FrameSealer> sealer_;
  std::unique_ptr<proto::FrameReader> reader_;
  base::Bytes send_buf_;  // sealed frames; bytes before send_head_ are sent
  size_t send_head_ = 0;
  std::unique_ptr<uint8_t[]> recv_buf_;
  uint64_t idle_timeout_ms_ = 20000;
  uint64_t keepalive_interval_ms_ = 5000;
  uint64_t last_send_ms_ = 0;
  uint64_t last_recv_ms_ = 0;
  uint64_t ping_token_ = 0;
  uint64_t wire_bytes_queued_ = 0;
  uint64_t wire_bytes_sent_ = 0;
  uint64_t wire_bytes_received_ = 0;
  std::string unauthenticated_answer_;
  bool fatal_ = false;
  bool clone_busy_ = false;
};

}  // namespace origin
