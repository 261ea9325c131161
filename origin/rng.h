// SPDX-License-Identifier: MIT
// A small, fast, seeded PRNG (xoshiro256**, seeded through splitmix64) with
// an unbiased bounded draw. Our own rather than std::uniform_int_distribution
// so that a workload is the same for a seed whatever the standard library.
// Not thread-safe: one per thread.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace origin {

inline constexpr uint64_t kSplitmix64Step = 0x9e3779b97f4a7c15ull;

// splitmix64's output for the state after a step.
inline uint64_t splitmix64_mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

inline uint64_t splitmix64(uint64_t& state) { return splitmix64_mix(state += kSplitmix64Step); }

// Fills `out` (`bytes` long, a multiple of 8) with the words splitmix64 gives
// from `seed`, little-endian: the payloads of the workload and of the bare
// sender (bench/stream_bench.cpp), which must cost the same. Word i is made
// from i alone (the state after i + 1 steps is seed + (i + 1) * the step), so
// no word waits on the one before, and it is stored whole: written as one
// splitmix64 call and eight byte stores per word, GCC 12 at -O3 vectorised the
// loop for SSE2 with its 64-bit multiplies emulated, at a third of this
// loop's speed (2.8 against 8.5 GiB/s on one core here).
inline void fill_splitmix64(uint64_t seed, uint8_t* out, size_t bytes) {
  for (size_t i = 0; i < bytes / 8; ++i) {
    uint64_t z = splitmix64_mix(seed + (i + 1) * kSplitmix64Step);
    if constexpr (std::endian::native == std::endian::big) z = __builtin_bswap64(z);
    std::memcpy(out + 8 * i, &z, 8);
  }
}

class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (uint64_t& w : s_) w = splitmix64(seed);
  }
  uint64_t next() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  // Uniform in [lo, hi] (inclusive), without modulo bias.
  uint64_t uniform(uint64_t lo, uint64_t hi) {
    if (hi <= lo) return lo;
    const uint64_t n = hi - lo + 1;
    if (n == 0) return next();  // the full 64-bit range
    const uint64_t threshold = (0 - n) % n;  // 2^64 mod n: values below it are rejected
    for (;;) {
      const uint64_t r = next();
      if (r >= threshold) return lo + r % n;
    }
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace origin
