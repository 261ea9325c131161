// SPDX-License-Identifier: MIT
// The link to the original, its first half: listening, accepting, the
// handshake under a fixed budget, reading frames with backpressure, and the
// deadlines. The session's messages, sending and closing: link_session.cpp.
#include <arpa/inet.h>

#include <algorithm>
#include <cassert>
#include <cstring>
#include <optional>

#include "base/log.h"
#include "base/units.h"
#include "cloned/daemon/conn.h"
#include "cloned/daemon/daemon.h"
#include "cloned/daemon/handshake_slots.h"
#include "proto/handshake.h"

namespace cloned {

namespace {

constexpr size_t kReadBufferBytes = 256 * 1024;
// A frame body missing at least this much is read into the frame directly
// (FrameReader::body_space); smaller rests, and the next frames' starts, go
// through the read buffer, several frames a read.
constexpr size_t kDirectReadMinBytes = 64 * 1024;
// Records of a read handed to the disk workers together, at most, when an
// urgent completion waits (Daemon::feed_frames).
constexpr size_t kFramesPerBatch = 16;
// A genuine original sends its ClientHello as soon as it has connected; a
// peer that has not within this time (or the handshake timeout, if shorter)
// gives its slot back (issue 14, finding 1).
constexpr uint64_t kClientHelloTimeoutMs = 1000;
// The kernel's queue of connections not yet accepted: a flood of strangers
// must not make an original's connect wait for a SYN retransmission.
constexpr int kListenBacklog = 128;

// "address:port"; `host_out` gets the address alone.
std::string peer_name(uv_tcp_t* tcp, std::string& host_out) {
  sockaddr_storage addr{};
  int len = sizeof addr;
  if (uv_tcp_getpeername(tcp, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    host_out = "unknown";
    return "unknown peer";
  }
  char host[INET6_ADDRSTRLEN] = {};
  uint16_t port = 0;
  if (addr.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&addr);
    uv_ip4_name(a, host, sizeof host);
    port = ntohs(a->sin_port);
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
    uv_ip6_name(a, host, sizeof host);
    port = ntohs(a->sin6_port);
  }
  host_out = host;
  return std::string(host) + ":" + std::to_string(port);
}

void on_alloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  Conn* c = static_cast<Conn*>(handle->data);
  if (c->handshaking()) {
    *buf = uv_buf_init(reinterpret_cast<char*>(c->hs_buf + c->hs_have),
                       static_cast<unsigned>(c->hs_need() - c->hs_have));
  } else if (base::MutableByteSpan body = c->reader->body_space(kDirectReadMinBytes); !body.empty()) {
    // The rest of a large frame goes straight into it, not through read_buf.
    *buf = uv_buf_init(reinterpret_cast<char*>(body.data()), static_cast<unsigned>(body.size()));
  } else {
    *buf = uv_buf_init(reinterpret_cast<char*>(c->read_buf.get()), kReadBufferBytes);
  }
}

void on_closed(uv_handle_t* handle) { delete static_cast<Conn*>(handle->data); }

}  // namespace


base::Status Daemon::listen() {
  sockaddr_storage addr{};
  int rc = uv_ip6_addr(config_.listen_host.c_str(), config_.listen_port, reinterpret_cast<sockaddr_in6*>(&addr));
  if (rc != 0) rc = uv_ip4_addr(config_.listen_host.c_str(), config_.listen_port, reinterpret_cast<sockaddr_in*>(&addr));
  const std::string where = config_.listen_host + ":" + std::to_string(config_.listen_port);
  if (rc != 0) return base::Status::error(EINVAL, "cannot listen on " + where + ": not an IP address.");
  uv_tcp_init(&loop_, &listener_);
  listener_.data = this;
  rc = uv_tcp_bind(&listener_, reinterpret_cast<sockaddr*>(&addr), 0);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), kListenBacklog, &Daemon::on_connection);
  if (rc != 0)
    return base::Status::error(-rc, "cannot listen on " + where + ": " + uv_strerror(rc) +
                                        " (is another cloned running? change [listen] address)");
  return base::Status::ok();
}

void Daemon::on_connection(uv_stream_t* server, int status) {
  Daemon* d = static_cast<Daemon*>(server->data);
  if (status < 0) {
    LOG_WARN("accepting a connection failed: %s", uv_strerror(status));
    return;
  }
  d->accept_one();
}

void Daemon::accept_one() {
  auto* c = new Conn;
  c->daemon = this;
  c->id = next_conn_id_++;
  uv_tcp_init(&loop_, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(reinterpret_cast<uv_stream_t*>(&listener_), reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), on_closed);
    return;
  }
  c->peer = peer_name(&c->tcp, c->host);
  conns_.push_back(c);
  if (stopping_) return refuse_busy(c, "the daemon is stopping");
  make_room_for_handshake(c);
  uv_tcp_nodelay(&c->tcp, 1);
  c->handshake = std::make_unique<proto::ServerHandshake>(keys_.auth_key, config_.pair_id);
  c->deadline_ms = now_ms() + std::min<uint64_t>(kClientHelloTimeoutMs, config_.handshake_timeout_ms);
  c->reading = true;
  uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), on_alloc, on_read);
  LOG_DEBUG("connection %llu from %s", static_cast<unsigned long long>(c->id), c->peer.c_str());
}

