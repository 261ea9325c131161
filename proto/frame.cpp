// SPDX-License-Identifier: MIT
// AEAD frames: docs/PROTOCOL.md, "Frames". The counter nonce is implicit on
// both sides, so order, loss and replay all show up as authentication failures
// without any sequence field on the wire.
#include "proto/frame.h"

#include <openssl/evp.h>
#include <sodium.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <string>

namespace proto {
namespace {

// ChaCha20-Poly1305 of RFC 8439 (libsodium's crypto_aead_chacha20poly1305_ietf,
// byte for byte: frame_test seals and opens against it), computed by OpenSSL,
// whose code for this CPU (AVX-512 here) runs it 1.3-2.5 times as fast as
// libsodium 1.0.18's (docs/PERFORMANCE.md, "In service, lanes for mixed
// lengths, and the AEAD from OpenSSL").
static_assert(kAeadTagBytes == crypto_aead_chacha20poly1305_ietf_ABYTES);
static_assert(sizeof(Key) == crypto_aead_chacha20poly1305_ietf_KEYBYTES);
static_assert(crypto_aead_chacha20poly1305_ietf_NPUBBYTES == 12);
static_assert(kFramePlainOffset + kWriteHeaderBytes == base::kIoAlignmentBytes);
static_assert(kMaxFramePlainBytes + kAeadTagBytes <= std::numeric_limits<uint32_t>::max());

inline constexpr uint32_t kMinWireBytes = 1 + kAeadTagBytes;  // an empty plaintext is never sent

using Nonce = uint8_t[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];

// 4 zero bytes, then the frame counter little-endian.
void make_nonce(uint64_t counter, Nonce& nonce) {
  std::memset(nonce, 0, 4);
  base::store_le64(nonce + 4, counter);
}

// Fetched once: looking the algorithm up by name at every frame costs more
// than sealing a small one.
const EVP_CIPHER* aead_cipher() {
  static EVP_CIPHER* const cipher = EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", nullptr);
  if (cipher == nullptr) {
    std::fputs("proto: OpenSSL has no ChaCha20-Poly1305 (its default provider did not load)\n", stderr);
    std::abort();
  }
  return cipher;
}

CipherContext new_context() {
  CipherContext ctx(EVP_CIPHER_CTX_new());
  if (!ctx) throw std::bad_alloc();
  return ctx;
}

// The key enters OpenSSL's context for one frame only: EVP_CIPHER_CTX_reset
// wipes (OPENSSL_clear_free) and frees what the frame's init allocated, so
// between frames the key is in the guarded page alone.
struct OneFrame {
  EVP_CIPHER_CTX* ctx;
  ~OneFrame() { EVP_CIPHER_CTX_reset(ctx); }
};

enum class Sealed { ok, forged, failed_inside };

// One frame through ChaCha20-Poly1305, the 4 length bytes its associated
// data: seals `bytes` of `in` into `out` and writes the tag to `tag`, or
// opens them (`out` may be `in`) against `tag`. Only an opened frame's tag
// check depends on the bytes received; any other failure is OpenSSL's own.
Sealed run_frame(EVP_CIPHER_CTX* ctx, bool seal, const Key& key, uint64_t counter, const uint8_t* len,
                 const uint8_t* in, uint8_t* out, size_t bytes, uint8_t* tag) {
  Nonce nonce;
  make_nonce(counter, nonce);
  const int length = static_cast<int>(bytes);
  int n = 0, ad = 0, last = 0;
  const OneFrame frame{ctx};
  if (EVP_CipherInit_ex2(ctx, aead_cipher(), key.data(), nonce, seal ? 1 : 0, nullptr) != 1 ||
      (!seal && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, kAeadTagBytes, tag) != 1) ||
      EVP_CipherUpdate(ctx, nullptr, &ad, len, kFrameLengthBytes) != 1 ||
      EVP_CipherUpdate(ctx, out, &n, in, length) != 1 || n != length)
    return Sealed::failed_inside;
  if (EVP_CipherFinal_ex(ctx, out + n, &last) != 1 || last != 0) return seal ? Sealed::failed_inside : Sealed::forged;
  if (seal && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, kAeadTagBytes, tag) != 1) return Sealed::failed_inside;
  return Sealed::ok;
}

}  // namespace

void CipherContextFree::operator()(evp_cipher_ctx_st* ctx) const { EVP_CIPHER_CTX_free(ctx); }

FrameSealer::FrameSealer(const Key& key) : key_(key), ctx_(new_context()) { key_.seal(); }

FrameSealer::~FrameSealer() = default;  // Guarded wipes the key

// `plain` must not point into `out`: growing `out` may move it.
void FrameSealer::seal(base::ByteSpan plain, base::Bytes& out) {
  assert(!plain.empty() && plain.size() <= kMaxFramePlainBytes);
  assert(counter_ < std::numeric_limits<uint64_t>::max());  // a nonce is never reused
  const uint32_t wire_len = static_cast<uint32_t>(plain.size() + kAeadTagBytes);
  const size_t at = out.size();
  out.resize(at + kFrameLengthBytes + wire_len);
  uint8_t* len = out.data() + at;
  uint8_t* cipher = len + kFrameLengthBytes;
  base::store_le32(len, wire_len);
  if (run_frame(ctx_.get(), true, *key_, counter_, len, plain.data(), cipher, plain.size(), cipher + plain.size()) !=
      Sealed::ok) {
    // Only a failed allocation inside OpenSSL gets here; a frame half sealed
    // must never go out.
    std::fputs("proto: OpenSSL failed to seal a frame\n", stderr);
    std::abort();
  }
  ++counter_;
}

