// SPDX-License-Identifier: MIT
// Fuzz target: keyed digests in SIMD lanes (digest/lanes_*.cpp) against
// libsodium's, one at a time. The input gives the key (32 bytes), how many
// pieces (1 to 17), whether they share one length, and the bytes they are cut
// from; every lane width this CPU runs must give, for every piece, the digest
// keyed_digest gives it alone.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "digest/digest.h"
#include "fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 34) return 0;
  digest::DigestKey key;
  std::memcpy(key.data(), data, key.size());
  const size_t count = 1 + data[32] % 17;
  const bool one_length = (data[33] & 1) != 0;
  const base::ByteSpan body(data + 34, size - 34);
  std::vector<base::ByteSpan> pieces;
  for (size_t i = 0; i < count; ++i) {
    if (one_length) {
      const size_t length = body.size() / count;
      pieces.push_back(body.subspan(i * length, length));
    } else {
      // Runs of one length broken by others, as a batch of records is.
      const size_t at = std::min(body.size(), i / 3 * 5);
      pieces.push_back(body.subspan(at));
    }
  }
  std::vector<digest::Digest> want;
  for (base::ByteSpan p : pieces) want.push_back(digest::keyed_digest(key, p));
  for (digest::Lanes lanes : {digest::Lanes::one, digest::Lanes::four, digest::Lanes::eight}) {
    if (static_cast<int>(lanes) > static_cast<int>(digest::widest_lanes())) continue;
    std::vector<digest::Digest> got(pieces.size());
    digest::keyed_digests(key, pieces, got, lanes);
    FUZZ_CHECK(got == want);
  }
  return 0;
}
