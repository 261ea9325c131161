// SPDX-License-Identifier: MIT
// The handshake: both sides derive matching keys, and every way a stranger,
// a replay or a tampered byte could get in ends in an error instead.
#include <doctest/doctest.h>

#include <sodium.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "proto/frame.h"
#include "proto/handshake.h"

using namespace proto;

namespace {

Key random_key() {
  REQUIRE(sodium_init() >= 0);
  Key k;
  randombytes_buf(k.data(), k.size());
  return k;
}

PairId pair_id(uint8_t fill) {
  PairId p;
  p.fill(fill);
  return p;
}

bool contains(const base::Status& s, const std::string& text) {
  return s.message().find(text) != std::string::npos;
}

// A frame sealed with `send` opens with `recv`.
bool frame_opens(const Key& send, const Key& recv) {
  FrameSealer sealer(send);
  FrameReader reader(recv);
  const base::Bytes plain = {9, 8, 7};
  base::Bytes wire;
  sealer.seal(plain, wire);
  base::ByteSpan in = wire;
  Frame f;
  bool has = false;
  if (!reader.feed(in, f, has).is_ok() || !has) return false;
  return base::Bytes(f.plain().begin(), f.plain().end()) == plain;
}

// The three messages of one session, as they crossed the wire.
struct Transcript {
  base::Bytes client_hello, server_hello, client_finish;
};

}  // namespace

TEST_CASE("a paired original and clone derive the same keys, one per direction") {
  const Key auth = random_key();
  ClientHandshake client(auth, pair_id(1));
  ServerHandshake server(auth, pair_id(1));
  base::Bytes reply;
  const base::Bytes hello = client.client_hello();
  CHECK(hello.size() == kClientHelloBytes);
  REQUIRE(server.on_client_hello(hello, reply).is_ok());
  CHECK(reply.size() == kServerHelloBytes);
  base::Result<base::Bytes> finish = client.on_server_hello(reply);
  REQUIRE(finish.is_ok());
  CHECK(finish->size() == kClientFinishBytes);
  REQUIRE(server.on_client_finish(*finish).is_ok());

  CHECK(client.keys().send == server.keys().recv);
  CHECK(client.keys().recv == server.keys().send);
  CHECK(client.keys().send != client.keys().recv);
  CHECK(frame_opens(client.keys().send, server.keys().recv));
  CHECK(frame_opens(server.keys().send, client.keys().recv));
  CHECK_FALSE(frame_opens(client.keys().send, client.keys().recv));  // a reflected frame fails
}

TEST_CASE("two sessions of the same pair get different keys") {
  const Key auth = random_key();
  Key first{};
  for (int i = 0; i < 2; ++i) {
    ClientHandshake client(auth, pair_id(1));
    ServerHandshake server(auth, pair_id(1));
    base::Bytes reply;
    REQUIRE(server.on_client_hello(client.client_hello(), reply).is_ok());
    base::Result<base::Bytes> finish = client.on_server_hello(reply);
    REQUIRE(finish.is_ok());
    REQUIRE(server.on_client_finish(*finish).is_ok());
    if (i == 0) first = client.keys().send;
    else CHECK(first != client.keys().send);
  }
}

TEST_CASE("a clone with another secret fails to prove itself to the original") {
  ClientHandshake client(random_key(), pair_id(1));
  const Key server_key = random_key();
  ServerHandshake server(server_key, pair_id(1));
  base::Bytes reply;
  REQUIRE(server.on_client_hello(client.client_hello(), reply).is_ok());
  base::Result<base::Bytes> finish = client.on_server_hello(reply);
  REQUIRE_FALSE(finish.is_ok());
  CHECK(finish.status().code() == EACCES);
  CHECK(contains(finish.status(), "the clone failed to prove it holds the pairing secret"));
}

TEST_CASE("an original with another secret fails at its finish, whatever it sends") {
  const Key auth = random_key();
  ServerHandshake server(auth, pair_id(1));
  ClientHandshake impostor(random_key(), pair_id(1));
  base::Bytes reply;
  REQUIRE(server.on_client_hello(impostor.client_hello(), reply).is_ok());
  base::Bytes guess(kClientFinishBytes);
  randombytes_buf(guess.data(), guess.size());
  base::Status s = server.on_client_finish(guess);
  CHECK(s.code() == EACCES);
  CHECK(contains(s, "failed to prove it holds the pairing secret"));
  CHECK_FALSE(server.on_client_finish(guess).is_ok());  // no second try
}

