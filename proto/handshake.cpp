// SPDX-License-Identifier: MIT
// The session handshake: byte layouts and key schedule are docs/PROTOCOL.md,
// "Handshake". Every secret (ephemeral keys, the X25519 shared secret, the
// pseudo-random key) is wiped as soon as it has served, so a later compromise
// of this process's memory reveals no past session's keys.
#include "proto/handshake.h"

#include <sodium.h>

#include <cassert>
#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>

namespace proto {
namespace {

inline constexpr uint8_t kClientMagic[4] = {'C', 'L', 'N', '1'};
inline constexpr uint8_t kServerMagic[4] = {'C', 'L', 'S', '1'};
inline constexpr size_t kNonceBytes = 32;
inline constexpr size_t kMacBytes = 32;
// The part of a ServerHello that the transcript hash covers: all but its MAC.
inline constexpr size_t kServerHelloHeadBytes = kServerHelloBytes - kMacBytes;
static_assert(kClientHelloBytes == 4 + 2 + 2 + kPairIdBytes + kNonceBytes + crypto_scalarmult_BYTES);
static_assert(kServerHelloBytes == 4 + 2 + 2 + kNonceBytes + crypto_scalarmult_BYTES + kMacBytes);
static_assert(kClientFinishBytes == kMacBytes);
static_assert(crypto_scalarmult_BYTES == 32 && crypto_scalarmult_SCALARBYTES == 32);
static_assert(crypto_generichash_BYTES == 32 && crypto_generichash_KEYBYTES == 32);

// Labels of the key schedule: ASCII, no terminator.
constexpr std::string_view kLabelSchedule = "cloned handshake v1";
constexpr std::string_view kLabelServerMac = "server finished";
constexpr std::string_view kLabelClientMac = "client finished";
constexpr std::string_view kLabelC2S = "original to clone";
constexpr std::string_view kLabelS2C = "clone to original";

// Field offsets inside the two hellos.
inline constexpr size_t kClientPairIdAt = 8;
inline constexpr size_t kClientNonceAt = kClientPairIdAt + kPairIdBytes;
inline constexpr size_t kClientPkAt = kClientNonceAt + kNonceBytes;
inline constexpr size_t kServerNonceAt = 8;
inline constexpr size_t kServerPkAt = kServerNonceAt + kNonceBytes;
inline constexpr size_t kServerMacAt = kServerPkAt + crypto_scalarmult_BYTES;
static_assert(kServerMacAt == kServerHelloHeadBytes);

void init_sodium() {
  // Idempotent and thread-safe; -1 only if the library cannot work at all.
  [[maybe_unused]] const int rc = sodium_init();
  assert(rc >= 0);
}

void hash_label(Key& out, const Key& key, std::string_view label) {
  crypto_generichash(out.data(), out.size(), reinterpret_cast<const uint8_t*>(label.data()), label.size(),
                     key.data(), key.size());
}

// What both sides derive from one handshake.
struct Schedule {
  Key server_mac{};
  Key client_mac{};
  Key c2s{};
  Key s2c{};
  ~Schedule() { sodium_memzero(this, sizeof(*this)); }
};

// dh = X25519(own_sk, peer_pk); th = H(ClientHello || ServerHello head);
// prk = H_auth_key(label || dh || th); then one keyed hash of prk per output.
// Fails only when peer_pk is a low-order point (dh would be all zero and
// carry no secret).
bool derive_schedule(const Key& auth_key, const uint8_t own_sk[32], const uint8_t peer_pk[32],
                     base::ByteSpan client_hello, base::ByteSpan server_head, Schedule& out) {
  assert(client_hello.size() == kClientHelloBytes && server_head.size() == kServerHelloHeadBytes);
  uint8_t dh[crypto_scalarmult_BYTES];
  if (crypto_scalarmult(dh, own_sk, peer_pk) != 0) {
    sodium_memzero(dh, sizeof(dh));
    return false;
  }
  uint8_t th[crypto_generichash_BYTES];
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, sizeof(th));
  crypto_generichash_update(&st, client_hello.data(), client_hello.size());
  crypto_generichash_update(&st, server_head.data(), server_head.size());
  crypto_generichash_final(&st, th, sizeof(th));