size_t Daemon::pending_handshakes() const {
  size_t n = 0;
  for (const Conn* c : conns_) n += c->handshaking() ? 1 : 0;
  return n;
}

// Never turn a newcomer away for lack of a slot: the peer that holds one
// without finishing goes instead (handshake_slots.h).
void Daemon::make_room_for_handshake(const Conn* newcomer) {
  std::vector<PendingHandshake> pending;
  for (const Conn* c : conns_)
    if (c != newcomer && c->handshaking()) pending.push_back({c->id, c->host, c->phase != Conn::Phase::client_hello});
  const uint64_t victim = handshake_to_evict(pending, newcomer->host, config_.max_pending_handshakes);
  for (Conn* c : conns_)
    if (victim != 0 && c->id == victim)
      return refuse_busy(c, "its handshake slot went to a newer connection from " + newcomer->peer);
}

// A ServerHello refusal with status busy (docs/PROTOCOL.md 4.3): the peer,
// if it is the original, retries after its backoff.
void Daemon::refuse_busy(Conn* c, const std::string& why) {
  send_handshake_bytes(c, proto::ServerHandshake::refusal(proto::HelloStatus::busy));
  close_conn(c, why);
}

void Daemon::send_handshake_bytes(Conn* c, base::Bytes bytes) {
  auto* w = new WriteReq;
  w->data = std::move(bytes);
  uv_buf_t b = uv_buf_init(reinterpret_cast<char*>(w->data.data()), static_cast<unsigned>(w->data.size()));
  if (uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&c->tcp), &b, 1,
               [](uv_write_t* req, int) { delete reinterpret_cast<WriteReq*>(req); }) != 0)
    delete w;
}

size_t Daemon::authenticated_waiting() const {
  size_t n = 0;
  for (const Conn* c : conns_) n += c->phase == Conn::Phase::await_hello ? 1 : 0;
  return n;
}

// Handshake bytes arrive in hs_buf; act once a whole message is there.
void Daemon::on_handshake_bytes(Conn* c) {
  Daemon* d = this;
  if (c->hs_have < c->hs_need()) return;
  if (c->phase == Conn::Phase::client_hello) {
    // Only a hello it would answer costs a token: garbage and other pairs get
    // their own refusals, and cannot empty an original's bucket.
    const base::ByteSpan hello{c->hs_buf, c->hs_have};
    if (c->handshake->would_answer(hello) && !hello_limit_.admit(c->host, now_ms()))  // before the X25519 work
      return refuse_busy(c, "more than " + base::u64s(kHelloBurst) + " handshakes from " + c->host + " at once, or " +
                                base::u64s(kHellosPerSecond) + " a second after that");
    base::Bytes reply;
    base::Status s = c->handshake->on_client_hello(hello, reply);
    if (!reply.empty()) d->send_handshake_bytes(c, std::move(reply));
    if (!s.is_ok()) return d->close_conn(c, "handshake refused: " + s.message());
    c->phase = Conn::Phase::client_finish;
    c->hs_have = 0;
    c->deadline_ms = now_ms() + config_.handshake_timeout_ms;  // now the finish: one round trip
    return;
  }
  base::Status s = c->handshake->on_client_finish({c->hs_buf, c->hs_have});
  if (!s.is_ok()) return d->close_conn(c, "authentication failed: " + s.message());
  d->on_authenticated(c);
}

void Daemon::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  Conn* c = static_cast<Conn*>(stream->data);
  Daemon* d = c->daemon;
  if (c->phase == Conn::Phase::closing) return;
  if (nread < 0) {
    d->close_conn(c, nread == UV_EOF ? "the peer closed the connection" : std::string("read failed: ") + uv_strerror(static_cast<int>(nread)));
    return;
  }
  if (nread == 0) return;
  if (c->handshaking()) {
    c->hs_have += static_cast<size_t>(nread);
    d->on_handshake_bytes(c);
    return;
  }
  d->feed_frames(c, buf, static_cast<size_t>(nread));
}

