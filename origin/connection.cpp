// SPDX-License-Identifier: MIT
// Connection: connect and handshake, the send buffer, frames in, pings, the
// timers, and the clone's error and goodbye.
#include "origin/connection.h"

#include <poll.h>
#include <sodium.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "base/units.h"
#include "origin/net.h"
#include "origin/session.h"

namespace origin {

namespace {

constexpr size_t kRecvChunkBytes = 256 * 1024;
constexpr uint64_t kGoodbyeGraceMs = 1000;

using base::u64s;

void drain_wake_fd(int wake_fd) {
  uint64_t count = 0;
  while (::read(wake_fd, &count, sizeof count) > 0) {
  }
}

// A short name for what a ServerHello that failed said, for the log.
std::string answer_heard(const uint8_t (&server_hello)[proto::kServerHelloBytes], const base::Status& failed) {
  const uint16_t status = base::load_le16(server_hello + 6);
  switch (failed.code()) {
    case EACCES:
      return "a proof of the pairing secret that does not verify";
    case EPROTO:
      return "a reply that is not a clone's ServerHello";
    case EPROTONOSUPPORT:
      if (status == 0) return "another protocol version";
      [[fallthrough]];
    default:
      return proto::hello_status_name(status);
  }
}

}  // namespace

bool is_retryable(proto::ErrorCode code) {
  switch (code) {
    case proto::ErrorCode::busy:
    case proto::ErrorCode::shutting_down:
    case proto::ErrorCode::timeout:
    case proto::ErrorCode::disk_io:  // the clone may be restarted with its disk checked
    case proto::ErrorCode::internal:
    // Damage in transit: the frame's authentication (or, for a length over
    // the limit, the check before it) caught it; a new session resends. Or
    // a session's log wrote more ranges beside a resync than the clone keeps:
    // a new session resumes at the durable cursor with none kept.
    case proto::ErrorCode::corrupted:
    case proto::ErrorCode::too_large:
      return true;
    default:
      return false;
  }
}

bool RefusalStreak::final_after(const std::string& unauthenticated_answer) {
  if (unauthenticated_answer.empty() || unauthenticated_answer != answer_) count_ = 0;
  answer_ = unauthenticated_answer;
  if (!answer_.empty()) ++count_;
  return count_ >= kUnauthenticatedRefusalsMax;
}

base::Status connect_to_clone(const SessionConfig& config, ClientLink& out) {
  const uint64_t deadline = net::now_ms() + config.connect_timeout_ms;
  out.unauthenticated_answer.clear();
  base::Result<base::UniqueFd> fd = net::connect_tcp(config.host, config.port, config.connect_timeout_ms);
  if (!fd) return fd.status();
  out.fd = std::move(*fd);
  proto::ClientHandshake hs(config.auth_key, config.pair_id);
  const base::Bytes hello = hs.client_hello();
  BASE_TRY(net::write_all(out.fd.get(), hello, deadline).with_context("handshake with the clone failed"));
  uint8_t server_hello[proto::kServerHelloBytes];
  BASE_TRY(net::read_exact(out.fd.get(), server_hello, deadline).with_context("handshake with the clone failed"));
  base::Result<base::Bytes> finish = hs.on_server_hello(server_hello);
  if (!finish) {
    // Nothing in a ServerHello that fails is authenticated: a busy clone is
    // simply tried again; anything else (another pair, another version, a
    // proof that does not verify) is told, and final only if it repeats.
    const base::Status& s = finish.status();
    if (s.code() == EBUSY || s.code() == EAGAIN) return s;  // its sentence says "busy"
    out.unauthenticated_answer = answer_heard(server_hello, s);
    return base::Status::error(s.code(), "the handshake with the clone at " + config.host + ":" +
                                             std::to_string(config.port) + " failed: " + s.message());
  }
  BASE_TRY(net::write_all(out.fd.get(), *finish, deadline).with_context("handshake with the clone failed"));
  out.keys = hs.keys();
  return base::Status::ok();
}

Connection::Connection() = default;
Connection::~Connection() = default;

base::Status Connection::open(const SessionConfig& config) {
  ClientLink link;
  base::Status s = connect_to_clone(config, link);
  unauthenticated_answer_ = link.unauthenticated_answer;
  if (!s.is_ok()) return s;
  fd_ = std::move(link.fd);
  sealer_ = std::make_unique<proto::FrameSealer>(link.keys.send);
  reader_ = std::make_unique<proto::FrameReader>(link.keys.recv, kRecvFrameBytesMax);
  sodium_memzero(&link.keys, sizeof link.keys);  // they live on in the sealer's and reader's guarded pages
  recv_buf_ = std::make_unique<uint8_t[]>(kRecvChunkBytes);
  idle_timeout_ms_ = config.idle_timeout_ms;
  keepalive_interval_ms_ = config.keepalive_interval_ms;
  last_recv_ms_ = last_send_ms_ = net::now_ms();
  return base::Status::ok();
}

void Connection::queue(base::ByteSpan plain) {
  const size_t before = send_buf_.size();
  sealer_->seal(plain, send_buf_);
  wire_bytes_queued_ += send_buf_.size() - before;
}

int Connection::poll_timeout_ms(uint64_t now, int wait_ms_max) const {
  uint64_t wait = idle_timeout_ms_ - std::min<uint64_t>(now - last_recv_ms_, idle_timeout_ms_);
  if (send_pending() == 0)
    wait = std::min<uint64_t>(wait,
                              keepalive_interval_ms_ - std::min<uint64_t>(now - last_send_ms_, keepalive_interval_ms_));
  return static_cast<int>(std::min<uint64_t>(wait, static_cast<uint64_t>(wait_ms_max)) + 1);
}

base::Status Connection::pump(int wait_ms_max, const FrameHandler& handler, int wake_fd, uint64_t ping_end_seq) {
  const uint64_t now = net::now_ms();
  if (now - last_recv_ms_ >= idle_timeout_ms_)
    return base::Status::error(ETIMEDOUT, "the clone was silent for " + u64s(now - last_recv_ms_) + " ms");
  if (send_pending() == 0 && now - last_send_ms_ >= keepalive_interval_ms_) {
    base::Bytes ping;
    proto::encode_ping(++ping_token_, ping_end_seq, ping);
    queue(ping);
  }
  pollfd fds[2] = {{fd_.get(), static_cast<short>(POLLIN | (send_pending() > 0 ? POLLOUT : 0)), 0},
                   {wake_fd, POLLIN, 0}};
  const int rc = ::poll(fds, wake_fd >= 0 ? 2 : 1, poll_timeout_ms(now, wait_ms_max));
  if (rc < 0 && errno == EINTR) return base::Status::ok();
  if (rc < 0) return base::Status::from_errno("poll failed");
  if (wake_fd >= 0 && (fds[1].revents & POLLIN)) drain_wake_fd(wake_fd);
  if (fds[0].revents & (POLLIN | POLLERR | POLLHUP)) BASE_TRY(receive(handler));
  if (fds[0].revents & POLLOUT) BASE_TRY(flush_some());
  return base::Status::ok();
}

base::Status Connection::flush_some() {
  uint64_t sent = 0;
  while (send_pending() > 0) {
    ssize_t n = ::send(fd_.get(), send_buf_.data() + send_head_, send_pending(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0) return base::Status::from_errno("sending to the clone failed");
    send_head_ += static_cast<size_t>(n);
    sent += static_cast<uint64_t>(n);
  }
  // Sent bytes are dropped from the front once they are half the buffer, so
  // the copy costs at most what was sent.
  if (send_head_ == send_buf_.size()) {
    send_buf_.clear();
    send_head_ = 0;
  } else if (send_head_ >= send_buf_.size() / 2) {
    send_buf_.erase(send_buf_.begin(), send_buf_.begin() + static_cast<std::ptrdiff_t>(send_head_));
    send_head_ = 0;
  }
  if (sent > 0) {
    last_send_ms_ = net::now_ms();
    wire_bytes_sent_ += sent;
  }
  return base::Status::ok();
}

base::Status Connection::receive(const FrameHandler& handler) {
  ssize_t n = ::recv(fd_.get(), recv_buf_.get(), kRecvChunkBytes, MSG_DONTWAIT);
  if (n == 0) return base::Status::error(ECONNRESET, "the clone closed the connection");
  if (n < 0) {
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) return base::Status::ok();
    return base::Status::from_errno("receiving from the clone failed");
  }
  wire_bytes_received_ += static_cast<uint64_t>(n);
  base::ByteSpan in(recv_buf_.get(), static_cast<size_t>(n));
  while (!in.empty()) {
    proto::Frame frame;
    bool has_frame = false;
    // A frame that fails authentication means the stream was damaged or
    // tampered with on the way: this connection is dead, a new one may work.
    BASE_TRY(reader_->feed(in, frame, has_frame).with_context("a frame from the clone was refused"));
    if (!has_frame) continue;
    // Only a whole, authenticated frame counts as hearing from the clone: a
    // damaged length prefix would otherwise keep a dead stream "alive".
    last_recv_ms_ = net::now_ms();
    BASE_TRY(handle(frame.plain(), handler));
  }
  return base::Status::ok();
}

base::Status Connection::handle(base::ByteSpan plain, const FrameHandler& handler) {
  base::Result<proto::MsgType> type = proto::peek_type(plain);
  if (!type) return violation(type.status().message());
  uint64_t a = 0, b = 0;
  switch (*type) {
    case proto::MsgType::ping: {
      if (!proto::decode_ping(plain, a, b).is_ok()) return violation("a malformed ping arrived.");
      base::Bytes pong;
      proto::encode_pong(a, pong);
      queue(pong);
      return base::Status::ok();
    }
    case proto::MsgType::pong:
      if (!proto::decode_pong(plain, a).is_ok()) return violation("a malformed pong arrived.");
      return base::Status::ok();
    case proto::MsgType::error:
    case proto::MsgType::goodbye:
      return on_error_or_goodbye(*type, plain);
    default:
      return handler(*type, plain);
  }
}

base::Status Connection::on_error_or_goodbye(proto::MsgType type, base::ByteSpan plain) {
  proto::ErrorMsg m;
  const bool is_error = type == proto::MsgType::error;
  base::Status s = is_error ? proto::decode_error(plain, m) : proto::decode_goodbye(plain, m);
  if (!s.is_ok()) return violation(std::string("the clone's ") + (is_error ? "error" : "goodbye") + " is malformed.");
  if (!is_error) return base::Status::error(ECONNRESET, "the clone said goodbye: " + m.message);
  const std::string text = "the clone refused: " + m.message + " (" + proto::error_code_name(m.code) + ")";
  clone_busy_ = m.code == proto::ErrorCode::busy;
  if (is_retryable(m.code)) return base::Status::error(EAGAIN, text);
  return fatal(EPROTO, text);
}

base::Status Connection::fatal(int code, const std::string& message) {
  fatal_ = true;
  return base::Status::error(code, message);
}

base::Status Connection::refuse(proto::ErrorCode code, int err, const std::string& sentence) {
  base::Bytes plain;
  proto::encode_error({code, sentence}, plain);
  queue(plain);
  close_gracefully();
  return fatal(err, sentence);
}

base::Status Connection::violation(const std::string& what) {
  return refuse(proto::ErrorCode::protocol, EPROTO, "the clone broke the protocol: " + what);
}

void Connection::say_goodbye(const std::string& sentence) {
  base::Bytes plain;
  proto::encode_goodbye({proto::ErrorCode::shutting_down, sentence}, plain);
  queue(plain);
  close_gracefully();
}

// Closing with unread input would make the kernel send a reset, which can
// destroy our last message before the clone reads it: hence the half-close
// and the bounded read until the clone closes its side.
void Connection::close_gracefully() {
  if (!fd_) return;
  const uint64_t deadline = net::now_ms() + kGoodbyeGraceMs;
  (void)net::write_all(fd_.get(), base::ByteSpan(send_buf_).subspan(send_head_), deadline);
  send_buf_.clear();
  send_head_ = 0;
  ::shutdown(fd_.get(), SHUT_WR);
  uint8_t discard[16 * 1024];  // not recv_buf_: a caller may still be parsing it
  while (net::wait_fd(fd_.get(), POLLIN, deadline).is_ok()) {
    ssize_t n = ::recv(fd_.get(), discard, sizeof discard, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) break;
  }
  fd_.reset();
}

}  // namespace origin