  Key prk{};
  crypto_generichash_init(&st, auth_key.data(), auth_key.size(), prk.size());
  crypto_generichash_update(&st, reinterpret_cast<const uint8_t*>(kLabelSchedule.data()), kLabelSchedule.size());
  crypto_generichash_update(&st, dh, sizeof(dh));
  crypto_generichash_update(&st, th, sizeof(th));
  crypto_generichash_final(&st, prk.data(), prk.size());
  sodium_memzero(dh, sizeof(dh));
  sodium_memzero(&st, sizeof(st));

  hash_label(out.server_mac, prk, kLabelServerMac);
  hash_label(out.client_mac, prk, kLabelClientMac);
  hash_label(out.c2s, prk, kLabelC2S);
  hash_label(out.s2c, prk, kLabelS2C);
  sodium_memzero(prk.data(), prk.size());
  return true;
}

void new_ephemeral(uint8_t sk[32], uint8_t pk[32]) {
  randombytes_buf(sk, crypto_scalarmult_SCALARBYTES);
  [[maybe_unused]] const int rc = crypto_scalarmult_base(pk, sk);
  assert(rc == 0);
}

std::string refusal_sentence(uint16_t status) {
  switch (static_cast<HelloStatus>(status)) {
    case HelloStatus::version: return "protocol version not supported by the clone; update both sides to the same release.";
    case HelloStatus::unknown_pair: return "the clone refused: it is paired with another original; check pair_id and the secret file on both sticks.";
    case HelloStatus::busy: return "the clone is busy with another session; try again later.";
    case HelloStatus::ok: break;
  }
  return "the clone refused the session with unknown status " + std::to_string(status) + ".";
}

int refusal_errno(uint16_t status) {
  switch (static_cast<HelloStatus>(status)) {
    case HelloStatus::version: return EPROTONOSUPPORT;
    case HelloStatus::busy: return EBUSY;
    default: return ECONNREFUSED;
  }
}

}  // namespace

std::string hello_status_name(uint16_t status) {
  switch (static_cast<HelloStatus>(status)) {
    case HelloStatus::ok: return "ok";
    case HelloStatus::version: return "version";
    case HelloStatus::unknown_pair: return "unknown_pair";
    case HelloStatus::busy: return "busy";
  }
  return "status " + std::to_string(status);
}

// ---------------------------------------------------------------- client

struct ClientHandshake::State {
  enum class Phase { initial, hello_sent, authenticated, failed };
  Phase phase = Phase::initial;
  Key auth_key{};
  PairId pair_id{};
  uint8_t eph_sk[crypto_scalarmult_SCALARBYTES] = {};
  base::Bytes client_hello;  // transcript: the exact bytes sent
  SessionKeys keys;
  ~State() {
    sodium_memzero(auth_key.data(), auth_key.size());
    sodium_memzero(eph_sk, sizeof(eph_sk));
    sodium_memzero(&keys, sizeof(keys));
  }
};

ClientHandshake::ClientHandshake(const Key& auth_key, const PairId& pair_id) : state_(new State) {
  init_sodium();
  state_->auth_key = auth_key;
  state_->pair_id = pair_id;
}

ClientHandshake::~ClientHandshake() { delete state_; }

base::Bytes ClientHandshake::client_hello() {
  State& s = *state_;
  assert(s.phase == State::Phase::initial);
  uint8_t nonce[kNonceBytes];
  uint8_t pk[crypto_scalarmult_BYTES];
  randombytes_buf(nonce, sizeof(nonce));
  new_ephemeral(s.eph_sk, pk);
  base::ByteWriter w(s.client_hello);
  w.raw(kClientMagic, sizeof(kClientMagic));
  w.u16(kProtocolVersion);
  w.u16(0);  // reserved
  w.raw(s.pair_id.data(), s.pair_id.size());
  w.raw(nonce, sizeof(nonce));
  w.raw(pk, sizeof(pk));
  assert(s.client_hello.size() == kClientHelloBytes);
  s.phase = State::Phase::hello_sent;
  return s.client_hello;
}

