// SPDX-License-Identifier: MIT
// Keyed BLAKE2b-256 of several messages of one length at once, one message
// per SIMD lane (digest.h's keyed_digests picks a kernel). Each kernel lives
// in its own file, compiled for its instruction set, and holds nothing but C:
// no inline function or template of a header may be compiled there, or the
// linker could keep that copy for callers on a CPU without the instructions.
// The output equals RFC 7693's BLAKE2b with a 32-byte key and a 32-byte
// digest, byte for byte (libsodium's crypto_generichash with those sizes).
#pragma once

#include <cstddef>
#include <cstdint>

namespace digest::lanes {

inline constexpr size_t kKeyBytes = 32;
inline constexpr size_t kOutBytes = 32;

// `msgs` holds kLanes pointers to `length` bytes each (a pointer may repeat);
// `out` receives kLanes digests of kOutBytes, in the order of `msgs`.
void blake2b_keyed_x4_avx2(const uint8_t* key, const uint8_t* const* msgs, size_t length, uint8_t* out);
void blake2b_keyed_x8_avx512(const uint8_t* key, const uint8_t* const* msgs, size_t length, uint8_t* out);

}  // namespace digest::lanes
