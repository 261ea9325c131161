// SPDX-License-Identifier: MIT
// A fake clone for the client's unit tests: a thread that accepts sessions
// on 127.0.0.1, does the server side of the handshake, answers the hello as
// scripted, applies records to a memory disk, and acks each barrier at once
// (barrier_ack and committed). It checks sequence and epoch like the real
// clone, and can drop the first session after a number of records, refuse
// every hello with an error, or answer the first connections with a forged
// handshake refusal. Not a model of durability: the real daemon's
// tests do that.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/unique_fd.h"
#include "proto/frame.h"
#include "proto/handshake.h"
#include "proto/messages.h"

namespace origin_test {

class FakeClone {
 public:
  struct Script {
    uint64_t applied_seq = 0;
    uint64_t applied_epoch = 0;
    std::optional<uint64_t> committed_seq;  // in the hello; applied_seq when unset
    uint64_t drop_after_records = 0;        // first session only; 0 = never
    std::optional<proto::ErrorMsg> refuse;  // answer every hello with this error
    // The first this many connections get a refusal anyone could forge: a
    // ServerHello with this status, without the secret, then a close.
    uint32_t forged_refusals = 0;
    proto::HelloStatus forged_status = proto::HelloStatus::unknown_pair;
    // Messages sent in the same write as the hello (and its ping), so that
    // the client reads them in one go.
    std::vector<base::Bytes> after_hello;
  };

  FakeClone(const proto::Key& auth_key, const proto::PairId& pair_id, uint64_t disk_bytes, Script script);
  ~FakeClone();
  FakeClone(const FakeClone&) = delete;
  FakeClone& operator=(const FakeClone&) = delete;

  uint16_t port() const { return port_; }
  // Read after stop() (or while quiescent).
  void stop();
  const std::vector<uint8_t>& disk() const { return disk_; }
  uint64_t sessions() const { return sessions_.load(); }
  uint64_t forged() const { return forged_.load(); }
  uint64_t applied_seq() const { return applied_seq_; }
  bool goodbye_received() const { return goodbye_; }
  bool pong_received() const { return pong_; }
  std::optional<proto::ErrorMsg> error_received() const { return error_; }
  std::vector<uint64_t> first_seq_per_session() const { return first_seqs_; }
  std::string failure() const { return failure_; }  // a check the client failed, "" if none

 private:
  void run();
  void serve(int fd);
  bool handshake(int fd, proto::SessionKeys& keys);
  void forge_refusal(int fd);
  // false: end the session.
  bool on_message(int fd, proto::FrameSealer& sealer, base::ByteSpan plain, uint64_t& records_this_session);
  bool on_record(int fd, proto::FrameSealer& sealer, base::ByteSpan plain);
  void send(int fd, proto::FrameSealer& sealer, const base::Bytes& plain);

  proto::Key auth_key_;
  proto::PairId pair_id_;
  Script script_;
  base::UniqueFd listen_fd_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::atomic<uint64_t> sessions_{0};
  std::atomic<uint64_t> forged_{0};

  // Touched only by the server thread until stop().
  std::vector<uint8_t> disk_;
  uint64_t applied_seq_ = 0;
  uint64_t applied_epoch_ = 0;
  uint64_t recv_seq_ = 0;
  uint64_t recv_epoch_ = 0;
  bool hello_done_ = false;
  bool goodbye_ = false;
  bool pong_ = false;
  std::optional<proto::ErrorMsg> error_;
  std::vector<uint64_t> first_seqs_;
  std::string failure_;
};

}  // namespace origin_test
