// SPDX-License-Identifier: MIT
#include "origin/testing.h"

#include <poll.h>
#include <sys/socket.h>

#include <cassert>
#include <cerrno>

namespace origin::testing {

base::Result<base::UniqueFd> connect(const std::string& host, uint16_t port, uint32_t timeout_ms) {
  return net::connect_tcp(host, port, timeout_ms);
}

base::Status send_raw(int fd, base::ByteSpan bytes, uint32_t timeout_ms) {
  return net::write_all(fd, bytes, net::now_ms() + timeout_ms);
}

bool wait_closed(int fd, uint32_t timeout_ms) {
  const uint64_t deadline = net::now_ms() + timeout_ms;
  uint8_t buf[4096];
  while (net::wait_fd(fd, POLLIN, deadline).is_ok()) {
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0) return true;
    if (n < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) return true;
  }
  return false;
}

base::Result<HandshakeResult> handshake(int fd, const proto::Key& auth_key, const proto::PairId& pair_id,
                                        uint32_t timeout_ms) {
  const uint64_t deadline = net::now_ms() + timeout_ms;
  proto::ClientHandshake hs(auth_key, pair_id);
  HandshakeResult r;
  r.client_bytes = hs.client_hello();
  BASE_TRY(net::write_all(fd, r.client_bytes, deadline));
  r.server_hello.resize(proto::kServerHelloBytes);
  BASE_TRY(net::read_exact(fd, r.server_hello, deadline));
  base::Result<base::Bytes> finish = hs.on_server_hello(r.server_hello);
  if (!finish) return finish.status();
  BASE_TRY(net::write_all(fd, *finish, deadline));
  r.client_bytes.insert(r.client_bytes.end(), finish->begin(), finish->end());
  r.keys = hs.keys();
  return r;
}

RawSession::RawSession(base::UniqueFd fd, const proto::SessionKeys& keys)
    : fd_(std::move(fd)), sealer_(keys.send), reader_(keys.recv) {}

base::Bytes RawSession::seal(base::ByteSpan plain) {
  base::Bytes wire;
  sealer_.seal(plain, wire);
  return wire;
}

base::Status RawSession::send_frame(base::ByteSpan plain) { return send_raw(seal(plain)); }

base::Status RawSession::send_raw(base::ByteSpan bytes) { return testing::send_raw(fd_.get(), bytes); }

base::Status RawSession::send_hello(const proto::Hello& hello) {
  base::Bytes plain;
  proto::encode_hello(hello, plain);
  return send_frame(plain);
}

base::Status RawSession::send_record(const proto::RecordHeader& header, base::ByteSpan payload) {
  base::Bytes plain;
  proto::encode_record(header, payload, plain);
  return send_frame(plain);
}

base::Status RawSession::receive(base::Bytes& plain, uint32_t timeout_ms) {
  const uint64_t deadline = net::now_ms() + timeout_ms;
  for (;;) {
    base::ByteSpan in(pending_);
    proto::Frame frame;
    bool has = false;
    base::Status s = reader_.feed(in, frame, has);
    pending_.erase(pending_.begin(), pending_.end() - static_cast<std::ptrdiff_t>(in.size()));
    BASE_TRY(s);
    if (has) {
      plain.assign(frame.plain().begin(), frame.plain().end());
      return base::Status::ok();
    }
    if (!net::wait_fd(fd_.get(), POLLIN, deadline).is_ok())
      return base::Status::error(ETIMEDOUT, "no message from the clone within " + std::to_string(timeout_ms) + " ms");
    uint8_t buf[64 * 1024];
    ssize_t n = ::recv(fd_.get(), buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0) return base::Status::error(ECONNRESET, "the clone closed the connection");
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return base::Status::from_errno("receiving from the clone failed");
    pending_.insert(pending_.end(), buf, buf + n);
  }
}

base::Status RawSession::receive_until(proto::MsgType type, base::Bytes& plain, uint32_t timeout_ms) {
  const uint64_t deadline = net::now_ms() + timeout_ms;
  for (;;) {
    const uint64_t now = net::now_ms();
    if (now >= deadline) return base::Status::error(ETIMEDOUT, "the awaited message did not come in time");
    BASE_TRY(receive(plain, static_cast<uint32_t>(deadline - now)));
    base::Result<proto::MsgType> got = proto::peek_type(plain);
    if (got && *got == type) return base::Status::ok();
    uint64_t token = 0, log_end = 0;
    if (got && *got == proto::MsgType::ping && proto::decode_ping(plain, token, log_end).is_ok()) {
      base::Bytes pong;
      proto::encode_pong(token, pong);
      BASE_TRY(send_frame(pong));
    }
  }
}

base::Result<proto::ErrorMsg> RawSession::expect_error(uint32_t timeout_ms) {
  base::Bytes plain;
  BASE_TRY(receive_until(proto::MsgType::error, plain, timeout_ms));
  proto::ErrorMsg m;
  BASE_TRY(proto::decode_error(plain, m));
  return m;
}

base::Result<std::unique_ptr<RawSession>> open_raw_session(const SessionConfig& config, uint64_t log_start_seq,
                                                           uint64_t log_end_seq, proto::Hello* clone_hello,
                                                           uint32_t timeout_ms) {
  base::Result<base::UniqueFd> fd = connect(config.host, config.port, timeout_ms);
  if (!fd) return fd.status();
  base::Result<HandshakeResult> hs = handshake(fd->get(), config.auth_key, config.pair_id, timeout_ms);
  if (!hs) return hs.status();
  auto session = std::make_unique<RawSession>(std::move(*fd), hs->keys);
  BASE_TRY(session->send_hello(original_hello(config, log_start_seq, log_end_seq)));
  base::Bytes plain;
  for (;;) {
    BASE_TRY(session->receive(plain, timeout_ms));
    base::Result<proto::MsgType> type = proto::peek_type(plain);
    if (!type) return type.status();
    if (*type == proto::MsgType::error) {
      proto::ErrorMsg m;
      BASE_TRY(proto::decode_error(plain, m));
      return base::Status::error(EPROTO, std::string("the clone refused: ") + m.message + " (" + proto::error_code_name(m.code) + ")");
    }
    if (*type != proto::MsgType::hello) continue;  // a ping or a committed message before the hello
    proto::Hello h;
    BASE_TRY(proto::decode_hello(plain, h));
    if (clone_hello != nullptr) *clone_hello = h;
    return session;
  }
}

proto::RecordHeader write_header(uint64_t seq, uint64_t epoch, uint64_t offset_bytes, base::ByteSpan payload,
                                 const digest::DigestKey& digest_key) {
  proto::RecordHeader h;
  h.type = proto::MsgType::write;
  h.seq = seq;
  h.epoch = epoch;
  h.offset_bytes = offset_bytes;
  h.length_bytes = payload.size();
  h.digest = digest::keyed_digest(digest_key, payload);
  return h;
}

base::Bytes frame_length_prefix(uint32_t wire_length) {
  base::Bytes b(proto::kFrameLengthBytes);
  base::store_le32(b.data(), wire_length);
  return b;
}

void flip_byte(base::Bytes& bytes, size_t index) {
  assert(index < bytes.size());
  bytes[index] = static_cast<uint8_t>(~bytes[index]);
}

}  // namespace origin::testing
