// SPDX-License-Identifier: MIT
// Fuzz target: proto::FrameReader, the first code that meets a peer's bytes
// after the handshake, fed in split sizes taken from the input.
//
// Input: byte 0 flags, byte 1 limit, bytes 2..3 split seed, then the body.
//  - flags bit 0 clear: the body is the wire stream itself (arbitrary bytes:
//    lengths, limits, authentication failures).
//  - flags bit 0 set: the body is a list of plaintexts (u16 length, bytes)
//    that the target seals with the same key, so that mutations reach the
//    opened-frame path and the message decoders behind it; bit 1 then flips
//    one byte of the sealed stream at a seeded place.
//  - limit: 0 is the protocol's limit, n > 0 a reader limit of n * 64 bytes.
// In sealed mode the reader must hand out exactly the frames that were
// sealed, in order, never one that was not (a flipped byte must fail
// authentication, or leave the reader waiting for bytes that never come).
// Always: a frame over the limit is refused, the stream stays dead after an
// error, and the plaintext lies so that a write payload is 4096-aligned.
// Bytes go in through feed(), or now and then straight into body_space().
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "proto/frame.h"
#include "fuzz/fuzz_support.h"

namespace {

constexpr size_t kPrefixBytes = 4;
constexpr size_t kPlaintextsMax = 16;

// xorshift64: split sizes and the flip position come from the input's seed,
// so a run is a function of the input alone.
struct Splitter {
  uint64_t state;
  uint64_t next() {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  }
};

std::vector<base::Bytes> read_plaintexts(base::ByteSpan body) {
  std::vector<base::Bytes> out;
  base::ByteReader r(body);
  while (r.remaining() >= 2 && out.size() < kPlaintextsMax) {
    const size_t n = std::min<size_t>(r.u16(), r.remaining());
    if (n == 0) continue;  // a sealer never sends an empty frame
    base::ByteSpan p = r.span(n);
    out.emplace_back(p.begin(), p.end());
  }
  return out;
}

struct Expect {
  std::vector<base::Bytes> frames;  // what may open, in order (sealed mode)
  bool sealed = false;
  bool intact = false;              // nothing flipped
};

// The two ways the daemon reads: feed() of a buffer, or (now and then, as
// the daemon does for a large body) straight into body_space() and then
// body_filled(), which must give the same results.
base::Status take(proto::FrameReader& reader, Splitter& split, base::ByteSpan& in, proto::Frame& frame, bool& has) {
  const uint64_t r = split.next();
  if ((r & 3) == 0) {
    const base::MutableByteSpan space = reader.body_space(1 + (r >> 2) % 256);
    if (!space.empty()) {
      const size_t n = std::min(space.size(), in.size());
      std::memcpy(space.data(), in.data(), n);
      in = in.subspan(n);
      return reader.body_filled(n, frame, has);
    }
  }
  return reader.feed(in, frame, has);
}

void run(const proto::Key& key, uint32_t limit, Splitter& split, const base::Bytes& stream, const Expect& expect) {
  proto::FrameReader reader(key, limit);
  size_t opened = 0;
  bool failed = false;
  size_t at = 0;
  while (at < stream.size() && !failed) {
    // Chunks of 1..64 bytes mostly, now and then up to the whole rest.
    const uint64_t r = split.next();
    const size_t left = stream.size() - at;
    const size_t chunk = (r & 7) == 0 ? left : std::min<size_t>(left, 1 + (r >> 3) % 64);
    base::ByteSpan in(stream.data() + at, chunk);
    at += chunk;
    while (!in.empty()) {
      proto::Frame frame;
      bool has = false;
      const size_t before = in.size();
      if (!take(reader, split, in, frame, has).is_ok()) {
        failed = true;
        break;
      }
      FUZZ_CHECK(in.size() < before);  // progress on every call
      FUZZ_CHECK(reader.buffered_bytes() <= proto::kFrameLengthBytes + limit + proto::kAeadTagBytes);
      if (!has) continue;
      FUZZ_CHECK(frame.plain_bytes >= 1 && frame.plain_bytes <= limit);
      FUZZ_CHECK(reinterpret_cast<uintptr_t>(frame.plain_data() + proto::kWriteHeaderBytes) %
                     base::kIoAlignmentBytes == 0);
      // Sealed here: only what was sealed opens, in order. (A raw stream may
      // be a genuine one, as the seeds are: anything that opens is decoded.)
      if (expect.sealed) {
        FUZZ_CHECK(opened < expect.frames.size());
        const base::Bytes& want = expect.frames[opened];
        FUZZ_CHECK(frame.plain_bytes == want.size() &&
                   std::memcmp(frame.plain().data(), want.data(), want.size()) == 0);
      }
      ++opened;
      fuzz::decode_any(frame.plain());
    }
  }
  if (failed) {
    proto::Frame frame;
    bool has = true;
    base::ByteSpan more(stream.data(), std::min<size_t>(stream.size(), 8));
    FUZZ_CHECK(!reader.feed(more, frame, has).is_ok() && !has);  // a dead stream stays dead
    FUZZ_CHECK(reader.buffered_bytes() <= proto::kFrameLengthBytes);  // and holds no frame buffer
  }
  if (expect.sealed && expect.intact) {
    // Every frame within the limit opens; the first one over it kills the stream.
    size_t fit = 0;
    while (fit < expect.frames.size() && expect.frames[fit].size() <= limit) ++fit;
    FUZZ_CHECK(opened == fit);
    FUZZ_CHECK(failed == (fit < expect.frames.size()));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < kPrefixBytes) return 0;
  static const proto::Key key = fuzz::fixed_frame_key();
  const uint8_t flags = data[0];
  const uint32_t limit = data[1] == 0 ? proto::kMaxFramePlainBytes : uint32_t{data[1]} * 64;
  Splitter split{0x9e3779b97f4a7c15ull ^ base::load_le16(data + 2)};
  const base::ByteSpan body(data + kPrefixBytes, size - kPrefixBytes);

  Expect expect;
  base::Bytes stream;
  if ((flags & 1) == 0) {
    stream.assign(body.begin(), body.end());
  } else {
    expect.sealed = true;
    expect.frames = read_plaintexts(body);
    proto::FrameSealer sealer(key);
    for (const base::Bytes& p : expect.frames) sealer.seal(p, stream);
    expect.intact = (flags & 2) == 0 || stream.empty();
    if (!expect.intact) stream[split.next() % stream.size()] ^= static_cast<uint8_t>(1 + split.next() % 255);
  }
  run(key, limit, split, stream, expect);
  return 0;
}
