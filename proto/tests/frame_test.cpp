// SPDX-License-Identifier: MIT
// AEAD frames: reassembly from any split of the stream, authentication of
// every bit, order enforced by the implicit counter, and the length limit
// checked before a byte is allocated.
#include <doctest/doctest.h>

#include <sodium.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

#include "proto/frame.h"

using namespace proto;

namespace {

Key test_key(uint8_t fill) {
  REQUIRE(sodium_init() >= 0);
  Key k;
  k.fill(fill);
  return k;
}

base::Bytes pattern(size_t n, uint8_t seed) {
  base::Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed + i * 31);
  return b;
}

base::Bytes plain_of(const Frame& f) { return base::Bytes(f.plain().begin(), f.plain().end()); }

// Feeds the whole of `wire` and collects the frames opened; stops at an error.
base::Status read_all(FrameReader& reader, base::ByteSpan wire, std::vector<base::Bytes>& frames) {
  while (!wire.empty()) {
    Frame f;
    bool has = false;
    BASE_TRY(reader.feed(wire, f, has));
    if (has) frames.push_back(plain_of(f));
  }
  return base::Status::ok();
}

}  // namespace

TEST_CASE("frames of every size class open to their plaintext") {
  FrameSealer sealer(test_key(1));
  FrameReader reader(test_key(1));
  for (size_t n : {size_t{1}, size_t{17}, size_t{4096}, size_t{kMaxFramePlainBytes}}) {
    CAPTURE(n);
    const base::Bytes plain = pattern(n, static_cast<uint8_t>(n));
    base::Bytes wire;
    sealer.seal(plain, wire);
    CHECK(wire.size() == kFrameLengthBytes + n + kAeadTagBytes);
    CHECK(base::load_le32(wire.data()) == n + kAeadTagBytes);
    std::vector<base::Bytes> frames;
    REQUIRE(read_all(reader, wire, frames).is_ok());
    REQUIRE(frames.size() == 1);
    CHECK(frames[0] == plain);
    CHECK(reader.buffered_bytes() == 0);
  }
  CHECK(sealer.frames_sealed() == 4);
}

TEST_CASE("a frame delivered one byte at a time opens once, at its last byte") {
  FrameSealer sealer(test_key(2));
  FrameReader reader(test_key(2));
  const base::Bytes plain = pattern(300, 5);
  base::Bytes wire;
  sealer.seal(plain, wire);
  sealer.seal(plain, wire);
  int opened = 0;
  for (size_t i = 0; i < wire.size(); ++i) {
    CAPTURE(i);
    base::ByteSpan in(&wire[i], 1);
    Frame f;
    bool has = false;
    REQUIRE(reader.feed(in, f, has).is_ok());
    CHECK(in.empty());
    const bool frame_end = (i + 1) % (wire.size() / 2) == 0;
    CHECK(has == frame_end);
    if (has) {
      CHECK(plain_of(f) == plain);
      ++opened;
    } else {
      CHECK(reader.buffered_bytes() == (i % (wire.size() / 2)) + 1);
    }
  }
  CHECK(opened == 2);
}

TEST_CASE("several frames in one buffer come out one per feed, in order") {
  FrameSealer sealer(test_key(3));
  FrameReader reader(test_key(3));
  base::Bytes wire;
  for (uint8_t i = 1; i <= 5; ++i) sealer.seal(pattern(i * 10, i), wire);
  base::ByteSpan in = wire;
  for (uint8_t i = 1; i <= 5; ++i) {
    CAPTURE(static_cast<int>(i));
    Frame f;
    bool has = false;
    REQUIRE(reader.feed(in, f, has).is_ok());
    REQUIRE(has);
    CHECK(plain_of(f) == pattern(i * 10, i));
  }
  CHECK(in.empty());
}

