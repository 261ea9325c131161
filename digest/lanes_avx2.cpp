// SPDX-License-Identifier: MIT
// Four keyed BLAKE2b-256 digests at once, one per 64-bit lane of an AVX2
// register. Compiled with -mavx2 (digest/meson.build); called only where the
// CPU has AVX2 (digest.cpp checks).
#include <immintrin.h>

#include "digest/lanes.h"
#include "digest/lanes_kernel.h"

namespace {

struct Avx2 {
  using V = __m256i;
  static constexpr int kLanes = 4;
  static V set1(uint64_t x) { return _mm256_set1_epi64x(static_cast<long long>(x)); }
  static V load(const int64_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static void store(uint64_t* p, V x) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), x); }
  static V add(V a, V b) { return _mm256_add_epi64(a, b); }
  static V bxor(V a, V b) { return _mm256_xor_si256(a, b); }
  static V ror32(V x) { return _mm256_shuffle_epi32(x, _MM_SHUFFLE(2, 3, 0, 1)); }
  static V ror24(V x) {
    const V r = _mm256_setr_epi8(3, 4, 5, 6, 7, 0, 1, 2, 11, 12, 13, 14, 15, 8, 9, 10, 3, 4, 5, 6, 7, 0, 1, 2, 11, 12,
                                 13, 14, 15, 8, 9, 10);
    return _mm256_shuffle_epi8(x, r);
  }
  static V ror16(V x) {
    const V r = _mm256_setr_epi8(2, 3, 4, 5, 6, 7, 0, 1, 10, 11, 12, 13, 14, 15, 8, 9, 2, 3, 4, 5, 6, 7, 0, 1, 10, 11,
                                 12, 13, 14, 15, 8, 9);
    return _mm256_shuffle_epi8(x, r);
  }
  static V ror63(V x) { return _mm256_or_si256(_mm256_srli_epi64(x, 63), _mm256_add_epi64(x, x)); }
  static V gather(const uint8_t* base, V offsets) {
    return _mm256_i64gather_epi64(reinterpret_cast<const long long*>(base), offsets, 1);
  }
};

}  // namespace

namespace digest::lanes {

void blake2b_keyed_x4_avx2(const uint8_t* key, const uint8_t* const* msgs, size_t length, uint8_t* out) {
  keyed_lanes<Avx2>(key, msgs, length, out);
}

}  // namespace digest::lanes
