// SPDX-License-Identifier: MIT
// The health link (health_link.h). Runs on the loop thread.
#include "cloned/daemon/health_link.h"

#include <algorithm>

#include "base/log.h"
#include "cloned/daemon/conn.h"
#include "hwhealth/collect.h"

namespace cloned {

namespace {
constexpr size_t kHealthWindow = 16;        // reports sent and not yet acknowledged, per peer
constexpr size_t kHealthQueueMax = 2048;    // waiting to be sent, per peer (the store keeps them anyway)
}  // namespace

HealthLink::HealthLink(LinkPort& link, HealthHost& host, const apply::Machine& machine,
                       const blockio::Geometry& geometry)
    : link_(link), host_(host), machine_(machine), geometry_(geometry) {}

HealthLink::~HealthLink() = default;

void HealthLink::start(const config::CloneConfig& config, std::function<void()> wake) {
  base::Result<std::unique_ptr<store::Store>> st = store::Store::open(
      config.state_dir, store::OpenMode::read_write, config.pair_id, config.target_identity.describe());
  if (!st) {
    LOG_ERROR("hardware health monitoring is off: %s", st.status().message().c_str());
    link_.record_event("error", "health", "monitoring is off: " + st.status().message());
    return;
  }
  HealthSettings settings;
  settings.target_path = config.target_path;
  settings.interval_s = config.health_interval_s;
  settings.summary_interval_s = config.health_summary_interval_s;
  settings.backlog_max = config.health_backlog_max;
  told_ = {machine_.replica().state, machine_.replica().state_reason};
  monitor_ = std::make_unique<HealthMonitor>(
      settings, std::move(*st), hwhealth::make_system_health_source(config.target_path), std::move(wake), told_);
  LOG_INFO("hardware health: polling every %u s, a summary every %u s, at most %u reports waiting",
           config.health_interval_s, config.health_summary_interval_s, config.health_backlog_max);
}

void HealthLink::io_error(const Completion& c) {
  if (!monitor_) return;
  monitor_->io_error(IoErrorEvent{c.op, c.status.code(), c.offset_bytes, c.length_bytes, c.status.message()});
}

void HealthLink::disk_failed(const std::string& why) {
  if (monitor_) monitor_->disk_failed(why);
}

void HealthLink::note_state() {
  const apply::ReplicaState& r = machine_.replica();
  if (!monitor_ || (r.state == told_.state && r.state_reason == told_.reason)) return;
  told_ = {r.state, r.state_reason};
  monitor_->replication(told_);
}

void HealthLink::stop() { monitor_.reset(); }

void HealthLink::poll_now() {
  if (monitor_) monitor_->poll_now();
}

// A health-only session: the machine is not involved (it may refuse writes
// for good after a disk failure); the hello tells where the clone is.
bool HealthLink::accept_hello(Conn* c, const proto::Hello& hello) {
  if (hello.role == proto::Role::original && hello.pair_id == machine_.replica().pair_id) return true;
  const std::string why = "the health-only hello is not from this pair's original.";
  link_.send_error(c, proto::ErrorCode::pair_mismatch, why);
  link_.close_conn(c, why);
  return false;
}

void HealthLink::greet(Conn* c) {
  const apply::ReplicaState& r = machine_.replica();
  proto::Hello h;
  h.role = proto::Role::clone;
  h.pair_id = r.pair_id;
  h.flags = proto::kHelloHealthOnly;
  h.disk_size_bytes = geometry_.size_bytes;
  h.logical_block_bytes = geometry_.logical_block_bytes;
  h.generation = r.generation;
  h.applied_seq = machine_.durable().seq;
  h.applied_epoch = machine_.durable().epoch;
  h.committed_seq = machine_.committed().seq;
  h.state = r.state;
  c->health.only = true;
  base::Bytes out;
  proto::encode_hello(h, out);
  link_.send_plain(c, out);
  LOG_INFO("health-only session with %s", c->peer.c_str());
  peer_ready(c);
}

void HealthLink::on_frame(Conn* c, proto::MsgType type, proto::Frame& frame) {
  switch (type) {
    case proto::MsgType::health_ack: return on_ack(c, frame);
    case proto::MsgType::ping: {
      uint64_t token = 0, log_end = 0;
      if (!proto::decode_ping(frame.plain(), token, log_end).is_ok()) break;
      base::Bytes out;
      proto::encode_pong(token, out);
      return link_.send_plain(c, out);
    }
    case proto::MsgType::pong: return;
    case proto::MsgType::goodbye:
    case proto::MsgType::error: return link_.close_conn(c, "the health-only session ended");
    default: break;
  }
  const std::string msg = "a health-only session takes only health_ack, ping, pong and goodbye, not type " +
                          std::to_string(static_cast<int>(type)) + ".";
  link_.send_error(c, proto::ErrorCode::protocol, msg);
  link_.close_conn(c, msg);
}

void HealthLink::on_ack(Conn* c, proto::Frame& frame) {
  uint64_t id = 0;
  if (base::Status s = proto::decode_health_ack(frame.plain(), id); !s.is_ok()) {
    link_.send_error(c, proto::error_code_for(s), s.message());
    return link_.close_conn(c, s.message());
  }
  c->health.unacked.erase(id);
  if (monitor_) monitor_->acked(id);
  send(c);
}

void HealthLink::peer_ready(Conn* c) {
  if (c == nullptr || !monitor_) return;
  c->health.ready = true;
  monitor_->want_backlog();
}

// The monitor posted reports: every ready peer gets those it does not hold.
void HealthLink::pump() {
  if (!monitor_) return;
  const std::vector<HealthOutgoing> items = monitor_->take_outgoing();
  // Sending may close a connection, and closing the session may stop the
  // daemon (which forgets every connection): walk a copy, stop once stopped.
  for (Conn* c : host_.connections()) {
    if (host_.loop_ending()) return;
    HealthPeer& peer = c->health;
    if (!peer.ready || c->phase != Conn::Phase::session) continue;
    for (const HealthOutgoing& item : items) {
      if (peer.unacked.count(item.id) != 0) continue;
      const bool queued = std::any_of(peer.queue.begin(), peer.queue.end(),
                                      [&](const HealthOutgoing& q) { return q.id == item.id; });
      if (queued) continue;
      if (peer.queue.size() >= kHealthQueueMax) peer.queue.pop_front();
      peer.queue.push_back(item);
    }
    send(c);
  }
}

void HealthLink::send(Conn* c) {
  HealthPeer& peer = c->health;
  while (c->phase == Conn::Phase::session && peer.unacked.size() < kHealthWindow && !peer.queue.empty()) {
    HealthOutgoing item = std::move(peer.queue.front());
    peer.queue.pop_front();
    base::Bytes out;
    proto::encode_health_report(item.id, *item.report, out);
    peer.unacked.insert(item.id);
    link_.send_plain(c, out);
  }
}

}  // namespace cloned