TEST_CASE("a clone of another pair refuses, and the original says so") {
  const Key auth = random_key();
  ClientHandshake client(auth, pair_id(1));
  ServerHandshake server(auth, pair_id(2));
  base::Bytes reply;
  base::Status s = server.on_client_hello(client.client_hello(), reply);
  CHECK_FALSE(s.is_ok());
  CHECK(reply == ServerHandshake::refusal(HelloStatus::unknown_pair));
  base::Result<base::Bytes> r = client.on_server_hello(reply);
  REQUIRE_FALSE(r.is_ok());
  CHECK(contains(r.status(), "the clone refused: it is paired with another original"));
}

TEST_CASE("a ClientHello of another protocol version is refused with the version status") {
  const Key auth = random_key();
  ClientHandshake client(auth, pair_id(1));
  ServerHandshake server(auth, pair_id(1));
  base::Bytes hello = client.client_hello();
  base::store_le16(hello.data() + 4, kProtocolVersion + 1);
  base::Bytes reply;
  CHECK(server.on_client_hello(hello, reply).code() == EPROTONOSUPPORT);
  CHECK(reply == ServerHandshake::refusal(HelloStatus::version));
  base::Result<base::Bytes> r = client.on_server_hello(reply);
  REQUIRE_FALSE(r.is_ok());
  CHECK(contains(r.status(), "protocol version not supported"));
}

TEST_CASE("a busy clone's refusal reads as a sentence") {
  ClientHandshake client(random_key(), pair_id(1));
  (void)client.client_hello();
  const base::Bytes busy = ServerHandshake::refusal(HelloStatus::busy);
  CHECK(busy.size() == kServerHelloBytes);
  CHECK(std::memcmp(busy.data(), "CLS1", 4) == 0);
  base::Result<base::Bytes> r = client.on_server_hello(busy);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == EBUSY);
  CHECK(contains(r.status(), "the clone is busy with another session"));
}

TEST_CASE("bytes that are not a ClientHello get no reply at all") {
  const Key server_key = random_key();
  ServerHandshake server(server_key, pair_id(1));
  ClientHandshake client(random_key(), pair_id(1));
  base::Bytes hello = client.client_hello();
  hello[0] = 'G';  // "GET / HTTP/1.1" would land here
  base::Bytes reply = {1, 2, 3};
  CHECK(server.on_client_hello(hello, reply).code() == EPROTO);
  CHECK(reply.empty());
  ServerHandshake short_server(server_key, pair_id(1));
  CHECK_FALSE(short_server.on_client_hello(base::ByteSpan(hello).first(10), reply).is_ok());
  CHECK(reply.empty());
}

TEST_CASE("the server rejects messages out of turn") {
  const Key auth = random_key();
  ServerHandshake server(auth, pair_id(1));
  CHECK(server.on_client_finish(base::Bytes(kClientFinishBytes, 0)).code() == EPROTO);

  ServerHandshake twice(auth, pair_id(1));
  ClientHandshake client(auth, pair_id(1));
  const base::Bytes hello = client.client_hello();
  base::Bytes reply;
  REQUIRE(twice.on_client_hello(hello, reply).is_ok());
  CHECK(twice.on_client_hello(hello, reply).code() == EPROTO);
  CHECK(reply.empty());
}

TEST_CASE("a recorded session replayed against a new clone handshake fails at the finish") {
  const Key auth = random_key();
  Transcript t;
  {
    ClientHandshake client(auth, pair_id(1));
    ServerHandshake server(auth, pair_id(1));
    t.client_hello = client.client_hello();
    REQUIRE(server.on_client_hello(t.client_hello, t.server_hello).is_ok());
    base::Result<base::Bytes> finish = client.on_server_hello(t.server_hello);
    REQUIRE(finish.is_ok());
    t.client_finish = *finish;
    REQUIRE(server.on_client_finish(t.client_finish).is_ok());
  }
  ServerHandshake fresh(auth, pair_id(1));
  base::Bytes reply;
  REQUIRE(fresh.on_client_hello(t.client_hello, reply).is_ok());  // cannot tell yet
  CHECK(reply != t.server_hello);                                  // a fresh nonce and key
  CHECK(fresh.on_client_finish(t.client_finish).code() == EACCES);
}

TEST_CASE("a flipped byte anywhere in a ServerHello fails the original's check") {
  const Key auth = random_key();
  for (size_t i = 0; i < kServerHelloBytes; ++i) {
    CAPTURE(i);
    ClientHandshake client(auth, pair_id(1));
    ServerHandshake server(auth, pair_id(1));
    base::Bytes reply;
    REQUIRE(server.on_client_hello(client.client_hello(), reply).is_ok());
    reply[i] ^= 0x01;
    CHECK_FALSE(client.on_server_hello(reply).is_ok());
  }
}