TEST_CASE("a flipped bit anywhere in a frame never yields a frame") {
  FrameSealer sealer(test_key(4));
  base::Bytes wire;
  sealer.seal(pattern(20, 9), wire);
  for (size_t bit = 0; bit < wire.size() * 8; ++bit) {
    CAPTURE(bit);
    base::Bytes bad = wire;
    bad[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    FrameReader reader(test_key(4));
    base::ByteSpan in = bad;
    Frame f;
    bool has = false;
    base::Status s = reader.feed(in, f, has);
    CHECK_FALSE(has);
    if (bit >= kFrameLengthBytes * 8) {
      CHECK(s.code() == EBADMSG);
      CHECK(s.message() == "frame 0 failed authentication (corrupted or forged).");
    } else if (s.is_ok()) {
      CHECK(reader.buffered_bytes() == bad.size());  // a longer length: still waiting
    }
  }
}

TEST_CASE("an oversize length is refused before anything is allocated, and the stream stays dead") {
  FrameReader reader(test_key(5));
  uint8_t len[4];
  base::store_le32(len, kMaxFramePlainBytes + kAeadTagBytes + 1);
  base::ByteSpan in(len, 4);
  Frame f;
  bool has = false;
  base::Status s = reader.feed(in, f, has);
  CHECK(s.code() == EMSGSIZE);
  CHECK(s.message().find("is over the limit of") != std::string::npos);
  CHECK(reader.buffered_bytes() <= kFrameLengthBytes);
  base::Bytes more(100, 0);
  base::ByteSpan rest = more;
  CHECK_FALSE(reader.feed(rest, f, has).is_ok());
  CHECK_FALSE(has);

  FrameReader huge(test_key(5));
  base::store_le32(len, 0xffffffffu);
  base::ByteSpan in2(len, 4);
  CHECK(huge.feed(in2, f, has).code() == EMSGSIZE);
  CHECK(huge.buffered_bytes() <= kFrameLengthBytes);
}

TEST_CASE("a reader's own lower limit and the minimum frame length are enforced") {
  FrameSealer sealer(test_key(6));
  base::Bytes wire;
  sealer.seal(pattern(101, 1), wire);
  FrameReader small(test_key(6), 100);
  std::vector<base::Bytes> frames;
  CHECK(read_all(small, wire, frames).code() == EMSGSIZE);
  CHECK(frames.empty());

  for (uint32_t n : {0u, 1u, 16u}) {
    CAPTURE(n);
    FrameReader reader(test_key(6));
    uint8_t len[4];
    base::store_le32(len, n);
    base::ByteSpan in(len, 4);
    Frame f;
    bool has = false;
    CHECK(reader.feed(in, f, has).code() == EPROTO);
  }
}

TEST_CASE("reordered, duplicated and dropped frames fail authentication") {
  FrameSealer sealer(test_key(7));
  base::Bytes a, b;
  sealer.seal(pattern(50, 1), a);
  sealer.seal(pattern(50, 2), b);
  std::vector<base::Bytes> frames;

  FrameReader reordered(test_key(7));
  CHECK(read_all(reordered, b, frames).code() == EBADMSG);  // also: a dropped first frame

  FrameReader duplicated(test_key(7));
  REQUIRE(read_all(duplicated, a, frames).is_ok());
  base::Status s = read_all(duplicated, a, frames);
  CHECK(s.code() == EBADMSG);
  CHECK(s.message() == "frame 1 failed authentication (corrupted or forged).");

  FrameReader wrong_key(test_key(8));
  CHECK(read_all(wrong_key, a, frames).code() == EBADMSG);
}

TEST_CASE("the payload of a write record lands 4096-aligned for direct I/O") {
  FrameSealer sealer(test_key(9));
  FrameReader reader(test_key(9));
  RecordHeader h;
  h.type = MsgType::write;
  h.seq = 1;
  h.epoch = 1;
  h.length_bytes = 8192;
  const base::Bytes payload = pattern(8192, 3);
  base::Bytes plain, wire;
  encode_record(h, payload, plain);
  for (int i = 0; i < 3; ++i) sealer.seal(plain, wire);
  base::ByteSpan in = wire;
  for (int i = 0; i < 3; ++i) {
    CAPTURE(i);
    Frame f;
    bool has = false;
    REQUIRE(reader.feed(in, f, has).is_ok());
    REQUIRE(has);
    CHECK(reinterpret_cast<uintptr_t>(f.plain_data() + kWriteHeaderBytes) % 4096 == 0);
    RecordHeader out;
    base::ByteSpan p;
    REQUIRE(decode_record(f.plain(), out, p).is_ok());
    CHECK(p.data() == f.plain_data() + kWriteHeaderBytes);
    CHECK(base::Bytes(p.begin(), p.end()) == payload);
  }
}

namespace {

// Reads `wire` as the daemon does: a first piece of `first` bytes through
// feed(), then whatever body_space(min_bytes) offers directly, in pieces of
// at most `piece`, and the rest through feed() again.
base::Status read_direct(FrameReader& reader, base::ByteSpan wire, size_t first, size_t piece, size_t min_bytes,
                         std::vector<base::Bytes>& frames, size_t& direct_bytes) {
  while (!wire.empty()) {
    Frame f;
    bool has = false;
    base::MutableByteSpan body = reader.body_space(min_bytes);
    if (body.empty()) {
      base::ByteSpan in = wire.first(std::min(first, wire.size()));
      const size_t before = in.size();
      BASE_TRY(reader.feed(in, f, has));
      wire = wire.subspan(before - in.size());
    } else {
      const size_t n = std::min({piece, body.size(), wire.size()});
      std::memcpy(body.data(), wire.data(), n);
      wire = wire.subspan(n);
      direct_bytes += n;
      BASE_TRY(reader.body_filled(n, f, has));
    }
    if (has) frames.push_back(plain_of(f));
  }
  return base::Status::ok();
}

}  // namespace

TEST_CASE("a frame body read straight into the reader opens as when fed, for any split") {
  FrameSealer sealer(test_key(8));
  base::Bytes wire;
  std::vector<base::Bytes> plains;
  for (size_t n : {size_t{100}, size_t{kMaxFramePlainBytes}, size_t{5000}, size_t{300000}}) {
    plains.push_back(pattern(n, static_cast<uint8_t>(n)));
    sealer.seal(plains.back(), wire);
  }
  for (size_t first : {size_t{3}, size_t{4096}, size_t{262144}}) {
    for (size_t piece : {size_t{1000}, size_t{65536}, size_t{2u << 20}}) {
      CAPTURE(first);
      CAPTURE(piece);
      FrameReader reader(test_key(8));
      std::vector<base::Bytes> frames;
      size_t direct = 0;
      REQUIRE(read_direct(reader, wire, first, piece, 4096, frames, direct).is_ok());
      CHECK(frames == plains);
      CHECK(direct > 0);
      CHECK(reader.buffered_bytes() == 0);
    }
  }
}

TEST_CASE("body_space is empty until a length is known, below its minimum and after a failure") {
  FrameSealer sealer(test_key(9));
  base::Bytes wire;
  sealer.seal(pattern(10000, 1), wire);
  FrameReader reader(test_key(9));
  CHECK(reader.body_space(1).empty());  // no length yet
  base::ByteSpan in = base::ByteSpan(wire).first(kFrameLengthBytes + 100);
  Frame f;
  bool has = false;
  REQUIRE(reader.feed(in, f, has).is_ok());
  const size_t missing = wire.size() - kFrameLengthBytes - 100;
  CHECK(reader.body_space(1).size() == missing);
  CHECK(reader.body_space(missing + 1).empty());
  // Reporting more than there is room for is refused, and kills the stream.
  base::Status s = reader.body_filled(missing + 1, f, has);
  CHECK(s.code() == EINVAL);
  CHECK_FALSE(has);
  CHECK(reader.body_space(1).empty());
  base::ByteSpan rest = base::ByteSpan(wire).subspan(kFrameLengthBytes + 100);
  CHECK(reader.feed(rest, f, has).code() == EPIPE);
}

TEST_CASE("a flipped bit in a body read directly fails authentication") {
  FrameSealer sealer(test_key(10));
  base::Bytes wire;
  sealer.seal(pattern(200000, 3), wire);
  wire[wire.size() / 2] ^= 0x10;
  FrameReader reader(test_key(10));
  std::vector<base::Bytes> frames;
  size_t direct = 0;
  base::Status s = read_direct(reader, wire, 4096, 65536, 4096, frames, direct);
  CHECK(s.code() == EBADMSG);
  CHECK(frames.empty());
  CHECK(direct > 0);
}

TEST_CASE("frames are libsodium's ChaCha20-Poly1305 (IETF), byte for byte, both ways") {
  // The construction of docs/PROTOCOL.md, computed here with libsodium: the
  // length as associated data, the nonce 4 zero bytes and the counter. Pins the
  // wire to it whatever library seals and opens the frames.
  const Key key = test_key(0x3c);
  FrameSealer sealer(key);
  FrameReader reader(key);
  uint64_t counter = 0;
  for (size_t size : {size_t{1}, size_t{63}, size_t{64}, size_t{65}, size_t{4096 + 64}, size_t{16384 + 64},
                      size_t{(1u << 20) + 64}, size_t{kMaxFramePlainBytes}}) {
    CAPTURE(size);
    const base::Bytes plain = pattern(size, static_cast<uint8_t>(size));
    uint8_t len[kFrameLengthBytes];
    base::store_le32(len, static_cast<uint32_t>(size + kAeadTagBytes));
    uint8_t nonce[12] = {};
    base::store_le64(nonce + 4, counter);
    base::Bytes want(kFrameLengthBytes + size + kAeadTagBytes);
    std::memcpy(want.data(), len, kFrameLengthBytes);
    unsigned long long tag_len = 0;
    REQUIRE(crypto_aead_chacha20poly1305_ietf_encrypt_detached(
                want.data() + kFrameLengthBytes, want.data() + kFrameLengthBytes + size, &tag_len, plain.data(), size,
                len, kFrameLengthBytes, nullptr, nonce, key.data()) == 0);
    base::Bytes sealed;
    sealer.seal(plain, sealed);
    CHECK(sealed == want);
    // libsodium's frame opens in the reader to the same plaintext.
    std::vector<base::Bytes> frames;
    REQUIRE(read_all(reader, want, frames).is_ok());
    REQUIRE(frames.size() == 1);
    CHECK(frames[0] == plain);
    ++counter;
  }
}
