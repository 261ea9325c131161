// SPDX-License-Identifier: MIT
// Internal to the daemon: one connection's state.
#pragma once

#include <uv.h>

#include <memory>
#include <string>

#include "cloned/daemon/health_link.h"

#include "proto/frame.h"
#include "proto/handshake.h"

namespace cloned {

class Daemon;

// One uv_write and the bytes it sends; freed in its write callback.
struct WriteReq {
  uv_write_t req{};
  base::Bytes data;
};

// One TCP connection. Before authentication it holds only this struct and the
// handshake state: a fixed budget whatever the peer sends (invariant 2).
struct Conn {
  enum class Phase { client_hello, client_finish, await_hello, session, closing };

  Daemon* daemon = nullptr;
  uint64_t id = 0;
  uv_tcp_t tcp{};
  uv_shutdown_t shutdown_req{};
  Phase phase = Phase::client_hello;
  std::string peer;
  std::string host;  // the peer's address without its port (handshake_slots.h)
  // Handshake: the reads are sized to the message expected, so nothing past
  // the ClientFinish is read before the session keys exist.
  uint8_t hs_buf[proto::kClientHelloBytes]{};
  size_t hs_have = 0;
  std::unique_ptr<proto::ServerHandshake> handshake;
  // After authentication.
  std::unique_ptr<proto::FrameSealer> sealer;
  std::unique_ptr<proto::FrameReader> reader;
  std::unique_ptr<uint8_t[]> read_buf;
  bool reading = false;
  uint64_t deadline_ms = 0;  // handshake or closing deadline; 0 = none
  uint64_t last_recv_ms = 0;
  uint64_t last_send_ms = 0;
  HealthPeer health;  // its health reports (health_link.h)

  size_t hs_need() const {
    return phase == Phase::client_hello ? proto::kClientHelloBytes : proto::kClientFinishBytes;
  }
  bool handshaking() const { return phase == Phase::client_hello || phase == Phase::client_finish; }
};

}  // namespace cloned