TEST_CASE("a flipped byte anywhere in a ClientFinish fails the clone's check") {
  const Key auth = random_key();
  for (size_t i = 0; i < kClientFinishBytes; ++i) {
    CAPTURE(i);
    ClientHandshake client(auth, pair_id(1));
    ServerHandshake server(auth, pair_id(1));
    base::Bytes reply;
    REQUIRE(server.on_client_hello(client.client_hello(), reply).is_ok());
    base::Result<base::Bytes> finish = client.on_server_hello(reply);
    REQUIRE(finish.is_ok());
    base::Bytes bad = *finish;
    bad[i] ^= 0x80;
    CHECK(server.on_client_finish(bad).code() == EACCES);
  }
}

TEST_CASE("a flipped byte anywhere in a ClientHello stops the handshake on one side or the other") {
  const Key auth = random_key();
  for (size_t i = 0; i < kClientHelloBytes; ++i) {
    CAPTURE(i);
    ClientHandshake client(auth, pair_id(1));
    ServerHandshake server(auth, pair_id(1));
    base::Bytes hello = client.client_hello();
    hello[i] ^= 0x01;
    base::Bytes reply;
    if (!server.on_client_hello(hello, reply).is_ok()) continue;  // magic, version, pair, bad key
    // Reserved bits, nonce or key: the transcripts differ, so the clone's MAC does not verify.
    CHECK_FALSE(client.on_server_hello(reply).is_ok());
  }
}

TEST_CASE("a low-order ephemeral key from the peer is rejected") {
  const Key auth = random_key();
  ClientHandshake client(auth, pair_id(1));
  ServerHandshake server(auth, pair_id(1));
  base::Bytes hello = client.client_hello();
  std::memset(hello.data() + kClientHelloBytes - 32, 0, 32);  // the identity point
  base::Bytes reply;
  CHECK(server.on_client_hello(hello, reply).code() == EPROTO);
  CHECK(reply.empty());
}

namespace {

Key keyed_hash(const Key& key, base::ByteSpan data) {
  Key out;
  crypto_generichash(out.data(), out.size(), data.data(), data.size(), key.data(), key.size());
  return out;
}

base::Bytes concat(std::initializer_list<base::ByteSpan> parts) {
  base::Bytes out;
  for (base::ByteSpan p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

base::ByteSpan text(const char* s) { return {reinterpret_cast<const uint8_t*>(s), std::strlen(s)}; }

}  // namespace

// The test plays the original from docs/PROTOCOL.md alone, so a change of the
// key schedule that both classes would share still shows up here.
TEST_CASE("the key schedule is the one docs/PROTOCOL.md specifies") {
  const Key auth = random_key();
  ServerHandshake server(auth, pair_id(3));
  uint8_t sk[32], pk[32], nonce[32];
  randombytes_buf(sk, sizeof(sk));
  randombytes_buf(nonce, sizeof(nonce));
  REQUIRE(crypto_scalarmult_base(pk, sk) == 0);
  const PairId pid = pair_id(3);
  const uint8_t head[8] = {'C', 'L', 'N', '1', kProtocolVersion, 0, 0, 0};
  const base::Bytes hello = concat({head, pid, nonce, pk});
  base::Bytes reply;
  REQUIRE(server.on_client_hello(hello, reply).is_ok());
  REQUIRE(reply.size() == 104);
  CHECK(std::memcmp(reply.data(), "CLS1\x01\x00\x00\x00", 8) == 0);

  uint8_t dh[32];
  REQUIRE(crypto_scalarmult(dh, sk, reply.data() + 40) == 0);
  Key th;
  const base::Bytes transcript = concat({hello, base::ByteSpan(reply).first(72)});
  crypto_generichash(th.data(), th.size(), transcript.data(), transcript.size(), nullptr, 0);
  const Key prk = keyed_hash(auth, concat({text("cloned handshake v1"), dh, th}));
  CHECK(std::memcmp(keyed_hash(prk, text("server finished")).data(), reply.data() + 72, 32) == 0);
  const Key client_mac = keyed_hash(prk, text("client finished"));
  REQUIRE(server.on_client_finish(client_mac).is_ok());
  CHECK(server.keys().recv == keyed_hash(prk, text("original to clone")));
  CHECK(server.keys().send == keyed_hash(prk, text("clone to original")));
}
