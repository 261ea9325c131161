// SPDX-License-Identifier: MIT
// Keyed BLAKE2b-256 digests.
#include <doctest/doctest.h>
#include <sodium.h>

#include <algorithm>
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

namespace {

digest::Digest sodium_digest(const digest::DigestKey& key, base::ByteSpan data) {
  digest::Digest out{};
  REQUIRE(sodium_init() >= 0);
  REQUIRE(crypto_generichash(out.data(), out.size(), data.data(), data.size(), key.data(), key.size()) == 0);
  return out;
}

// Every lane width this CPU can run, one at a time included.
std::vector<digest::Lanes> runnable_lanes() {
  std::vector<digest::Lanes> out;
  for (digest::Lanes l : {digest::Lanes::one, digest::Lanes::four, digest::Lanes::eight})
    if (static_cast<int>(l) <= static_cast<int>(digest::widest_lanes())) out.push_back(l);
  return out;
}

}  // namespace

TEST_CASE("digests in lanes equal libsodium's, byte for byte, at every length around a block") {
  MESSAGE("this CPU: " << digest::lanes_name(digest::widest_lanes()));
  std::vector<uint8_t> data(70'000 * 9 + 64);  // room for the odd offsets past each 70,000
  randombytes_buf(data.data(), data.size());
  digest::DigestKey key{};
  randombytes_buf(key.data(), key.size());
  for (digest::Lanes lanes : runnable_lanes()) {
    for (size_t length :
         {0, 1, 7, 8, 9, 127, 128, 129, 255, 256, 257, 383, 384, 385, 4095, 4096, 4097, 65536, 69'999}) {
      for (size_t count : {1, 2, 3, 4, 5, 7, 8, 9, 16, 17}) {
        CAPTURE(digest::lanes_name(lanes));
        CAPTURE(length);
        CAPTURE(count);
        // Pieces at odd offsets, none aligned, each with its own bytes.
        std::vector<base::ByteSpan> pieces;
        for (size_t i = 0; i < count; ++i) pieces.emplace_back(data.data() + 3 + (i % 9) * 70'000 + i / 9, length);
        std::vector<digest::Digest> got(count);
        digest::keyed_digests(key, pieces, got, lanes);
        for (size_t i = 0; i < count; ++i) CHECK(got[i] == sodium_digest(key, pieces[i]));
      }
    }
  }
}

TEST_CASE("digests in lanes of pieces of mixed lengths, and of random ones") {
  std::vector<uint8_t> data(1 << 20);
  randombytes_buf(data.data(), data.size());
  digest::DigestKey key{};
  randombytes_buf(key.data(), key.size());
  for (digest::Lanes lanes : runnable_lanes()) {
    CAPTURE(digest::lanes_name(lanes));
    for (int round = 0; round < 50; ++round) {
      const size_t count = 1 + randombytes_uniform(20);
      std::vector<base::ByteSpan> pieces;
      for (size_t i = 0; i < count; ++i) {
        // Runs of one length broken by others, as a batch of records is.
        const size_t length = randombytes_uniform(4) == 0 ? randombytes_uniform(9000) : 4096;
        pieces.emplace_back(data.data() + randombytes_uniform(static_cast<uint32_t>(data.size() - length)), length);
      }
      std::vector<digest::Digest> got(count);
      digest::keyed_digests(key, pieces, got, lanes);
      for (size_t i = 0; i < count; ++i) CHECK(got[i] == sodium_digest(key, pieces[i]));
    }
  }
}

TEST_CASE("digests in lanes of interleaved lengths, across more than one window of 64") {
  // 4 KiB records between others, as a batch of a real write stream has
  // them: the lanes group pieces of one length that are not neighbours.
  std::vector<uint8_t> data(1 << 20);
  randombytes_buf(data.data(), data.size());
  const digest::DigestKey key = key_of(11);
  for (digest::Lanes lanes : runnable_lanes()) {
    CAPTURE(digest::lanes_name(lanes));
    for (size_t count : {3, 17, 63, 64, 65, 130}) {
      CAPTURE(count);
      std::vector<base::ByteSpan> pieces;
      for (size_t i = 0; i < count; ++i) {
        const size_t length = i % 3 == 0 ? 4096 : i % 3 == 1 ? 512 + i : 65536;
        pieces.emplace_back(data.data() + (i * 7919) % (data.size() - length), length);
      }
      std::vector<digest::Digest> got(count);
      digest::keyed_digests(key, pieces, got, lanes);
      for (size_t i = 0; i < count; ++i) CHECK(got[i] == sodium_digest(key, pieces[i]));
    }
  }
}

TEST_CASE("extent digests cover the data in order, the last extent cut where the data ends") {
  std::vector<uint8_t> data(9 * 65536 + 1000);
  randombytes_buf(data.data(), data.size());
  const digest::DigestKey key = key_of(7);
  for (digest::Lanes lanes : runnable_lanes()) {
    CAPTURE(digest::lanes_name(lanes));
    for (uint64_t extent : {4096u, 65536u, 1u << 20}) {
      CAPTURE(extent);
      std::vector<digest::Digest> got = {digest::Digest{}};  // appended after what is there
      digest::append_extent_digests(key, data, extent, got, lanes);
      const size_t n = (data.size() + extent - 1) / extent;
      REQUIRE(got.size() == 1 + n);
      CHECK(got[0] == digest::Digest{});
      for (size_t i = 0; i < n; ++i) {
        const size_t at = i * extent;
        CHECK(got[1 + i] ==
              sodium_digest(key, base::ByteSpan(data).subspan(at, std::min<size_t>(extent, data.size() - at))));
      }
    }
    std::vector<digest::Digest> none;
    digest::append_extent_digests(key, {}, 4096, none, lanes);
    CHECK(none.empty());
  }
}
