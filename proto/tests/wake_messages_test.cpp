// SPDX-License-Identifier: MIT
// The wake messages round-trip, and their decoders refuse damaged bytes.
#include <doctest/doctest.h>

#include <cerrno>

#include "proto/wake_messages.h"

using namespace proto;

namespace {

MsgType type_of(const base::Bytes& b) {
  base::Result<MsgType> t = peek_type(b);
  REQUIRE(t.is_ok());
  return *t;
}

WakeInfo sample_info() {
  WakeInfo m;
  m.arm = WakeArm::unsupported;
  m.flags = kWakeFlagSleepsWhenIdle;
  m.mac = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55};
  m.idle_sleep_s = 600;
  m.interface = "enp0s31f6";
  m.broadcast = "192.168.1.255";
  m.reason = "veth cannot wake the machine on a magic packet.";
  return m;
}

}  // namespace

TEST_CASE("wake_info, going_to_sleep and sleep_request round-trip and peek as their types") {
  base::Bytes b;
  encode_wake_info(sample_info(), b);
  REQUIRE(peek_type(b).is_ok());
  CHECK(type_of(b) == MsgType::wake_info);
  WakeInfo w;
  REQUIRE(decode_wake_info(b, w).is_ok());
  CHECK(w.arm == WakeArm::unsupported);
  CHECK(w.flags == kWakeFlagSleepsWhenIdle);
  CHECK(w.mac == sample_info().mac);
  CHECK(w.idle_sleep_s == 600);
  CHECK(w.interface == "enp0s31f6");
  CHECK(w.broadcast == "192.168.1.255");
  CHECK(w.reason == sample_info().reason);

  b.clear();
  encode_going_to_sleep({41, 40, "idle for 600 s"}, b);
  CHECK(type_of(b) == MsgType::going_to_sleep);
  GoingToSleep g;
  REQUIRE(decode_going_to_sleep(b, g).is_ok());
  CHECK(g.applied_seq == 41);
  CHECK(g.committed_seq == 40);
  CHECK(g.reason == "idle for 600 s");

  b.clear();
  encode_sleep_request(b);
  CHECK(b.size() == 5);
  CHECK(type_of(b) == MsgType::sleep_request);
  CHECK(decode_sleep_request(b).is_ok());
}

TEST_CASE("types 43..47 of the wake range are still unknown") {
  for (uint8_t t = 43; t <= 47; ++t) {
    CAPTURE(t);
    const uint8_t msg[1] = {t};
    CHECK_FALSE(peek_type(base::ByteSpan(msg, 1)).is_ok());
  }
}

TEST_CASE("the wake decoders refuse every truncation, trailing bytes and bad fields") {
  base::Bytes full;
  encode_wake_info(sample_info(), full);
  for (size_t n = 0; n < full.size(); ++n) {
    CAPTURE(n);
    WakeInfo w;
    CHECK(decode_wake_info(base::ByteSpan(full.data(), n), w).code() == EPROTO);
  }
  base::Bytes longer = full;
  longer.push_back(0);
  WakeInfo w;
  CHECK(decode_wake_info(longer, w).code() == EPROTO);

  base::Bytes bad_arm = full;
  bad_arm[1] = 6;
  CHECK(decode_wake_info(bad_arm, w).code() == EPROTO);

  WakeInfo big = sample_info();
  big.interface = std::string(200, 'x');  // clipped on encode to the limit
  base::Bytes clipped;
  encode_wake_info(big, clipped);
  REQUIRE(decode_wake_info(clipped, w).is_ok());
  CHECK(w.interface.size() == kWakeTextBytesMax);
  // A hand-made length over the limit is too large.
  base::Bytes over(full.begin(), full.begin() + 14);
  over.push_back(65);
  over.push_back(0);
  over.insert(over.end(), 65, 'x');
  CHECK(decode_wake_info(over, w).code() == EMSGSIZE);

  base::Bytes g;
  encode_going_to_sleep({1, 1, "x"}, g);
  for (size_t n = 0; n < g.size(); ++n) {
    CAPTURE(n);
    GoingToSleep out;
    CHECK(decode_going_to_sleep(base::ByteSpan(g.data(), n), out).code() == EPROTO);
  }
  base::Bytes r;
  encode_sleep_request(r);
  r.push_back(0);
  CHECK(decode_sleep_request(r).code() == EPROTO);
  CHECK(decode_sleep_request(g).code() == EPROTO);
}
