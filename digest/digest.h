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
#include <span>
#include <string_view>
#include <vector>

#include "base/bytes.h"

namespace digest {

inline constexpr size_t kDigestBytes = 32;
using Digest = std::array<uint8_t, kDigestBytes>;
using DigestKey = std::array<uint8_t, 32>;

Digest keyed_digest(const DigestKey& key, base::ByteSpan data);

// How many pieces keyed_digests hashes at once: one per 64-bit SIMD lane where
// the CPU has them (x86-64: eight with AVX-512F, four with AVX2), else one.
// A scan's extents all have one length, so eight lanes hash them about 3.7
// times as fast as one at a time on one core (docs/PERFORMANCE.md).
enum class Lanes : uint8_t { one = 1, four = 4, eight = 8 };
Lanes widest_lanes();  // what this CPU allows, found once
std::string_view lanes_name(Lanes lanes);

// out[i] = keyed_digest(key, pieces[i]) for every i (out.size() ==
// pieces.size()). Pieces of one length, neighbours or not (in the same window
// of 64 pieces: 0-63, 64-127, ...), go through up to `lanes` lanes at once
// (never more than widest_lanes()); the digests are the same.
void keyed_digests(const DigestKey& key, std::span<const base::ByteSpan> pieces, std::span<Digest> out,
                   Lanes lanes = widest_lanes());

// Appends to `out` the keyed digest of each `extent_bytes` piece of `data`,
// in order, the last one shorter where `data` ends inside it: what a digest
// scan computes over what it read.
void append_extent_digests(const DigestKey& key, base::ByteSpan data, uint64_t extent_bytes, std::vector<Digest>& out,
                           Lanes lanes = widest_lanes());

// Constant-time comparison.
bool digest_equal(const Digest& a, const Digest& b);

}  // namespace digest
