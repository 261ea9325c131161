// SPDX-License-Identifier: MIT
// One session with the clone (docs/PROTOCOL.md, "Session"): connect,
// authenticate (handshake), exchange hellos, then stream the retained log's
// records from the clone's applied position on while handling what the clone
// sends (acks, committed positions, pings, errors, goodbye).
//
// A Session lives for one connection (connection.h carries the frames, pings
// and timers); the Replicator makes a new one per (re)connect and decides
// about backoff from the outcome. Health collection is a Session too.
//
// Threading: run() executes on the caller's thread (the replicator's
// connection thread) and blocks until the connection ends. The listener is
// called on that thread. The log may be appended to concurrently; the owner
// signals `wake_fd` (an eventfd, not owned) on stop requests, and after an
// append once the session said it is about to read the log
// (SessionListener::on_reading_log).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/status.h"
#include "proto/frame.h"
#include "proto/handshake.h"
#include "proto/messages.h"
#include "proto/wake_messages.h"
#include "config/config.h"
#include "origin/connection.h"
#include "origin/health_inbox.h"
#include "origin/log.h"

namespace origin {

struct SessionConfig {
  std::string host = "127.0.0.1";
  uint16_t port = config::kDefaultPort;
  proto::PairId pair_id{};
  proto::Key auth_key{};
  digest::DigestKey digest_key{};       // resync and verify compare digests keyed with it
  uint64_t disk_size_bytes = 0;
  uint32_t logical_block_bytes = 512;
  uint64_t generation = 1;
  bool want_receipt_acks = false;
  uint32_t connect_timeout_ms = 5000;    // connect and handshake
  uint32_t idle_timeout_ms = 20000;      // nothing received this long: drop
  uint32_t keepalive_interval_ms = 5000; // nothing sent this long: ping
  size_t send_buffer_bytes_max = 4u << 20;  // sealed frames queued, not yet sent
  // The last barrier the clone acknowledged in an earlier session (0: none).
  // Told in the hello: after a crash the clone resumes there if it is past
  // the clone's committed position (docs/PROTOCOL.md, rule 2).
  uint64_t acked_seq = 0;
  uint64_t acked_epoch = 0;
  // Health reports from the clone are kept in health_dir/health-reports.log
  // (health_inbox.h) and acknowledged; "" = not kept, not acknowledged.
  std::string health_dir;
  // Only collect health reports: the hello says so (kHelloHealthOnly), no
  // record is sent and the clone's position is not checked against the log.
  bool health_only = false;
  // Send sleep_request right after the hellos (clone-origin sleep).
  bool request_sleep = false;
};
SessionConfig make_session_config(const config::OriginConfig& config, const config::DerivedKeys& keys);
// The hello an original of this configuration sends, holding records
// log_start_seq..log_end_seq.
proto::Hello original_hello(const SessionConfig& config, uint64_t log_start_seq, uint64_t log_end_seq);

// What a session reports, on the session's thread.
class SessionListener {
 public:
  virtual ~SessionListener() = default;
  virtual void on_established(const proto::Hello& clone_hello) = 0;
  virtual void on_barrier_ack(uint64_t epoch, uint64_t seq) = 0;
  virtual void on_committed(uint64_t seq) = 0;
  virtual void on_receipt_ack(uint64_t seq) = 0;
  virtual void on_records_queued(uint64_t record_count) = 0;
  virtual void on_bytes_sent(uint64_t wire_bytes) = 0;
  // The session is about to read the log and then, if it found nothing new,
  // wait on wake_fd: an append from now on must signal wake_fd. Appends
  // before it the read sees. Called once per turn of the session's loop.
  virtual void on_reading_log() {}
  // Polled: true once the owner wants the session to end (with a goodbye).
  virtual bool stop_requested() const = 0;
  // A health report arrived; `fresh` is false for one kept before (a resend).
  virtual void on_health_report(uint64_t /*id*/, bool /*fresh*/) {}
  // The clone told how to wake it (origin/wake.h).
  virtual void on_wake_info(const proto::WakeInfo&) {}
};

enum class SessionEnd {
  stopped,  // the owner asked; the session said goodbye
  retry,    // connection lost, refused, timed out, clone busy or going away,
            // or a refusal before the handshake authenticated the clone
  fatal,    // the authenticated clone refused for good, or the two sides disagree
};

struct SessionOutcome {
  SessionEnd end = SessionEnd::retry;
  base::Status status;       // why it ended (ok when stopped)
  bool established = false;  // the hellos were exchanged
  bool progressed = false;   // the clone acknowledged or committed something new
  // What the clone's address refused with before authenticating (connection.h);
  // "" for any other end.
  std::string unauthenticated_answer;
};

class Session {
 public:
  Session(const SessionConfig& config, RetainedLog& log, SessionListener& listener, int wake_fd);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  SessionOutcome run();

 private:
  void queue_hello();
  base::Status pump();
  base::Status say_goodbye();
  base::Status fill_send_buffer();
  base::Status handle_frame(proto::MsgType type, base::ByteSpan plain);
  base::Status handle_control(proto::MsgType type, base::ByteSpan plain);
  base::Status on_clone_hello(base::ByteSpan plain);
  base::Status on_health_report(base::ByteSpan plain);
  base::Status on_clone_wake(proto::MsgType type, base::ByteSpan plain);
  base::Status refuse(proto::ErrorCode code, int err, const std::string& sentence) {
    return conn_.refuse(code, err, sentence);
  }
  base::Status violation(const std::string& what) { return conn_.violation(what); }

  const SessionConfig config_;
  RetainedLog& log_;
  SessionListener& listener_;
  const int wake_fd_;
  Connection conn_;
  bool established_ = false;
  bool progressed_ = false;
  uint64_t next_send_seq_ = 0;
  uint64_t expected_epoch_ = 0;  // epoch the record at next_send_seq_ must carry
  uint64_t acked_seq_ = 0;
  uint64_t committed_seq_ = 0;
  std::unique_ptr<HealthInbox> health_inbox_;  // opened at the first report
};

}  // namespace origin
