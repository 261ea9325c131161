// SPDX-License-Identifier: MIT
#include <doctest/doctest.h>

#include <cerrno>

#include "wol/magic.h"

namespace {

wol::MacAddress mac(const char* text) { return wol::parse_mac(text).value(); }

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("MAC addresses parse with colons or dashes in either case, and format lower-case") {
  CHECK(wol::format_mac(mac("AA:bb:0C:dd:ee:01")) == "aa:bb:0c:dd:ee:01");
  CHECK(wol::format_mac(mac("aa-bb-cc-dd-ee-ff")) == "aa:bb:cc:dd:ee:ff");
  for (const char* bad : {"", "aa:bb:cc:dd:ee", "aa:bb:cc:dd:ee:ff:00", "aa:bb:cc:dd:ee:fg", "aabbccddeeff",
                          "aa:bb:cc:dd:ee:f", "aa bb cc dd ee ff", " aa:bb:cc:dd:ee:ff"}) {
    CAPTURE(bad);
    auto parsed = wol::parse_mac(bad);
    REQUIRE_FALSE(parsed.is_ok());
    CHECK(parsed.status().code() == EINVAL);
    CHECK(contains(parsed.status().message(), "is not a MAC address"));
  }
  CHECK(mac("ff:ff:ff:ff:ff:ff").is_broadcast());
  CHECK(mac("01:00:5e:00:00:01").is_multicast());
  CHECK(mac("00:00:00:00:00:00").is_zero());
}

TEST_CASE("SecureOn passwords parse as six or four hex pairs or a dotted quad") {
  CHECK(wol::parse_password("01:02:03:04:05:06").value() == wol::Password{1, 2, 3, 4, 5, 6});
  CHECK(wol::parse_password("de:ad:be:ef").value() == wol::Password{0xde, 0xad, 0xbe, 0xef});
  CHECK(wol::parse_password("192.168.0.255").value() == wol::Password{192, 168, 0, 255});
  for (const char* bad : {"", "1.2.3", "1.2.3.256", "1.2.3.4.5", "01:02:03:04:05", "x", "1..2.3"}) {
    CAPTURE(bad);
    CHECK_FALSE(wol::parse_password(bad).is_ok());
  }
}

TEST_CASE("a magic payload is six 0xFF and the MAC sixteen times, then the password") {
  const wol::MacAddress target = mac("52:54:00:12:34:56");
  const base::Bytes plain = wol::build_magic_payload(target);
  REQUIRE(plain.size() == 102);
  for (size_t i = 0; i < 6; ++i) CHECK(plain[i] == 0xFF);
  for (size_t r = 0; r < 16; ++r) {
    CAPTURE(r);
    CHECK(std::equal(target.bytes.begin(), target.bytes.end(), plain.begin() + 6 + r * 6));
  }
  auto parsed = wol::parse_magic_payload(plain);
  REQUIRE(parsed.is_ok());
  CHECK(parsed->target == target);
  CHECK(parsed->password.empty());

  for (const wol::Password& password : {wol::Password{1, 2, 3, 4}, wol::Password{9, 8, 7, 6, 5, 4}}) {
    CAPTURE(password.size());
    const base::Bytes secured = wol::build_magic_payload(target, password);
    CHECK(secured.size() == 102 + password.size());
    auto back = wol::parse_magic_payload(secured);
    REQUIRE(back.is_ok());
    CHECK(back->target == target);
    CHECK(back->password == password);
  }
}

TEST_CASE("malformed magic payloads are rejected with the reason") {
  const wol::MacAddress target = mac("52:54:00:12:34:56");
  base::Bytes payload = wol::build_magic_payload(target);

  base::Bytes short_one(payload.begin(), payload.end() - 1);
  auto parsed = wol::parse_magic_payload(short_one);
  CHECK(parsed.status().code() == EBADMSG);
  CHECK(contains(parsed.status().message(), "got 101 bytes"));

  base::Bytes odd_password = payload;
  odd_password.insert(odd_password.end(), {1, 2, 3, 4, 5});
  CHECK(contains(wol::parse_magic_payload(odd_password).status().message(), "got 107 bytes"));

  base::Bytes bad_sync = payload;
  bad_sync[3] = 0xFE;
  CHECK(contains(wol::parse_magic_payload(bad_sync).status().message(), "six 0xFF"));

  base::Bytes bad_repeat = payload;
  bad_repeat[6 + 9 * 6 + 2] ^= 0x01;  // the tenth copy
  CHECK(contains(wol::parse_magic_payload(bad_repeat).status().message(), "repetition 10"));

  const base::Bytes all_ff(102, 0xFF);
  CHECK(contains(wol::parse_magic_payload(all_ff).status().message(), "broadcast"));
}

TEST_CASE("a magic packet is found anywhere in a frame, and only a whole one") {
  const wol::MacAddress target = mac("02:00:00:aa:bb:cc");
  const wol::MacAddress src = mac("02:00:00:11:22:33");
  const base::Bytes frame = wol::build_magic_frame(mac("ff:ff:ff:ff:ff:ff"), src, target);
  REQUIRE(frame.size() == 116);
  CHECK(frame[12] == 0x08);
  CHECK(frame[13] == 0x42);
  // The broadcast destination is a run of 0xFF too: the scanner must skip it.
  auto found = wol::find_magic_packet(frame);
  REQUIRE(found);
  CHECK(found->target == target);
  CHECK(found->offset_bytes == 14);
  CHECK(found->trailing_bytes == 0);

  // Inside a UDP-ish payload with junk around it, and a 4-byte password after.
  base::Bytes wrapped = {0x45, 0x00, 0xFF, 0xFF, 0x01};
  const base::Bytes payload = wol::build_magic_payload(target, {7, 7, 7, 7});
  wrapped.insert(wrapped.end(), payload.begin(), payload.end());
  wrapped.insert(wrapped.end(), {0, 0});
  found = wol::find_magic_packet(wrapped);
  REQUIRE(found);
  CHECK(found->offset_bytes == 5);
  CHECK(found->trailing_bytes == 6);

  // A longer sync stream still finds the MAC after the last six 0xFF.
  base::Bytes long_sync(3, 0xFF);
  long_sync.insert(long_sync.end(), payload.begin(), payload.end());
  found = wol::find_magic_packet(long_sync);
  REQUIRE(found);
  CHECK(found->target == target);

  CHECK_FALSE(wol::find_magic_packet(base::Bytes(payload.begin(), payload.begin() + 101)));
  base::Bytes broken = payload;
  broken[6 + 15 * 6] ^= 0x80;  // the last copy differs
  CHECK_FALSE(wol::find_magic_packet(broken));
  CHECK_FALSE(wol::find_magic_packet(base::Bytes(200, 0xFF)));
  CHECK_FALSE(wol::find_magic_packet(base::Bytes{}));
}

TEST_CASE("the raw sender refuses a bad interface name with a sentence, before opening anything") {
  wol::SendOptions options;
  options.target = mac("02:00:00:aa:bb:cc");
  options.interface = "a-name-far-too-long-for-linux";
  auto status = wol::send_raw(options);
  CHECK(status.code() == EINVAL);
  CHECK(contains(status.message(), "is not a valid interface name"));
  CHECK_FALSE(wol::interface_mac("").is_ok());
}