// Format and refusal checks, before any cryptography.
static base::Status check_server_hello(base::ByteSpan m) {
  if (m.size() != kServerHelloBytes)
    return base::Status::error(EPROTO, "malformed ServerHello: " + std::to_string(m.size()) +
                                           " bytes instead of " + std::to_string(kServerHelloBytes) + ".");
  if (std::memcmp(m.data(), kServerMagic, sizeof(kServerMagic)) != 0)
    return base::Status::error(EPROTO, "the peer is not a clone daemon: its reply does not start with \"CLS1\".");
  const uint16_t status = base::load_le16(m.data() + 6);
  if (status != static_cast<uint16_t>(HelloStatus::ok))
    return base::Status::error(refusal_errno(status), refusal_sentence(status));
  const uint16_t version = base::load_le16(m.data() + 4);
  if (version != kProtocolVersion)
    return base::Status::error(EPROTONOSUPPORT, "the clone accepted but speaks protocol version " +
                                                    std::to_string(version) + " instead of " +
                                                    std::to_string(kProtocolVersion) + ".");
  return base::Status::ok();
}

base::Result<base::Bytes> ClientHandshake::on_server_hello(base::ByteSpan server_hello) {
  State& s = *state_;
  assert(s.phase == State::Phase::hello_sent);
  s.phase = State::Phase::failed;  // one attempt: a failed handshake is not retried on this object
  if (base::Status st = check_server_hello(server_hello); !st.is_ok()) {
    sodium_memzero(s.eph_sk, sizeof(s.eph_sk));
    return st;
  }
  Schedule k;
  const bool ok = derive_schedule(s.auth_key, s.eph_sk, server_hello.data() + kServerPkAt, s.client_hello,
                                  server_hello.first(kServerHelloHeadBytes), k);
  sodium_memzero(s.eph_sk, sizeof(s.eph_sk));
  if (!ok) return base::Status::error(EPROTO, "the clone sent an invalid ephemeral key; the handshake was aborted.");
  if (sodium_memcmp(k.server_mac.data(), server_hello.data() + kServerMacAt, kMacBytes) != 0)
    return base::Status::error(EACCES,
                               "the clone failed to prove it holds the pairing secret: it is not the paired "
                               "clone, or one side's secret file is wrong; re-pair the sticks if this persists.");
  s.keys.send = k.c2s;
  s.keys.recv = k.s2c;
  s.phase = State::Phase::authenticated;
  return base::Bytes(k.client_mac.begin(), k.client_mac.end());
}

const SessionKeys& ClientHandshake::keys() const {
  assert(state_->phase == State::Phase::authenticated);
  return state_->keys;
}

// ---------------------------------------------------------------- server

struct ServerHandshake::State {
  enum class Phase { await_hello, await_finish, authenticated, failed };
  Phase phase = Phase::await_hello;
  const Key* auth_key = nullptr;  // the caller's (guarded memory in the daemon), not a copy
  PairId pair_id{};
  Key expected_client_mac{};
  SessionKeys keys;  // valid to the caller only once authenticated
  ~State() {
    sodium_memzero(expected_client_mac.data(), expected_client_mac.size());
    sodium_memzero(&keys, sizeof(keys));
  }
};

ServerHandshake::ServerHandshake(const Key& auth_key, const PairId& pair_id) : state_(new State) {
  init_sodium();
  state_->auth_key = &auth_key;
  state_->pair_id = pair_id;
}

ServerHandshake::~ServerHandshake() { delete state_; }

base::Bytes ServerHandshake::refusal(HelloStatus status) {
  base::Bytes out;
  base::ByteWriter w(out);
  w.raw(kServerMagic, sizeof(kServerMagic));
  w.u16(kProtocolVersion);
  w.u16(static_cast<uint16_t>(status));
  out.resize(kServerHelloBytes, 0);  // nonce, key and MAC are zero in a refusal
  return out;
}

