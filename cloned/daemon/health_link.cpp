// SPDX-License-Identifier: MIT
// Health reports over the link (docs/PROTOCOL.md, "Health reports"): the
// monitor's start, the I/O error hook, health-only sessions, and sending the
// backlog to a peer with a bounded window of unacknowledged reports.
// Runs on the loop thread.
#include <algorithm>

#include "base/log.h"
#include "cloned/daemon/conn.h"
#include "cloned/daemon/daemon.h"
#include "hwhealth/collect.h"

namespace cloned {

namespace {
constexpr size_t kHealthWindow = 16;        // reports sent and not yet acknowledged, per peer
constexpr size_t kHealthQueueMax = 2048;    // waiting to be sent, per peer (the store keeps them anyway)
}  // namespace

void Daemon::start_health() {
  base::Result<std::unique_ptr<store::Store>> st = store::Store::open(
      config_.state_dir, store::OpenMode::read_write, config_.pair_id, config_.target_identity.describe());
  if (!st) {
    LOG_ERROR("hardware health monitoring is off: %s", st.status().message().c_str());
    record_event("error", "health", "monitoring is off: " + st.status().message());
    return;
  }
  HealthSettings settings;
  settings.target_path = config_.target_path;
  settings.interval_s = config_.health_interval_s;
  settings.summary_interval_s = config_.health_summary_interval_s;
  settings.backlog_max = config_.health_backlog_max;
  health_ = std::make_unique<HealthMonitor>(settings, std::move(*st),
                                            hwhealth::make_system_health_source(config_.target_path),
                                            [this] { completions_.push(Completion{Completion::Kind::health}); });
  LOG_INFO("hardware health: polling every %u s, a summary every %u s, at most %u reports waiting",
           config_.health_interval_s, config_.health_summary_interval_s, config_.health_backlog_max);
}

void Daemon::health_io_error(const Completion& c) {
  if (!health_) return;
  health_->io_error(IoErrorEvent{c.op, c.status.code(), c.offset_bytes, c.length_bytes, c.status.message()});
}

// A health-only session: the machine is not involved (it may refuse writes
// for good after a disk failure); the hello tells where the clone is.
void Daemon::on_health_hello(Conn* c, const proto::Hello& hello) {
  if (hello.role != proto::Role::original || hello.pair_id != machine_.replica().pair_id) {
    const std::string why = "the health-only hello is not from this pair's original.";
    send_error(c, proto::ErrorCode::pair_mismatch, why);
    return close_conn(c, why);
  }
  proto::Hello h;
  h.role = proto::Role::clone;
  h.pair_id = machine_.replica().pair_id;
  h.flags = proto::kHelloHealthOnly;
  h.disk_size_bytes = device_->geometry().size_bytes;
  h.logical_block_bytes = device_->geometry().logical_block_bytes;
  h.generation = machine_.replica().generation;
  h.applied_seq = machine_.durable().seq;
  h.applied_epoch = machine_.durable().epoch;
  h.committed_seq = machine_.committed().seq;
  h.state = machine_.replica().state;
  c->phase = Conn::Phase::session;
  c->health_only = true;
  c->deadline_ms = 0;
  c->last_recv_ms = now_ms();
  base::Bytes out;
  proto::encode_hello(h, out);
  send_plain(c, out);
  LOG_INFO("health-only session with %s", c->peer.c_str());
  health_peer_ready(c);
}

void Daemon::on_health_frame(Conn* c, proto::MsgType type, proto::Frame& frame) {
  switch (type) {
    case proto::MsgType::health_ack: return on_health_ack(c, frame);
    case proto::MsgType::ping: {
      uint64_t token = 0, log_end = 0;
      if (!proto::decode_ping(frame.plain(), token, log_end).is_ok()) break;
      base::Bytes out;
      proto::encode_pong(token, out);
      return send_plain(c, out);
    }
    case proto::MsgType::pong: return;
    case proto::MsgType::goodbye:
    case proto::MsgType::error: return close_conn(c, "the health-only session ended");
    default: break;
  }
  const std::string msg = "a health-only session takes only health_ack, ping, pong and goodbye, not type " +
                          std::to_string(static_cast<int>(type)) + ".";
  send_error(c, proto::ErrorCode::protocol, msg);
  close_conn(c, msg);
}

void Daemon::on_health_ack(Conn* c, proto::Frame& frame) {
  uint64_t id = 0;
  if (base::Status s = proto::decode_health_ack(frame.plain(), id); !s.is_ok()) {
    send_error(c, proto::ErrorCode::protocol, s.message());
    return close_conn(c, s.message());
  }
  c->health_unacked.erase(id);
  if (health_) health_->acked(id);
  send_health(c);
}

void Daemon::health_peer_ready(Conn* c) {
  if (c == nullptr || !health_) return;
  c->health_ready = true;
  health_->want_backlog();
}

// The monitor posted reports: every ready peer gets those it does not hold.
void Daemon::pump_health() {
  if (!health_) return;
  const std::vector<HealthOutgoing> items = health_->take_outgoing();
  // Sending may close a connection, and closing the session may stop the
  // daemon (stop_loop clears conns_): walk a copy, stop once stopped.
  const std::vector<Conn*> conns = conns_;
  for (Conn* c : conns) {
    if (stopped_cleanly_ || fatal_) return;
    if (!c->health_ready || c->phase != Conn::Phase::session) continue;
    for (const HealthOutgoing& item : items) {
      if (c->health_unacked.count(item.id) != 0) continue;
      const bool queued = std::any_of(c->health_queue.begin(), c->health_queue.end(),
                                      [&](const HealthOutgoing& q) { return q.id == item.id; });
      if (queued) continue;
      if (c->health_queue.size() >= kHealthQueueMax) c->health_queue.pop_front();
      c->health_queue.push_back(item);
    }
    send_health(c);
  }
}

void Daemon::send_health(Conn* c) {
  while (c->phase == Conn::Phase::session && c->health_unacked.size() < kHealthWindow && !c->health_queue.empty()) {
    HealthOutgoing item = std::move(c->health_queue.front());
    c->health_queue.pop_front();
    base::Bytes out;
    proto::encode_health_report(item.id, *item.report, out);
    c->health_unacked.insert(item.id);
    send_plain(c, out);
  }
}

}  // namespace cloned