FrameReader::FrameReader(const Key& key, uint32_t max_plain_bytes)
    : key_(key), max_plain_bytes_(max_plain_bytes), ctx_(new_context()) {
  assert(max_plain_bytes >= 1 && max_plain_bytes <= kMaxFramePlainBytes);
  key_.seal();
}

FrameReader::~FrameReader() = default;  // Guarded wipes the key

size_t FrameReader::buffered_bytes() const { return len_have_ + body_have_; }

base::Status FrameReader::fail(base::Status s) {
  failed_ = true;
  storage_ = base::AlignedBuffer();  // a dead stream holds no memory
  body_have_ = 0;
  return s;
}

// The length prefix is complete: check it, then (only then) allocate.
base::Status FrameReader::start_body() {
  wire_len_ = base::load_le32(len_bytes_);
  const uint64_t max_wire = uint64_t{max_plain_bytes_} + kAeadTagBytes;
  if (wire_len_ > max_wire)
    return fail(base::Status::error(EMSGSIZE, "frame of " + std::to_string(wire_len_) +
                                                  " bytes is over the limit of " + std::to_string(max_wire) + "."));
  if (wire_len_ < kMinWireBytes)
    return fail(base::Status::error(EPROTO, "frame of " + std::to_string(wire_len_) +
                                                " bytes is under the minimum of " + std::to_string(kMinWireBytes) + "."));
  storage_ = base::AlignedBuffer(kFramePlainOffset + wire_len_);
  body_have_ = 0;
  return base::Status::ok();
}

// The whole ciphertext and tag are in storage_: authenticate and decrypt in place.
base::Status FrameReader::open(Frame& out) {
  const size_t plain_bytes = wire_len_ - kAeadTagBytes;
  uint8_t* c = storage_.data() + kFramePlainOffset;
  // Decrypts in place, then checks the tag: on a failure what the buffer
  // holds is never handed out (fail() drops it), only the error.
  const Sealed opened = run_frame(ctx_.get(), false, *key_, counter_, len_bytes_, c, c, plain_bytes, c + plain_bytes);
  if (opened == Sealed::failed_inside)
    return fail(base::Status::error(ENOMEM, "frame " + std::to_string(counter_) +
                                                " could not be opened: OpenSSL failed inside (out of memory?)."));
  if (opened == Sealed::forged)
    return fail(base::Status::error(EBADMSG, "frame " + std::to_string(counter_) +
                                                 " failed authentication (corrupted or forged)."));
  out.storage = std::move(storage_);
  out.plain_bytes = plain_bytes;
  storage_ = base::AlignedBuffer();
  len_have_ = 0;
  body_have_ = 0;
  wire_len_ = 0;
  ++counter_;
  return base::Status::ok();
}

base::Status FrameReader::feed(base::ByteSpan& in, Frame& out, bool& has_frame) {
  has_frame = false;
  if (failed_) return base::Status::error(EPIPE, "the frame stream already failed; the session must be closed.");
  while (!in.empty()) {
    if (len_have_ < kFrameLengthBytes) {
      const size_t n = std::min(kFrameLengthBytes - len_have_, in.size());
      std::memcpy(len_bytes_ + len_have_, in.data(), n);
      len_have_ += n;
      in = in.subspan(n);
      if (len_have_ < kFrameLengthBytes) break;
      BASE_TRY(start_body());
    }
    const size_t n = std::min(size_t{wire_len_} - body_have_, in.size());
    std::memcpy(storage_.data() + kFramePlainOffset + body_have_, in.data(), n);
    in = in.subspan(n);
    BASE_TRY(body_filled(n, out, has_frame));
    if (has_frame) return base::Status::ok();
  }
  return base::Status::ok();
}

base::MutableByteSpan FrameReader::body_space(size_t min_bytes) {
  if (failed_ || len_have_ < kFrameLengthBytes) return {};
  const size_t missing = size_t{wire_len_} - body_have_;
  if (missing == 0 || missing < min_bytes) return {};
  return {storage_.data() + kFramePlainOffset + body_have_, missing};
}

base::Status FrameReader::body_filled(size_t n, Frame& out, bool& has_frame) {
  has_frame = false;
  if (failed_) return base::Status::error(EPIPE, "the frame stream already failed; the session must be closed.");
  if (len_have_ < kFrameLengthBytes || n > size_t{wire_len_} - body_have_)
    return fail(base::Status::error(EINVAL, "frame reader: " + std::to_string(n) +
                                                " bytes reported for a frame body that has no room for them."));
  body_have_ += n;
  if (body_have_ == wire_len_) {
    BASE_TRY(open(out));
    has_frame = true;
  }
  return base::Status::ok();
}

}  // namespace proto
