// SPDX-License-Identifier: MIT
#include "origin/maintenance_link.h"

#include <cerrno>
#include <cstdio>

#include "base/units.h"
#include "origin/net.h"
#include "origin/progress.h"

namespace origin {

using base::u64s;

namespace {

// Messages for a replication or health session, not answered here.
bool for_other_sessions(proto::MsgType type) {
  switch (type) {
    case proto::MsgType::committed:
    case proto::MsgType::barrier_ack:
    case proto::MsgType::receipt_ack:
    case proto::MsgType::health_report:
    case proto::MsgType::wake_info:
      return true;
    default:
      return false;
  }
}

}  // namespace

base::Status MaintenanceLink::open(const SessionConfig& config, proto::Hello& clone_hello) {
  BASE_TRY(conn_.open(config));
  proto::Hello h = original_hello(config, 1, 0);
  h.flags |= proto::kHelloMaintenance;
  base::Bytes plain;
  proto::encode_hello(h, plain);
  queue(plain);
  bool got = false;
  const uint64_t deadline = net::now_ms() + config.connect_timeout_ms;
  const FrameHandler on_hello = [&](proto::MsgType t, base::ByteSpan m) {
    if (got) {  // what follows the hello is for whoever pumps next
      held_.emplace_back(t, base::Bytes(m.begin(), m.end()));
      return base::Status::ok();
    }
    if (t != proto::MsgType::hello)
      return violation("the clone's first message is not a hello (message " + u64s(static_cast<uint64_t>(t)) + ")");
    BASE_TRY(proto::decode_hello(m, clone_hello).with_context("the clone's hello is malformed"));
    if (clone_hello.role != proto::Role::clone || clone_hello.pair_id != config.pair_id)
      return fatal(EPROTO, "the peer is not this pair's clone");
    if (clone_hello.disk_size_bytes != config.disk_size_bytes ||
        clone_hello.logical_block_bytes != config.logical_block_bytes)
      return fatal(EINVAL, "the clone's disk has " + u64s(clone_hello.disk_size_bytes) + " bytes in " +
                               u64s(clone_hello.logical_block_bytes) + "-byte blocks but this original's has " +
                               u64s(config.disk_size_bytes) + " in " + u64s(config.logical_block_bytes));
    got = true;
    return base::Status::ok();
  };
  while (!got) {
    if (net::now_ms() > deadline) return base::Status::error(ETIMEDOUT, "the clone did not answer the hello");
    BASE_TRY(pump(on_hello));
  }
  return base::Status::ok();
}

base::Status MaintenanceLink::pump(const FrameHandler& handler) {
  const FrameHandler filtered = [&handler](proto::MsgType t, base::ByteSpan m) {
    return for_other_sessions(t) ? base::Status::ok() : handler(t, m);
  };
  if (!held_.empty()) {  // one per pump, as if each had come on its own
    const std::pair<proto::MsgType, base::Bytes> f = std::move(held_.front());
    held_.pop_front();
    return filtered(f.first, f.second);
  }
  return conn_.pump(kWaitStepMs, filtered);
}

base::Status MaintenanceLink::wait_for(proto::MsgType type, base::Bytes& out, const FrameHandler& other) {
  bool got = false;
  const FrameHandler handler = [&](proto::MsgType t, base::ByteSpan m) -> base::Status {
    if (t == type) {
      out.assign(m.begin(), m.end());
      got = true;
      return base::Status::ok();
    }
    if (other) return other(t, m);
    return violation("unexpected message " + u64s(static_cast<uint64_t>(t)) + " while waiting for " +
                     u64s(static_cast<uint64_t>(type)));
  };
  while (!got) BASE_TRY(pump(handler));
  return base::Status::ok();
}

base::Status MaintenanceLink::drain() {
  const FrameHandler ignore_all = [](proto::MsgType, base::ByteSpan) { return base::Status::ok(); };
  while (send_pending() > 0) BASE_TRY(pump(ignore_all));
  return base::Status::ok();
}

void send_progress(MaintenanceLink& link, proto::ProgressKind kind, uint64_t done, uint64_t total) {
  base::Bytes out;
  proto::encode_progress({kind, std::min(done, total), total}, out);
  link.queue(out);
}

std::string progress_line(const char* what, uint64_t done, uint64_t total, uint64_t start_done, uint64_t start_ns) {
  const uint64_t elapsed = base::monotonic_ns() - start_ns;
  const double rate = elapsed > 0 ? static_cast<double>(done - start_done) * 1e9 / static_cast<double>(elapsed) : 0;
  char line[200];
  std::snprintf(
      line, sizeof line, "%s: %.1f%% (%s of %s), %s, ETA %s", what,
      total ? 100.0 * static_cast<double>(done) / static_cast<double>(total) : 100.0, base::format_bytes(done).c_str(),
      base::format_bytes(total).c_str(), format_rate(done - start_done, elapsed).c_str(),
      rate > 0 ? (u64s(static_cast<uint64_t>(static_cast<double>(total - done) / rate)) + " s").c_str() : "unknown");
  return line;
}

}  // namespace origin
