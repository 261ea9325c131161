// SPDX-License-Identifier: MIT
// Fuzz target: the disk parsers behind take_fingerprint (MBR, GPT, ext
// superblock, NTFS boot sector, records, attributes and data runs). The
// clone's disk may hold anything; the input is the start of a 256 KiB memory
// disk. Parsing must never crash or read outside the disk, and the result
// must be deterministic and encodable.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "base/aligned_buffer.h"
#include "blockio/memory_device.h"
#include "cloned/diverge/fingerprint.h"
#include "fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr uint64_t kDiskBytes = 256 << 10;  // small: every run reads and digests all of it twice
  if (size > kDiskBytes) return 0;
  blockio::MemoryDevice dev(kDiskBytes);
  const size_t padded = (size + 511) / 512 * 512;
  if (padded > 0) {
    base::AlignedBuffer buf(padded);
    std::memset(buf.data(), 0, padded);
    std::memcpy(buf.data(), data, size);
    FUZZ_CHECK(dev.write(0, buf.span()).is_ok());
  }
  const digest::DigestKey key{};
  base::Result<diverge::Fingerprint> a = diverge::take_fingerprint(dev, key);
  FUZZ_CHECK(a.is_ok());
  for (const diverge::Region& r : a->regions) {
    FUZZ_CHECK(r.offset_bytes <= kDiskBytes && r.length_bytes <= kDiskBytes - r.offset_bytes);
  }
  base::Result<diverge::Fingerprint> b = diverge::take_fingerprint(dev, key);
  FUZZ_CHECK(b.is_ok() && diverge::differences(a.value(), b.value()).empty());
  diverge::Fingerprint back;
  FUZZ_CHECK(diverge::decode(diverge::encode(a.value()), back).is_ok());
  return 0;
}
