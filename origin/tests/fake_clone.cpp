// SPDX-License-Identifier: MIT
#include "origin/tests/fake_clone.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "proto/frame.h"
#include "origin/net.h"

namespace origin_test {

FakeClone::FakeClone(const proto::Key& auth_key, const proto::PairId& pair_id, uint64_t disk_bytes, Script script)
    : auth_key_(auth_key), pair_id_(pair_id), script_(std::move(script)), disk_(disk_bytes, 0) {
  applied_seq_ = script_.applied_seq;
  applied_epoch_ = script_.applied_epoch;
  listen_fd_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(listen_fd_.get(), reinterpret_cast<sockaddr*>(&addr), len) == 0 && ::listen(listen_fd_.get(), 8) == 0 &&
      ::getsockname(listen_fd_.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0)
    port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { run(); });
}

FakeClone::~FakeClone() { stop(); }

void FakeClone::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  listen_fd_.reset();
}

void FakeClone::run() {
  while (!stop_) {
    pollfd p{listen_fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    base::UniqueFd fd(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!fd) continue;
    serve(fd.get());
  }
}

bool FakeClone::handshake(int fd, proto::SessionKeys& keys) {
  const uint64_t deadline = origin::net::now_ms() + 5000;
  proto::ServerHandshake hs(auth_key_, pair_id_);
  uint8_t hello[proto::kClientHelloBytes];
  if (!origin::net::read_exact(fd, hello, deadline).is_ok()) return false;
  base::Bytes reply;
  base::Status s = hs.on_client_hello(hello, reply);
  if (!reply.empty()) (void)origin::net::write_all(fd, reply, deadline);
  if (!s.is_ok()) return false;
  uint8_t finish[proto::kClientFinishBytes];
  if (!origin::net::read_exact(fd, finish, deadline).is_ok()) return false;
  if (!hs.on_client_finish(finish).is_ok()) return false;
  keys = hs.keys();
  return true;
}

void FakeClone::forge_refusal(int fd) {
  const uint64_t deadline = origin::net::now_ms() + 5000;
  uint8_t hello[proto::kClientHelloBytes];
  if (!origin::net::read_exact(fd, hello, deadline).is_ok()) return;
  (void)origin::net::write_all(fd, proto::ServerHandshake::refusal(script_.forged_status), deadline);
}

void FakeClone::send(int fd, proto::FrameSealer& sealer, const base::Bytes& plain) {
  base::Bytes wire;
  sealer.seal(plain, wire);
  (void)origin::net::write_all(fd, wire, origin::net::now_ms() + 5000);
}

void FakeClone::serve(int fd) {
  if (forged_ < script_.forged_refusals) {
    ++forged_;
    return forge_refusal(fd);
  }
  proto::SessionKeys keys;
  if (!handshake(fd, keys)) return;
  ++sessions_;
  proto::FrameSealer sealer(keys.send);
  proto::FrameReader reader(keys.recv);
  hello_done_ = false;
  uint64_t records = 0;
  std::vector<uint8_t> buf(256 * 1024);
  while (!stop_) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    ssize_t n = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n <= 0) return;
    base::ByteSpan in(buf.data(), static_cast<size_t>(n));
    while (!in.empty()) {
      proto::Frame frame;
      bool has = false;
      if (!reader.feed(in, frame, has).is_ok()) return;
      if (has && !on_message(fd, sealer, frame.plain(), records)) return;
    }
  }
}

bool FakeClone::on_message(int fd, proto::FrameSealer& sealer, base::ByteSpan plain, uint64_t& records) {
  base::Result<proto::MsgType> type = proto::peek_type(plain);
  if (!type) return false;
  base::Bytes out;
  uint64_t token = 0;
  switch (*type) {
    case proto::MsgType::hello: {
      proto::Hello o;
      if (!proto::decode_hello(plain, o).is_ok()) return false;
      if (script_.refuse) {
        proto::encode_error(*script_.refuse, out);
        send(fd, sealer, out);
        return false;
      }
      proto::Hello h;
      h.role = proto::Role::clone;
      h.pair_id = pair_id_;
      h.disk_size_bytes = disk_.size();
      h.logical_block_bytes = o.logical_block_bytes;
      h.generation = 1;
      h.applied_seq = applied_seq_;
      h.committed_seq = script_.committed_seq.value_or(applied_seq_);
      h.applied_epoch = applied_epoch_;
      proto::encode_hello(h, out);
      base::Bytes wire;
      sealer.seal(out, wire);
      out.clear();
      proto::encode_ping(77, 0, out);
      sealer.seal(out, wire);
      for (const base::Bytes& m : script_.after_hello) sealer.seal(m, wire);
      (void)origin::net::write_all(fd, wire, origin::net::now_ms() + 5000);
      recv_seq_ = applied_seq_;
      recv_epoch_ = applied_epoch_ + 1;
      hello_done_ = true;
      return true;
    }
    case proto::MsgType::pong:
      pong_ = pong_ || (proto::decode_pong(plain, token).is_ok() && token == 77);
      return true;
    case proto::MsgType::ping:
      return true;
    case proto::MsgType::goodbye:
      goodbye_ = true;
      return false;
    case proto::MsgType::error: {
      proto::ErrorMsg m;
      if (proto::decode_error(plain, m).is_ok()) error_ = m;
      return false;
    }
    default:
      if (!hello_done_ || !on_record(fd, sealer, plain)) return false;
      ++records;
      return !(sessions_ == 1 && script_.drop_after_records != 0 && records >= script_.drop_after_records);
  }
}

bool FakeClone::on_record(int fd, proto::FrameSealer& sealer, base::ByteSpan plain) {
  proto::RecordHeader h;
  base::ByteSpan payload;
  if (!proto::decode_record(plain, h, payload).is_ok()) return false;
  if (first_seqs_.size() < sessions_) first_seqs_.push_back(h.seq);
  if (h.seq != recv_seq_ + 1 || h.epoch != recv_epoch_) {
    failure_ = "record " + std::to_string(h.seq) + " of epoch " + std::to_string(h.epoch) + " out of order";
    return false;
  }
  recv_seq_ = h.seq;
  if (h.offset_bytes + h.length_bytes > disk_.size()) return false;
  if (h.type == proto::MsgType::write) std::memcpy(disk_.data() + h.offset_bytes, payload.data(), payload.size());
  if (h.type == proto::MsgType::trim || h.type == proto::MsgType::zero)
    std::memset(disk_.data() + h.offset_bytes, 0, h.length_bytes);
  if (h.type != proto::MsgType::barrier) return true;
  applied_seq_ = h.seq;
  applied_epoch_ = h.epoch;
  recv_epoch_ = h.epoch + 1;
  base::Bytes out;
  proto::encode_barrier_ack(h.epoch, h.seq, out);
  send(fd, sealer, out);
  out.clear();
  proto::encode_committed(h.seq, out);
  send(fd, sealer, out);
  return true;
}

}  // namespace origin_test
