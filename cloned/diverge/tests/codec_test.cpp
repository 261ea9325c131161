// SPDX-License-Identifier: MIT
// The stored form of a fingerprint: round trip, and refusals of damaged bytes.
#include <doctest/doctest.h>

#include <random>

#include "cloned/diverge/fingerprint.h"
#include "cloned/diverge/tests/images.h"

using namespace diverge_test;

namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

diverge::Fingerprint sample() {
  blockio::MemoryDevice dev(64 << 20);
  write_gpt(dev, {{0, 2048, 10239}, {1, 10240, 20479}});
  write_ext4_superblock(dev, 2048 * kSector, 7, 1795000000);
  auto fp = diverge::take_fingerprint(dev, digest::DigestKey{4});
  REQUIRE(fp.is_ok());
  return fp.value();
}

void same(const diverge::Fingerprint& a, const diverge::Fingerprint& b) {
  CHECK(a.disk_bytes == b.disk_bytes);
  REQUIRE(a.regions.size() == b.regions.size());
  for (size_t i = 0; i < a.regions.size(); ++i) {
    const auto& x = a.regions[i];
    const auto& y = b.regions[i];
    CAPTURE(x.name);
    CHECK(x.kind == y.kind);
    CHECK(x.name == y.name);
    CHECK(x.where == y.where);
    CHECK(x.offset_bytes == y.offset_bytes);
    CHECK(x.length_bytes == y.length_bytes);
    CHECK(x.digest == y.digest);
    CHECK(x.facts == y.facts);
  }
}

std::string refusal(const base::Bytes& bytes) {
  diverge::Fingerprint out;
  base::Status st = diverge::decode(bytes, out);
  REQUIRE_FALSE(st.is_ok());
  CHECK(st.code() == EINVAL);
  CHECK(contains(st.message(), "the stored disk fingerprint is damaged"));
  return st.message();
}

// Offset of the first region's kind byte, and of its name's length.
constexpr size_t kFirstRegion = 4 + 1 + 8 + 2;

}  // namespace

TEST_CASE("a fingerprint survives encode and decode unchanged") {
  const diverge::Fingerprint fp = sample();
  REQUIRE(fp.regions.size() >= 7);
  diverge::Fingerprint back;
  REQUIRE(diverge::decode(diverge::encode(fp), back).is_ok());
  same(fp, back);
  CHECK(diverge::differences(fp, back).empty());
  CHECK(back.bytes_read == 0);  // the cost is not stored

  diverge::Fingerprint empty;
  REQUIRE(diverge::decode(diverge::encode(empty), back).is_ok());
  CHECK(back.regions.empty());
}

TEST_CASE("every truncation of an encoding is refused with a clear error") {
  const base::Bytes bytes = diverge::encode(sample());
  for (size_t n = 0; n < bytes.size(); ++n) {
    CAPTURE(n);
    const std::string why = refusal(base::Bytes(bytes.begin(), bytes.begin() + long(n)));
    CHECK((contains(why, "ends") || contains(why, "magic")));
  }
}

TEST_CASE("corrupted encodings are refused and say what was wrong") {
  const diverge::Fingerprint fp = sample();
  const base::Bytes good = diverge::encode(fp);
  base::Bytes b = good;

  SUBCASE("magic") { b[0] = 'X'; CHECK(contains(refusal(b), "magic 'CDFP'")); }
  SUBCASE("version") { b[4] = 2; CHECK(contains(refusal(b), "version 2, this build reads version 1")); }
  SUBCASE("region count over the bound") {
    base::store_le16(&b[13], 300);
    CHECK(contains(refusal(b), "300 regions (at most 256)"));
  }
  SUBCASE("region count larger than what follows") {
    base::store_le16(&b[13], uint16_t(fp.regions.size() + 1));
    CHECK(contains(refusal(b), "ends inside a region"));
  }
  SUBCASE("unknown kind") { b[kFirstRegion] = 99; CHECK(contains(refusal(b), "unknown region kind 99")); }
  SUBCASE("name too long") {
    base::store_le16(&b[kFirstRegion + 1], 1000);
    CHECK(contains(refusal(b), "a region name of 1000 bytes (at most 128)"));
  }
  SUBCASE("control character in a name") {
    b[kFirstRegion + 3] = 0x1B;
    CHECK(contains(refusal(b), "not printable"));
  }
  SUBCASE("trailing bytes") { b.push_back(0); CHECK(contains(refusal(b), "1 bytes after the last region")); }
  SUBCASE("a region outside the disk") {
    diverge::Fingerprint bad = fp;
    bad.regions[0].offset_bytes = bad.disk_bytes;
    CHECK(contains(refusal(diverge::encode(bad)), "region 'first 1 MiB' lies outside the disk"));
  }
  SUBCASE("a name twice") {
    diverge::Fingerprint bad = fp;
    bad.regions[1].name = bad.regions[0].name;
    CHECK(contains(refusal(diverge::encode(bad)), "appears twice"));
  }
}

TEST_CASE("flipped bytes never crash decode; what it accepts encodes back the same") {
  const base::Bytes good = diverge::encode(sample());
  const uint64_t seed = std::random_device{}();
  CAPTURE(seed);
  std::mt19937_64 rng(seed);
  int refused = 0;
  for (int round = 0; round < 2000; ++round) {
    base::Bytes b = good;
    for (int flips = 1 + int(rng() % 3); flips > 0; --flips) b[rng() % b.size()] ^= uint8_t(1 + rng() % 255);
    diverge::Fingerprint out;
    if (diverge::decode(b, out).is_ok()) CHECK(diverge::encode(out) == b);
    else ++refused;
  }
  CHECK(refused > 0);
}
