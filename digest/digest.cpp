// SPDX-License-Identifier: MIT
#include "digest/digest.h"

#include <sodium.h>

#include <cassert>
#include <cstdlib>

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

}  // namespace

Digest keyed_digest(const DigestKey& key, base::ByteSpan data) {
  ensure_sodium();
  Digest out{};
  const int rc = crypto_generichash(out.data(), out.size(), data.data(), data.size(), key.data(), key.size());
  assert(rc == 0);
  (void)rc;
  return out;
}

bool digest_equal(const Digest& a, const Digest& b) {
  ensure_sodium();
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace digest
