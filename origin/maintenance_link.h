// SPDX-License-Identifier: MIT
// Internal to resync and verify (maintenance*.cpp, scanner.cpp): a
// maintenance session over a Connection. It says the maintenance hello,
// checks the clone's, and passes on only the messages a maintenance session
// is about; what a replication or health session would take (acks, committed
// positions, health reports, wake info) is left for those: the clone keeps
// its health reports until one of them acknowledges them.
//
// Threading: one thread, the caller's.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <utility>

#include "base/bytes.h"
#include "base/status.h"
#include "origin/connection.h"
#include "origin/session.h"
#include "proto/resync.h"

namespace origin {

class MaintenanceLink {
 public:
  // The longest a pump waits, so that callers get control back to send.
  static constexpr int kWaitStepMs = 200;

  // Connects, authenticates, exchanges hellos (within connect_timeout_ms).
  base::Status open(const SessionConfig& config, proto::Hello& clone_hello);

  void queue(base::ByteSpan plain) { conn_.queue(plain); }
  size_t send_pending() const { return conn_.send_pending(); }
  // Sends what it can and handles what arrives, waiting at most kWaitStepMs.
  base::Status pump(const FrameHandler& handler);
  // Waits for one message of `type` (others go to `other`; without it they
  // are a violation), up to the idle timeout.
  base::Status wait_for(proto::MsgType type, base::Bytes& out, const FrameHandler& other = nullptr);
  // Sends everything queued (bounded by the idle timeout).
  base::Status drain();
  // Says goodbye and closes.
  void close() { conn_.say_goodbye("the original has finished."); }

  base::Status violation(const std::string& what) { return conn_.violation(what); }
  base::Status fatal(int code, const std::string& message) { return conn_.fatal(code, message); }
  bool fatal() const { return conn_.fatal(); }
  bool clone_busy() const { return conn_.clone_busy(); }
  // What the clone's address refused the handshake with, "" if nothing (connection.h).
  const std::string& unauthenticated_answer() const { return conn_.unauthenticated_answer(); }
  uint64_t wire_bytes() const { return conn_.wire_bytes_queued(); }
  uint64_t received_bytes() const { return conn_.wire_bytes_received(); }

 private:
  Connection conn_;
  // Frames that came in the same read as the clone's hello, after it: the
  // next pump hands them on.
  std::deque<std::pair<proto::MsgType, base::Bytes>> held_;
};

// Tells the clone how far a resync or verify is (shown by clonectl status).
void send_progress(MaintenanceLink& link, proto::ProgressKind kind, uint64_t done, uint64_t total);
// "resync: 42.0% (… of …), … /s, ETA … s" for stderr.
std::string progress_line(const char* what, uint64_t done, uint64_t total, uint64_t start_done, uint64_t start_ns);

}  // namespace origin
