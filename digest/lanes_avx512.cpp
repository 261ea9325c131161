// SPDX-License-Identifier: MIT
// Eight keyed BLAKE2b-256 digests at once, one per 64-bit lane of an AVX-512
// register (its rotate instruction does each of BLAKE2b's rotations in one).
// Compiled with -mavx512f (digest/meson.build); called only where the CPU has
// AVX-512F (digest.cpp checks).
#include <immintrin.h>

#include "digest/lanes.h"
#include "digest/lanes_kernel.h"

namespace {

struct Avx512 {
  using V = __m512i;
  static constexpr int kLanes = 8;
  static V set1(uint64_t x) { return _mm512_set1_epi64(static_cast<long long>(x)); }
  static V load(const int64_t* p) { return _mm512_loadu_si512(p); }
  static void store(uint64_t* p, V x) { _mm512_storeu_si512(p, x); }
  static V add(V a, V b) { return _mm512_add_epi64(a, b); }
  static V bxor(V a, V b) { return _mm512_xor_si512(a, b); }
  static V ror32(V x) { return ror<32>(x); }
  static V ror24(V x) { return ror<24>(x); }
  static V ror16(V x) { return ror<16>(x); }
  static V ror63(V x) { return ror<63>(x); }
  // The masked forms with every lane on (here and in gather) are the same
  // instructions; the plain ones trip a false -Wuninitialized in gcc 12's
  // header.
  template <int kBits>
  static V ror(V x) {
    return _mm512_maskz_ror_epi64(0xff, x, kBits);
  }
  static V gather(const uint8_t* base, V offsets) {
    return _mm512_mask_i64gather_epi64(_mm512_setzero_si512(), 0xff, offsets, base, 1);
  }
};

}  // namespace

namespace digest::lanes {

void blake2b_keyed_x8_avx512(const uint8_t* key, const uint8_t* const* msgs, size_t length, uint8_t* out) {
  keyed_lanes<Avx512>(key, msgs, length, out);
}

}  // namespace digest::lanes