// Checks a ClientHello's form, version and pair; fills `reply` with a refusal
// when the peer deserves one.
static base::Status check_client_hello(base::ByteSpan m, const PairId& pair_id, base::Bytes& reply) {
  if (m.size() != kClientHelloBytes || std::memcmp(m.data(), kClientMagic, sizeof(kClientMagic)) != 0)
    return base::Status::error(EPROTO, "the peer did not open with a ClientHello (\"CLN1\", " +
                                           std::to_string(kClientHelloBytes) + " bytes); it is not an original.");
  const uint16_t version = base::load_le16(m.data() + 4);
  if (version != kProtocolVersion) {
    reply = ServerHandshake::refusal(HelloStatus::version);
    return base::Status::error(EPROTONOSUPPORT, "the original speaks protocol version " + std::to_string(version) +
                                                    ", this clone speaks " + std::to_string(kProtocolVersion) +
                                                    "; update both sides to the same release.");
  }
  if (std::memcmp(m.data() + kClientPairIdAt, pair_id.data(), kPairIdBytes) != 0) {
    reply = ServerHandshake::refusal(HelloStatus::unknown_pair);
    return base::Status::error(EACCES, "the peer asked for pair " + base::to_hex(m.subspan(kClientPairIdAt, kPairIdBytes)) +
                                           ", but this clone is paired as " + base::to_hex(pair_id) + ".");
  }
  return base::Status::ok();
}

bool ServerHandshake::would_answer(base::ByteSpan client_hello) const {
  base::Bytes refused;
  return state_->phase == State::Phase::await_hello &&
         check_client_hello(client_hello, state_->pair_id, refused).is_ok();
}

base::Status ServerHandshake::on_client_hello(base::ByteSpan client_hello, base::Bytes& reply) {
  State& s = *state_;
  reply.clear();
  if (s.phase != State::Phase::await_hello) {
    s.phase = State::Phase::failed;
    return base::Status::error(EPROTO, "the peer sent a second ClientHello; the handshake was aborted.");
  }
  s.phase = State::Phase::failed;  // until proven otherwise
  BASE_TRY(check_client_hello(client_hello, s.pair_id, reply));

  uint8_t eph_sk[crypto_scalarmult_SCALARBYTES];
  uint8_t eph_pk[crypto_scalarmult_BYTES];
  uint8_t nonce[kNonceBytes];
  new_ephemeral(eph_sk, eph_pk);
  randombytes_buf(nonce, sizeof(nonce));
  base::Bytes out;
  out.reserve(kServerHelloBytes);
  base::ByteWriter w(out);
  w.raw(kServerMagic, sizeof(kServerMagic));
  w.u16(kProtocolVersion);
  w.u16(static_cast<uint16_t>(HelloStatus::ok));
  w.raw(nonce, sizeof(nonce));
  w.raw(eph_pk, sizeof(eph_pk));
  assert(out.size() == kServerHelloHeadBytes);

  Schedule k;
  const bool ok = derive_schedule(*s.auth_key, eph_sk, client_hello.data() + kClientPkAt, client_hello, out, k);
  sodium_memzero(eph_sk, sizeof(eph_sk));
  if (!ok) return base::Status::error(EPROTO, "the peer sent an invalid ephemeral key; the handshake was aborted.");
  w.raw(k.server_mac.data(), k.server_mac.size());
  s.expected_client_mac = k.client_mac;
  s.keys.send = k.s2c;
  s.keys.recv = k.c2s;
  s.phase = State::Phase::await_finish;
  reply = std::move(out);
  return base::Status::ok();
}

base::Status ServerHandshake::on_client_finish(base::ByteSpan client_finish) {
  State& s = *state_;
  if (s.phase != State::Phase::await_finish) {
    s.phase = State::Phase::failed;
    return base::Status::error(EPROTO, "the peer sent a ClientFinish out of turn; the handshake was aborted.");
  }
  s.phase = State::Phase::failed;
  if (client_finish.size() != kClientFinishBytes)
    return base::Status::error(EPROTO, "malformed ClientFinish: " + std::to_string(client_finish.size()) +
                                           " bytes instead of " + std::to_string(kClientFinishBytes) + ".");
  const bool proven =
      sodium_memcmp(client_finish.data(), s.expected_client_mac.data(), s.expected_client_mac.size()) == 0;
  sodium_memzero(s.expected_client_mac.data(), s.expected_client_mac.size());
  if (!proven) {
    sodium_memzero(&s.keys, sizeof(s.keys));
    return base::Status::error(EACCES,
                               "the peer failed to prove it holds the pairing secret: it is not the paired "
                               "original, its secret file is wrong, or it replayed an old session.");
  }
  s.phase = State::Phase::authenticated;
  return base::Status::ok();
}

const SessionKeys& ServerHandshake::keys() const {
  assert(state_->phase == State::Phase::authenticated);
  return state_->keys;
}

}  // namespace proto
