// SPDX-License-Identifier: MIT
// Fuzz target: every message parser of proto/messages.h. The input is
// one frame's plaintext, as the daemon and the original hand it to the codecs.
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::decode_any(base::ByteSpan(data, size));
  return 0;
}
