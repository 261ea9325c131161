// SPDX-License-Identifier: MIT
#include <doctest/doctest.h>

#include "proto/messages.h"

TEST_CASE("health_report and health_ack round-trip; malformed ones are refused") {
  const base::Bytes report = {1, 2, 3, 4, 5};
  base::Bytes msg;
  proto::encode_health_report(42, report, msg);
  CHECK(msg.size() == 1 + 8 + 4 + report.size());
  base::Result<proto::MsgType> t1 = proto::peek_type(msg);
  REQUIRE(t1.is_ok());
  CHECK(*t1 == proto::MsgType::health_report);
  uint64_t id = 0;
  base::ByteSpan got;
  REQUIRE(proto::decode_health_report(msg, id, got).is_ok());
  CHECK(id == 42);
  CHECK(base::Bytes(got.begin(), got.end()) == report);
  for (size_t n = 0; n < msg.size(); ++n) CHECK_FALSE(proto::decode_health_report(base::ByteSpan(msg).first(n), id, got).is_ok());
  base::Bytes longer = msg;
  longer.push_back(9);
  CHECK_FALSE(proto::decode_health_report(longer, id, got).is_ok());
  base::Bytes huge;
  huge.push_back(32);
  for (int i = 0; i < 8; ++i) huge.push_back(1);
  for (uint8_t b : {0xff, 0xff, 0xff, 0x00}) huge.push_back(b);
  base::Status s = proto::decode_health_report(huge, id, got);
  CHECK(s.code() == EMSGSIZE);
  base::Bytes zero_id;
  proto::encode_health_report(0, report, zero_id);
  CHECK_FALSE(proto::decode_health_report(zero_id, id, got).is_ok());

  base::Bytes ack;
  proto::encode_health_ack(7, ack);
  base::Result<proto::MsgType> t2 = proto::peek_type(ack);
  REQUIRE(t2.is_ok());
  CHECK(*t2 == proto::MsgType::health_ack);
  REQUIRE(proto::decode_health_ack(ack, id).is_ok());
  CHECK(id == 7);
  ack.push_back(0);
  CHECK_FALSE(proto::decode_health_ack(ack, id).is_ok());
  const base::Bytes unknown = {34};
  CHECK_FALSE(proto::peek_type(unknown).is_ok());
}
