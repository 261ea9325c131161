// SPDX-License-Identifier: MIT
// Session: connecting, the handshake, the hellos and the clone's messages.
// The I/O loop is in session_pump.cpp.
#include "origin/session.h"

#include <cerrno>

#include "base/log.h"
#include "base/units.h"
#include "hwhealth/report.h"

namespace origin {

using base::u64s;

SessionConfig make_session_config(const config::OriginConfig& c, const config::DerivedKeys& keys) {
  SessionConfig s;
  s.host = c.clone_host;
  s.port = c.clone_port;
  s.pair_id = c.pair_id;
  s.auth_key = keys.auth_key;
  s.digest_key = keys.digest_key;
  s.disk_size_bytes = c.disk_size_bytes;
  s.logical_block_bytes = c.logical_block_bytes;
  s.want_receipt_acks = c.want_receipt_acks;
  s.connect_timeout_ms = c.connect_timeout_ms;
  s.idle_timeout_ms = c.idle_timeout_ms;
  s.keepalive_interval_ms = c.keepalive_interval_ms;
  s.health_dir = c.state_dir;
  return s;
}

Session::Session(const SessionConfig& config, RetainedLog& log, SessionListener& listener, int wake_fd)
    : config_(config), log_(log), listener_(listener), wake_fd_(wake_fd) {}

Session::~Session() = default;

SessionOutcome Session::run() {
  SessionOutcome out;
  base::Status s = conn_.open(config_);
  if (s.is_ok()) {
    queue_hello();
    s = pump();
  }
  out.established = established_;
  out.progressed = progressed_;
  out.status = s;
  out.unauthenticated_answer = conn_.unauthenticated_answer();
  out.end = s.is_ok() ? SessionEnd::stopped : conn_.fatal() ? SessionEnd::fatal : SessionEnd::retry;
  return out;
}

proto::Hello original_hello(const SessionConfig& config, uint64_t log_start_seq, uint64_t log_end_seq) {
  proto::Hello h;
  h.role = proto::Role::original;
  h.pair_id = config.pair_id;
  h.flags = config.want_receipt_acks ? proto::kHelloWantReceiptAcks : 0;
  if (config.health_only) h.flags |= proto::kHelloHealthOnly;
  h.disk_size_bytes = config.disk_size_bytes;
  h.logical_block_bytes = config.logical_block_bytes;
  h.generation = config.generation;
  h.log_start_seq = log_start_seq;
  h.log_end_seq = log_end_seq;
  h.applied_seq = config.acked_seq;
  h.applied_epoch = config.acked_epoch;
  return h;
}

void Session::queue_hello() {
  base::Bytes plain;
  proto::encode_hello(original_hello(config_, log_.start_seq(), log_.advertised_end_seq()), plain);
  conn_.queue(plain);
}

// Everything but ping, pong, error and goodbye (the connection's).
base::Status Session::handle_frame(proto::MsgType type, base::ByteSpan plain) {
  if (type != proto::MsgType::hello) return handle_control(type, plain);
  if (established_) return violation("a second hello arrived in one session.");
  return on_clone_hello(plain);
}

base::Status Session::handle_control(proto::MsgType type, base::ByteSpan plain) {
  uint64_t a = 0, b = 0;
  switch (type) {
    case proto::MsgType::barrier_ack:
      if (!proto::decode_barrier_ack(plain, a, b).is_ok()) return violation("a malformed barrier_ack arrived.");
      if (b > acked_seq_) {
        progressed_ = true;
        acked_seq_ = b;
      }
      listener_.on_barrier_ack(a, b);
      return base::Status::ok();
    case proto::MsgType::committed:
      if (!proto::decode_committed(plain, a).is_ok()) return violation("a malformed committed message arrived.");
      if (a > committed_seq_) {
        progressed_ = true;
        committed_seq_ = a;
      }
      log_.trim_upto(a);  // only now may the original forget these records
      listener_.on_committed(a);
      return base::Status::ok();
    case proto::MsgType::receipt_ack:
      if (!proto::decode_receipt_ack(plain, a).is_ok()) return violation("a malformed receipt_ack arrived.");
      listener_.on_receipt_ack(a);
      return base::Status::ok();
    case proto::MsgType::health_report:
      return on_health_report(plain);
    case proto::MsgType::wake_info:
    case proto::MsgType::going_to_sleep:
      return on_clone_wake(type, plain);
    default:
      return violation("the clone sent a message of type " + u64s(static_cast<uint64_t>(type)) +
                       ", which only an original sends.");
  }
}

base::Status Session::on_clone_hello(base::ByteSpan plain) {
  proto::Hello h;
  if (base::Status s = proto::decode_hello(plain, h); !s.is_ok()) return violation("the clone's hello is malformed: " + s.message());
  if (h.role != proto::Role::clone) return violation("the peer's hello is not a clone's.");
  if (h.pair_id != config_.pair_id)
    return refuse(proto::ErrorCode::pair_mismatch, EINVAL,
                  "the clone belongs to another pair (pair id " + base::to_hex(h.pair_id) + "); check the [clone] address.");
  if (config_.health_only) {
    established_ = true;
    LOG_INFO("health-only session with the clone at %s:%u (it is %s at record %llu)", config_.host.c_str(),
             static_cast<unsigned>(config_.port), proto::clone_state_name(h.state),
             static_cast<unsigned long long>(h.applied_seq));
    listener_.on_established(h);
    return base::Status::ok();
  }
  if (h.disk_size_bytes != config_.disk_size_bytes || h.logical_block_bytes != config_.logical_block_bytes)
    return refuse(proto::ErrorCode::disk_mismatch, EINVAL, "the clone's disk has " + u64s(h.disk_size_bytes) + " bytes in " + u64s(h.logical_block_bytes) +
                             "-byte blocks but this original's has " + u64s(config_.disk_size_bytes) + " in " +
                             u64s(config_.logical_block_bytes) + "-byte blocks.");
  if (h.generation != config_.generation)
    return refuse(proto::ErrorCode::generation_mismatch, EINVAL,
                  "the clone holds generation " + u64s(h.generation) + " but this original's log is of generation " +
                      u64s(config_.generation) + "; a resync is needed: clone-origin resync --source IMAGE.");
  const uint64_t start = log_.start_seq(), end = log_.advertised_end_seq();
  if (h.applied_seq + 1 < start)
    return refuse(proto::ErrorCode::resync_needed, ERANGE,
                  "resync needed: the clone needs record " + u64s(h.applied_seq + 1) + " next but this original holds records " +
                      u64s(start) + " onwards only: clone-origin resync --source IMAGE.");
  if (h.applied_seq > end)
    return refuse(proto::ErrorCode::resync_needed, ERANGE,
                  "resync needed: the clone has applied record " + u64s(h.applied_seq) + " but this original's log ends at record " +
                      u64s(end) + "; the two disagree: clone-origin resync --source IMAGE.");
  // The original forgets its records up to what the clone's store holds: a
  // clone that says it holds more than it has applied is not believed.
  if (h.committed_seq > h.applied_seq)
    return violation("the clone says its store holds record " + u64s(h.committed_seq) + " but it has applied only " +
                     u64s(h.applied_seq) + ".");
  log_.trim_upto(h.committed_seq);
  committed_seq_ = h.committed_seq;
  acked_seq_ = h.applied_seq;
  next_send_seq_ = h.applied_seq + 1;
  expected_epoch_ = h.applied_epoch + 1;
  established_ = true;
  LOG_INFO("session with the clone at %s:%u: it has applied record %llu (epoch %llu), committed %llu, state %s; "
           "resuming at record %llu", config_.host.c_str(), static_cast<unsigned>(config_.port),
           static_cast<unsigned long long>(h.applied_seq), static_cast<unsigned long long>(h.applied_epoch),
           static_cast<unsigned long long>(h.committed_seq), proto::clone_state_name(h.state),
           static_cast<unsigned long long>(next_send_seq_));
  listener_.on_established(h);
  if (config_.request_sleep) {
    base::Bytes request;
    proto::encode_sleep_request(request);
    conn_.queue(request);
  }
  return base::Status::ok();
}

// The clone's wake info is remembered; a going_to_sleep ends the session as
// retryable, so that the replicator wakes the clone when it next connects.
base::Status Session::on_clone_wake(proto::MsgType type, base::ByteSpan plain) {
  if (type == proto::MsgType::wake_info) {
    proto::WakeInfo info;
    if (base::Status s = proto::decode_wake_info(plain, info); !s.is_ok()) return violation(s.message());
    listener_.on_wake_info(info);
    return base::Status::ok();
  }
  proto::GoingToSleep g;
  if (base::Status s = proto::decode_going_to_sleep(plain, g); !s.is_ok()) return violation(s.message());
  LOG_NOTICE("the clone goes to sleep at record %llu: %s", static_cast<unsigned long long>(g.applied_seq), g.reason.c_str());
  return base::Status::error(ECONNRESET, "the clone goes to sleep (" + g.reason + ")");
}

// Keeps the report (deduplicated by id), then acknowledges it: the clone
// drops a report only after this ack, so a report is never lost, and the
// id makes a resend harmless. A report that cannot be kept is not acked.
base::Status Session::on_health_report(base::ByteSpan plain) {
  uint64_t id = 0;
  base::ByteSpan report;
  if (base::Status s = proto::decode_health_report(plain, id, report); !s.is_ok())
    return violation("a malformed health_report arrived: " + s.message());
  // An unreadable report (a newer clone's version, or damage) is neither
  // kept nor acked: it stays in the clone's backlog, and replication goes on.
  if (base::Result<hwhealth::Report> decoded = hwhealth::decode_report(report); !decoded) {
    LOG_WARN("health report %llu from the clone is unreadable and was not acknowledged: %s",
             static_cast<unsigned long long>(id), decoded.status().message().c_str());
    return base::Status::ok();
  }
  if (config_.health_dir.empty()) return base::Status::ok();
  if (!health_inbox_) {
    base::Result<std::unique_ptr<HealthInbox>> inbox = HealthInbox::open(config_.health_dir);
    if (!inbox) {
      LOG_WARN("cannot keep the clone's health reports: %s", inbox.status().message().c_str());
      return base::Status::ok();
    }
    health_inbox_ = std::move(*inbox);
  }
  base::Result<bool> kept = health_inbox_->receive(id, report);
  if (!kept) {
    LOG_WARN("cannot keep the clone's health report %llu: %s", static_cast<unsigned long long>(id),
             kept.status().message().c_str());
    return base::Status::ok();
  }
  if (*kept) LOG_NOTICE("health report %llu from the clone kept in %s", static_cast<unsigned long long>(id),
                        health_inbox_->path().c_str());
  base::Bytes ack;
  proto::encode_health_ack(id, ack);
  conn_.queue(ack);
  listener_.on_health_report(id, *kept);
  return base::Status::ok();
}

}  // namespace origin
