// SPDX-License-Identifier: MIT
#include "digest/digest.h"

#include <sodium.h>

#include <algorithm>
#include <cassert>
#include <cstdlib>
#include <cstring>

#if DIGEST_HAVE_LANES
#include "digest/lanes.h"
#endif

namespace digest {

static_assert(kDigestBytes >= crypto_generichash_BYTES_MIN && kDigestBytes <= crypto_generichash_BYTES_MAX);
static_assert(std::tuple_size_v<DigestKey> >= crypto_generichash_KEYBYTES_MIN &&
              std::tuple_size_v<DigestKey> <= crypto_generichash_KEYBYTES_MAX);

namespace {

// libsodium must be initialised once before use; a function-local static makes
// the first call thread-safe without a separate init step for every caller.
void ensure_sodium() {
  static const int init_result = sodium_init();
  if (init_result < 0) std::abort();  // no usable randomness or CPU features: nothing sane to do
}

constexpr size_t kMaxLanes = 8;

// `width` digests of `length` bytes each, one per lane.
void hash_lanes(Lanes width, const DigestKey& key, const uint8_t* const* msgs, size_t length, uint8_t* out) {
#if DIGEST_HAVE_LANES
  static_assert(std::tuple_size_v<DigestKey> == lanes::kKeyBytes && kDigestBytes == lanes::kOutBytes);
  if (width == Lanes::eight) return lanes::blake2b_keyed_x8_avx512(key.data(), msgs, length, out);
  if (width == Lanes::four) return lanes::blake2b_keyed_x4_avx2(key.data(), msgs, length, out);
#endif
  (void)width, (void)key, (void)msgs, (void)length, (void)out;
  std::abort();  // keyed_digests never asks for lanes this build lacks
}

}  // namespace

Digest keyed_digest(const DigestKey& key, base::ByteSpan data) {
  ensure_sodium();
  Digest out{};
  const int rc = crypto_generichash(out.data(), out.size(), data.data(), data.size(), key.data(), key.size());
  assert(rc == 0);
  (void)rc;
  return out;
}

Lanes widest_lanes() {
#if DIGEST_HAVE_LANES
  // The compiler's runtime checks both the CPU's flag and that the kernel
  // saves the registers (XCR0) before it reports a feature.
  static const Lanes widest = __builtin_cpu_supports("avx512f") ? Lanes::eight
                              : __builtin_cpu_supports("avx2")  ? Lanes::four
                                                                : Lanes::one;
  return widest;
#else
  return Lanes::one;
#endif
}

std::string_view lanes_name(Lanes lanes) {
  switch (lanes) {
    case Lanes::one:
      return "one at a time";
    case Lanes::four:
      return "4 lanes (AVX2)";
    case Lanes::eight:
      return "8 lanes (AVX-512F)";
  }
  return "?";
}

void keyed_digests(const DigestKey& key, std::span<const base::ByteSpan> pieces, std::span<Digest> out, Lanes lanes) {
  assert(out.size() == pieces.size());
  const size_t width = std::min(static_cast<size_t>(lanes), static_cast<size_t>(widest_lanes()));
  // Pieces of one length share a pass wherever they sit in a window of 64: a
  // batch of records mixes 4 KiB writes with others, and a lone piece between
  // two of one length must not split them. `done` marks the window's pieces
  // already hashed.
  constexpr size_t kWindow = 64;
  for (size_t start = 0; start < pieces.size(); start += kWindow) {
    const size_t end = std::min(pieces.size(), start + kWindow);
    uint64_t done = 0;
    for (size_t i = start; i < end; ++i) {
      if ((done >> (i - start)) & 1) continue;
      const size_t length = pieces[i].size();
      size_t group[kMaxLanes] = {i};
      size_t run = 1;
      for (size_t j = i + 1; run < width && j < end; ++j)
        if (!((done >> (j - start)) & 1) && pieces[j].size() == length) group[run++] = j;
      // A lone piece costs less alone than a pass of every lane.
      if (run == 1) {
        out[i] = keyed_digest(key, pieces[i]);
        continue;
      }
      // Lanes without a piece of their own hash the group's last one again.
      const uint8_t* msgs[kMaxLanes];
      for (size_t l = 0; l < width; ++l) msgs[l] = pieces[group[std::min(l, run - 1)]].data();
      uint8_t digests[kMaxLanes * kDigestBytes];
      hash_lanes(static_cast<Lanes>(width), key, msgs, length, digests);
      for (size_t l = 0; l < run; ++l) {
        std::memcpy(out[group[l]].data(), digests + l * kDigestBytes, kDigestBytes);
        done |= uint64_t{1} << (group[l] - start);
      }
    }
  }
}

void append_extent_digests(const DigestKey& key, base::ByteSpan data, uint64_t extent_bytes, std::vector<Digest>& out,
                           Lanes lanes) {
  assert(extent_bytes > 0);
  base::ByteSpan group[kMaxLanes];
  for (uint64_t at = 0; at < data.size();) {
    size_t n = 0;
    for (; n < kMaxLanes && at < data.size(); ++n, at += extent_bytes)
      group[n] = data.subspan(at, std::min<uint64_t>(extent_bytes, data.size() - at));
    const size_t first = out.size();
    out.resize(first + n);
    keyed_digests(key, std::span(group, n), std::span(out).subspan(first, n), lanes);
  }
}

bool digest_equal(const Digest& a, const Digest& b) {
  ensure_sodium();
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace digest
