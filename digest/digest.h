// SPDX-License-Identifier: MIT
// Keyed BLAKE2b-256 digests of block data (design.md, "Digests").
//
// The key is the per-pair digest key derived from the pairing secret, so a
// digest comparison stays sound even against crafted disk contents. The same
// function serves per-record digests (computed where the write was captured)
// and whole-disk scans. Thread-safe; no state.
#pragma once

#include <array>
#include <cstdint>

#include "base/bytes.h"

namespace digest {

inline constexpr size_t kDigestBytes = 32;
using Digest = std::array<uint8_t, kDigestBytes>;
using DigestKey = std::array<uint8_t, 32>;

Digest keyed_digest(const DigestKey& key, base::ByteSpan data);

// Constant-time comparison.
bool digest_equal(const Digest& a, const Digest& b);

}  // namespace digest
