// SPDX-License-Identifier: MIT
// AEAD framing after the handshake (docs/PROTOCOL.md, "Frames").
//
// Wire: u32 length L (of ciphertext + 16-byte tag), then L bytes.
// ChaCha20-Poly1305 (IETF); the 4 length bytes are the associated data; the
// nonce is 4 zero bytes then a 64-bit little-endian counter per direction
// starting at 0, never sent: a dropped, duplicated, reordered or replayed
// frame fails authentication. L is checked against the limit *before* any
// allocation.
#pragma once

#include <cstdint>
#include <memory>

#include "base/aligned_buffer.h"
#include "base/bytes.h"
#include "base/status.h"
#include "proto/guarded.h"
#include "proto/handshake.h"

struct evp_cipher_ctx_st;  // OpenSSL's EVP_CIPHER_CTX

namespace proto {

// An OpenSSL cipher context, reused frame after frame; it holds the key only
// while a frame is sealed or opened (proto/frame.cpp).
struct CipherContextFree {
  void operator()(evp_cipher_ctx_st* ctx) const;
};
using CipherContext = std::unique_ptr<evp_cipher_ctx_st, CipherContextFree>;

inline constexpr size_t kFrameLengthBytes = 4;
inline constexpr size_t kAeadTagBytes = 16;
inline constexpr size_t kMaxFrameWireBytes = kFrameLengthBytes + kMaxFramePlainBytes + kAeadTagBytes;
// Offset of a frame's plaintext inside Frame::storage: chosen so that the
// payload of a write record (after its 64-byte header) is 4096-aligned and
// can go to an O_DIRECT write without a copy.
inline constexpr size_t kFramePlainOffset = base::kIoAlignmentBytes - kWriteHeaderBytes;

// Seals plaintext into wire frames. One per direction per session. The key
// is copied into guarded memory (proto/guarded.h) and wiped with the sealer.
class FrameSealer {
 public:
  explicit FrameSealer(const Key& key);
  ~FrameSealer();
  // Appends length + ciphertext + tag of `plain` (1..kMaxFramePlainBytes) to `out`.
  void seal(base::ByteSpan plain, base::Bytes& out);
  uint64_t frames_sealed() const { return counter_; }

 private:
  Guarded<Key> key_;
  CipherContext ctx_;
  uint64_t counter_ = 0;
};

// One decrypted frame. The plaintext is at storage.data() + kFramePlainOffset.
struct Frame {
  base::AlignedBuffer storage;
  size_t plain_bytes = 0;
  base::ByteSpan plain() const { return {storage.data() + kFramePlainOffset, plain_bytes}; }
  uint8_t* plain_data() { return storage.data() + kFramePlainOffset; }
  const uint8_t* plain_data() const { return storage.data() + kFramePlainOffset; }
};

// Reassembles and opens frames from a byte stream, in order. Not thread-safe.
// The key is kept in guarded memory, like the sealer's.
// Memory: at most one frame of the announced length (<= the limit) plus the
// 4 length bytes is held at a time.
class FrameReader {
 public:
  explicit FrameReader(const Key& key, uint32_t max_plain_bytes = kMaxFramePlainBytes);
  ~FrameReader();

  // Consumes bytes from `in` (advancing it) until a whole frame is opened or
  // `in` is empty. Returns:
  //  - ok with `out` filled (has_frame = true) when a frame was completed;
  //  - ok with has_frame = false when more bytes are needed;
  //  - an error (too_large length, authentication failure): the stream is dead.
  base::Status feed(base::ByteSpan& in, Frame& out, bool& has_frame);
  // Where the rest of the current frame's body can be read to directly,
  // sparing the copy feed() makes: the body's missing bytes when the length
  // is known and at least `min_bytes` of the body are missing; empty
  // otherwise (then read into a buffer and feed() it).
  base::MutableByteSpan body_space(size_t min_bytes);
  // `n` (1..body_space().size()) bytes were read to the start of
  // body_space(): the same results as feed() of those bytes.
  base::Status body_filled(size_t n, Frame& out, bool& has_frame);
  // Bytes of the current partial frame held (for accounting and tests).
  size_t buffered_bytes() const;

 private:
  base::Status start_body();       // length complete: check the limit, then allocate
  base::Status open(Frame& out);   // body complete: authenticate, decrypt, hand off
  base::Status fail(base::Status s);  // marks the stream dead and frees the buffer

  Guarded<Key> key_;
  uint32_t max_plain_bytes_;
  CipherContext ctx_;
  uint64_t counter_ = 0;
  uint8_t len_bytes_[kFrameLengthBytes] = {};
  size_t len_have_ = 0;
  uint32_t wire_len_ = 0;        // ciphertext + tag, once the length is read
  base::AlignedBuffer storage_;  // ciphertext lands at kFramePlainOffset, tag after it
  size_t body_have_ = 0;
  bool failed_ = false;          // after an error every feed() fails: the stream is dead
};

}  // namespace proto
