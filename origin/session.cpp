// SPDX-License-Identifier: MIT
// Session: connecting, the handshake, the hellos and the clone's messages.
// The I/O loop is in session_pump.cpp.
#include "origin/session.h"

#include <cerrno>

#include "base/log.h"
#include "hwhealth/report.h"

namespace origin {

namespace {

std::string u64s(uint64_t v) { return std::to_string(v); }

}  // namespace

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

bool is_retryable(proto::ErrorCode code) {
  switch (code) {
    case proto::ErrorCode::busy:
    case proto::ErrorCode::shutting_down:
    case proto::ErrorCode::timeout:
    case proto::ErrorCode::disk_io:   // the clone may be restarted with its disk checked
    case proto::ErrorCode::internal:
    // Damage in transit: the frame's authentication (or, for a length over
    // the limit, the check before it) caught it; a new session resends.
    case proto::ErrorCode::corrupted:
    case proto::ErrorCode::too_large:
      return true;
    default:
      return false;
  }
}

Session::Session(const SessionConfig& config, RetainedLog& log, SessionListener& listener, int wake_fd)
    : config_(config), log_(log), listener_(listener), wake_fd_(wake_fd) {}

Session::~Session() = default;

SessionOutcome Session::run() {
  SessionOutcome out;
  base::Status s = connect_and_handshake();
  if (s.is_ok()) {
    queue_hello();
    s = pump();
  }
  out.established = established_;
  out.progressed = progressed_;
  out.status = s;
  out.end = s.is_ok() ? SessionEnd::stopped : fatal_ ? SessionEnd::fatal : SessionEnd::retry;
  return out;
}

base::Status Session::fatal(int code, const std::string& message) {
  fatal_ = true;
  return base::Status::error(code, message);
}

base::Status connect_to_clone(const SessionConfig& config, ClientLink& out) {
  const uint64_t deadline = net::now_ms() + config.connect_timeout_ms;
  base::Result<net::UniqueFd> fd = net::connect_tcp(config.host, config.port, config.connect_timeout_ms);
  if (!fd) return fd.status();
  out.fd = std::move(*fd);
  out.refused_for_good = false;
  proto::ClientHandshake hs(config.auth_key, config.pair_id);
  const base::Bytes hello = hs.client_hello();
  BASE_TRY(net::write_all(out.fd.get(), hello, deadline).with_context("handshake with the clone failed"));
  uint8_t server_hello[proto::kServerHelloBytes];
  BASE_TRY(net::read_exact(out.fd.get(), server_hello, deadline).with_context("handshake with the clone failed"));
  base::Result<base::Bytes> finish = hs.on_server_hello(server_hello);
  if (!finish) {
    // A busy clone (another original connected, or handshakes queued) is
    // worth another try; anything else (wrong secret, another pair, another
    // version) will not get better by retrying.
    const base::Status& s = finish.status();
    if (s.code() == EBUSY || s.code() == EAGAIN) return s;  // its sentence says "busy"
    out.refused_for_good = true;
    return base::Status::error(s.code(), "the handshake with the clone at " + config.host + ":" +
                                             std::to_string(config.port) + " failed: " + s.message());
  }
  BASE_TRY(net::write_all(out.fd.get(), *finish, deadline).with_context("handshake with the clone failed"));
  out.keys = hs.keys();
  return base::Status::ok();
}

base::Status Session::connect_and_handshake() {
  ClientLink link;
  base::Status s = connect_to_clone(config_, link);
  if (!s.is_ok()) {
    fatal_ = link.refused_for_good;
    return s;
  }
  fd_ = std::move(link.fd);
  sealer_ = std::make_unique<proto::FrameSealer>(link.keys.send);
  reader_ = std::make_unique<proto::FrameReader>(link.keys.recv, kRecvFrameBytesMax);
  recv_buf_ = std::make_unique<uint8_t[]>(256 * 1024);
  last_recv_ms_ = last_send_ms_ = net::now_ms();
  return base::Status::ok();
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
  queue_plain(plain);
}

// Tells the clone why this side ends the session (an error message, as the
// protocol asks), then ends it for good.
base::Status Session::refuse(proto::ErrorCode code, int err, const std::string& sentence) {
  base::Bytes plain;
  proto::encode_error({code, sentence}, plain);
  queue_plain(plain);
  close_gracefully();
  return fatal(err, sentence);
}

base::Status Session::violation(const std::string& what) {
  return refuse(proto::ErrorCode::protocol, EPROTO, "the clone broke the protocol: " + what);
}

base::Status Session::handle_frame(base::ByteSpan plain) {
  base::Result<proto::MsgType> type = proto::peek_type(plain);
  if (!type) return violation(type.status().message());
  switch (*type) {
    case proto::MsgType::hello:
      if (established_) return violation("a second hello arrived in one session.");
      return on_clone_hello(plain);
    case proto::MsgType::error:
    case proto::MsgType::goodbye:
      return on_clone_error(*type, plain);
    default:
      return handle_control(*type, plain);
  }
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
    case proto::MsgType::ping: {
      if (!proto::decode_ping(plain, a, b).is_ok()) return violation("a malformed ping arrived.");
      base::Bytes pong;
      proto::encode_pong(a, pong);
      queue_plain(pong);
      return base::Status::ok();
    }
    case proto::MsgType::pong:
      if (!proto::decode_pong(plain, a).is_ok()) return violation("a malformed pong arrived.");
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
    queue_plain(request);
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

base::Status Session::on_clone_error(proto::MsgType type, base::ByteSpan plain) {
  proto::ErrorMsg m;
  const bool is_error = type == proto::MsgType::error;
  base::Status s = is_error ? proto::decode_error(plain, m) : proto::decode_goodbye(plain, m);
  if (!s.is_ok()) return violation(std::string("the clone's ") + (is_error ? "error" : "goodbye") + " is malformed.");
  if (!is_error) return base::Status::error(ECONNRESET, "the clone said goodbye: " + m.message);
  const std::string text = "the clone refused: " + m.message + " (" + proto::error_code_name(m.code) + ")";
  if (is_retryable(m.code)) return base::Status::error(EAGAIN, text);
  return fatal(EPROTO, text);
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
  queue_plain(ack);
  listener_.on_health_report(id, *kept);
  return base::Status::ok();
}

}  // namespace origin
