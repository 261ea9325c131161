// SPDX-License-Identifier: MIT
// Fuzz target: the stored disk fingerprint (cloned/diverge, decode). The input
// is what the state store on the USB stick hands back. decode must refuse
// anything malformed with a sentence, never crash; what it accepts is
// canonical (encodes back to the same bytes) and compares cleanly.
#include <cstddef>
#include <cstdint>

#include "cloned/diverge/fingerprint.h"
#include "fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  diverge::Fingerprint fp;
  const base::Status st = diverge::decode(base::ByteSpan(data, size), fp);
  if (!st) {
    FUZZ_CHECK(!st.message().empty());
    return 0;
  }
  FUZZ_CHECK(diverge::encode(fp) == base::Bytes(data, data + size));
  FUZZ_CHECK(diverge::differences(fp, fp).empty());
  const std::vector<std::string> gone = diverge::differences(fp, diverge::Fingerprint{});
  FUZZ_CHECK(gone.size() >= fp.regions.size());
  return 0;
}
