// SPDX-License-Identifier: MIT
// The authenticated key exchange that opens every session (docs/PROTOCOL.md,
// "Handshake"). No I/O: each side is a small state machine fed whole,
// fixed-size messages by its caller.
//
// Original (client)                        Clone (server)
//   ClientHello  (88 B)  ------------------>
//                        <------------------  ServerHello (104 B)
//   ClientFinish (32 B)  ------------------>
//
// Both sides contribute a fresh 32-byte nonce and an ephemeral X25519 key.
// The pairing's auth key, the X25519 shared secret and a hash of the whole
// transcript go into one keyed BLAKE2b, from which both sides' finish MACs
// and the two direction keys are derived. Hence: mutual authentication (only
// a holder of the pairing secret can produce either MAC), forward secrecy
// (the ephemeral keys are erased after the handshake), and replay-proofing
// (a replayed message meets a fresh nonce and ephemeral key and fails).
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "base/bytes.h"
#include "base/status.h"
#include "proto/messages.h"

namespace proto {

inline constexpr size_t kClientHelloBytes = 88;
inline constexpr size_t kServerHelloBytes = 104;
inline constexpr size_t kClientFinishBytes = 32;

using Key = std::array<uint8_t, 32>;

struct SessionKeys {
  Key send{};  // this side's sending key
  Key recv{};  // this side's receiving key
};

// ServerHello status (docs/PROTOCOL.md). Non-zero: the clone refuses and closes.
enum class HelloStatus : uint16_t { ok = 0, version = 1, unknown_pair = 2, busy = 3 };
// "ok", "version", "unknown_pair", "busy", or "status N" for another value.
std::string hello_status_name(uint16_t status);

class ClientHandshake {
 public:
  ClientHandshake(const Key& auth_key, const PairId& pair_id);
  ~ClientHandshake();  // wipes secrets
  ClientHandshake(const ClientHandshake&) = delete;
  ClientHandshake& operator=(const ClientHandshake&) = delete;

  // The first message; generates the nonce and ephemeral key. Call once.
  base::Bytes client_hello();
  // Checks the server's proof. On success returns the ClientFinish to send;
  // keys() is valid afterwards. Errors: malformed, refused (with the server's
  // status in the message), or authentication failed.
  base::Result<base::Bytes> on_server_hello(base::ByteSpan server_hello);
  const SessionKeys& keys() const;

 private:
  struct State;
  State* state_;
};

class ServerHandshake {
 public:
  // `auth_key` outlives the handshake: it is used in place, not copied (the
  // daemon's lives in guarded memory).
  ServerHandshake(const Key& auth_key, const PairId& pair_id);
  ServerHandshake(Key&&, const PairId&) = delete;
  ~ServerHandshake();
  ServerHandshake(const ServerHandshake&) = delete;
  ServerHandshake& operator=(const ServerHandshake&) = delete;

  // Consumes a ClientHello. Always fills `reply` with a ServerHello to send
  // unless the bytes are not a ClientHello at all (bad magic: send nothing).
  // Returns ok only when the handshake may continue; on a refusal (`reply`
  // carries the status) the caller sends `reply` and closes.
  base::Status on_client_hello(base::ByteSpan client_hello, base::Bytes& reply);
  // True when on_client_hello would answer it with a ServerHello (the work
  // of two X25519 operations): its form, version and pair are right. Cheap.
  bool would_answer(base::ByteSpan client_hello) const;
  // Refuses a well-formed ClientHello with `status` (e.g. busy).
  static base::Bytes refusal(HelloStatus status);
  // Checks the client's proof; ok means authenticated, keys() valid.
  base::Status on_client_finish(base::ByteSpan client_finish);
  const SessionKeys& keys() const;

 private:
  struct State;
  State* state_;
};

}  // namespace proto
