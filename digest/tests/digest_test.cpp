// SPDX-License-Identifier: MIT
// Keyed BLAKE2b-256 digests.
#include <doctest/doctest.h>
#include <sodium.h>

#include <vector>

#include "base/bytes.h"
#include "digest/digest.h"

namespace {

std::vector<uint8_t> pattern(size_t bytes, uint8_t seed) {
  std::vector<uint8_t> out(bytes);
  for (size_t i = 0; i < bytes; ++i) out[i] = static_cast<uint8_t>(i * 31 + seed);
  return out;
}

digest::DigestKey key_of(uint8_t value) {
  digest::DigestKey key;
  key.fill(value);
  return key;
}

}  // namespace

TEST_CASE("a keyed digest equals libsodium's BLAKE2b-256 with that key") {
  const std::vector<uint8_t> data = pattern(4096, 3);
  const digest::DigestKey key = key_of(0x5a);
  digest::Digest expected{};
  REQUIRE(sodium_init() >= 0);
  REQUIRE(crypto_generichash(expected.data(), expected.size(), data.data(), data.size(), key.data(), key.size()) == 0);
  CHECK(digest::keyed_digest(key, base::ByteSpan(data)) == expected);
  CHECK(digest::digest_equal(digest::keyed_digest(key, base::ByteSpan(data)), expected));
}

TEST_CASE("a different key or different data gives a different digest") {
  const std::vector<uint8_t> data = pattern(4096, 3);
  const digest::Digest base_digest = digest::keyed_digest(key_of(1), base::ByteSpan(data));
  CHECK_FALSE(digest::digest_equal(base_digest, digest::keyed_digest(key_of(2), base::ByteSpan(data))));
  std::vector<uint8_t> changed = pattern(4096, 3);
  changed[4095] ^= 1;
  CHECK_FALSE(digest::digest_equal(base_digest, digest::keyed_digest(key_of(1), base::ByteSpan(changed))));
  CHECK(digest::digest_equal(base_digest, digest::keyed_digest(key_of(1), base::ByteSpan(data))));
}

TEST_CASE("the digest of no bytes is defined and keyed") {
  const digest::Digest a = digest::keyed_digest(key_of(1), {});
  const digest::Digest b = digest::keyed_digest(key_of(2), {});
  CHECK_FALSE(digest::digest_equal(a, b));
}