// libuv reads a stream up to 32 times before it looks at anything else, and a
// 256 KiB read holds 64 small records: with the original ahead, an urgent
// completion (a flush done: the next epoch's writes and the next early flush
// wait for the loop) would wait behind megabytes of records, the disk idle.
// So the records of a read go to the disk workers kFramesPerBatch at a time,
// and an urgent completion is taken between two such batches. A read of larger
// records holds fewer and goes over whole, as before: there the loop, not the
// disk's chain, sets the pace, and smaller batches would cost worker wake-ups.
void Daemon::feed_frames(Conn* c, const uv_buf_t* buf, size_t nread) {
  std::optional<DiskWorkers::Batch> batch(std::in_place, *disk_workers_);
  // A frame the reader completed, or why the stream is dead.
  auto take = [&](base::Status s, proto::Frame& frame, bool has) {
    if (!s.is_ok()) {
      send_error(c, proto::error_code_for(s), s.message());
      close_conn(c, s.message());
      return false;
    }
    if (has) {
      // Only a whole, authenticated frame counts as hearing from the original:
      // a damaged length prefix would otherwise keep a dead stream "alive".
      c->last_recv_ms = now_ms();
      on_frame(c, std::move(frame));
    }
    return true;
  };
  if (buf->base != reinterpret_cast<char*>(c->read_buf.get())) {
    // on_alloc gave libuv the current frame's body (body_space).
    proto::Frame frame;
    bool has = false;
    base::Status s = c->reader->body_filled(nread, frame, has);
    if (!take(std::move(s), frame, has)) return;
  } else {
    base::ByteSpan in(reinterpret_cast<const uint8_t*>(buf->base), nread);
    for (size_t frames = 0; !in.empty() && c->phase != Conn::Phase::closing; ++frames) {
      if (frames > 0 && frames % kFramesPerBatch == 0 && completions_.urgent_waiting()) {
        batch.reset();  // what the frames before submitted goes first
        drain_completions();
        // They may have ended the session, or the daemon (stop_loop).
        if (c->phase == Conn::Phase::closing || uv_is_closing(reinterpret_cast<uv_handle_t*>(&c->tcp))) return;
        batch.emplace(*disk_workers_);
      }
      proto::Frame frame;
      bool has = false;
      base::Status s = c->reader->feed(in, frame, has);
      if (!take(std::move(s), frame, has)) return;
    }
  }
  if (c->phase != Conn::Phase::closing && c == session_) {
    apply::Actions actions;
    machine_.on_read_batch_done(actions);
    apply_actions(actions);
  }
  update_reading();
}

void Daemon::on_authenticated(Conn* c) {
  // The keys go straight from the handshake (which wipes them as it goes) into
  // the sealer's and reader's guarded memory: no copy on the stack.
  c->sealer = std::make_unique<proto::FrameSealer>(c->handshake->keys().send);
  c->reader = std::make_unique<proto::FrameReader>(c->handshake->keys().recv);
  c->handshake.reset();
  c->read_buf = std::make_unique<uint8_t[]>(kReadBufferBytes);
  c->phase = Conn::Phase::await_hello;
  c->deadline_ms = now_ms() + config_.handshake_timeout_ms;  // the hello must follow
  LOG_INFO("%s authenticated as the paired original", c->peer.c_str());
}

// Reading follows the machine's memory budget: backpressure, not buffering.
void Daemon::update_reading() {
  Conn* c = session_;
  if (c == nullptr || c->phase != Conn::Phase::session) return;
  const bool want = machine_.can_accept();
  auto* stream = reinterpret_cast<uv_stream_t*>(&c->tcp);
  if (want && !c->reading) {
    uv_read_start(stream, on_alloc, on_read);
    c->reading = true;
    c->last_recv_ms = now_ms();  // silence while we were not reading is ours
  } else if (!want && c->reading) {
    uv_read_stop(stream);
    c->reading = false;
  }
}

void Daemon::check_deadlines(uint64_t now) {
  if (const uint64_t held = stranger_log_.take_held(now))
    LOG_NOTICE("%llu more connections were dropped during the handshake in the last 10 s (notices held back)",
               static_cast<unsigned long long>(held));
  // close_conn can end the session and so stop the daemon (stop_loop clears
  // conns_): walk a copy, and stop walking once stopped. Conns are freed only
  // in close callbacks, which run after this returns.
  const std::vector<Conn*> snapshot = conns_;
  for (Conn* c : snapshot) {
    if (stopped_cleanly_ || fatal_) return;
    if (c->phase == Conn::Phase::closing) {
      if (c->deadline_ms != 0 && now >= c->deadline_ms) {
        conns_.erase(std::find(conns_.begin(), conns_.end(), c));
        uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), on_closed);
      }
    } else if (c->deadline_ms != 0 && now >= c->deadline_ms) {
      if (c->phase != Conn::Phase::client_hello && c->phase != Conn::Phase::client_finish)
        send_error(c, proto::ErrorCode::timeout, "no hello within the handshake timeout.");
      close_conn(c, "the handshake timed out");
    } else if (c->phase == Conn::Phase::session) {
      if (c->reading && now - c->last_recv_ms > config_.idle_timeout_ms) {
        send_error(c, proto::ErrorCode::timeout, "the original was silent for too long.");
        close_conn(c, "the original was silent for " + std::to_string(now - c->last_recv_ms) + " ms");
      } else if (now - c->last_send_ms > config_.keepalive_interval_ms) {
        base::Bytes out;
        proto::encode_ping(now, 0, out);
        send_plain(c, out);
      }
    }
  }
}

}  // namespace cloned