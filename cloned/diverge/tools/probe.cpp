// SPDX-License-Identifier: MIT
// diverge_probe DISK [STATE_FILE]: prints the fingerprint of DISK (an image
// file or an unmounted block device) and what taking it cost. With
// STATE_FILE: prints the differences from the fingerprint saved there (if
// any), then saves the new one. For measurements and experiments; the key is
// a fixed test key, not a pair's.
#include <cstdio>
#include <fstream>
#include <iterator>

#include "blockio/disk.h"
#include "cloned/diverge/fingerprint.h"

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: diverge_probe DISK [STATE_FILE]\n");
    return 2;
  }
  auto dev = blockio::open_disk(argv[1]);
  if (!dev) {
    std::fprintf(stderr, "diverge_probe: %s\n", dev.status().message().c_str());
    return 1;
  }
  auto fp = diverge::take_fingerprint(*dev.value(), digest::DigestKey{});
  if (!fp) {
    std::fprintf(stderr, "diverge_probe: %s\n", fp.status().message().c_str());
    return 1;
  }
  for (const auto& r : fp->regions) {
    std::printf("%-45s offset=%llu len=%llu", r.name.c_str(), static_cast<unsigned long long>(r.offset_bytes),
                static_cast<unsigned long long>(r.length_bytes));
    for (const auto& f : r.facts) std::printf(" [%s: %s]", f.name.c_str(), f.value.c_str());
    std::printf("\n");
  }
  std::printf("cost: %llu bytes read in %.1f ms, %zu regions\n", static_cast<unsigned long long>(fp->bytes_read),
              double(fp->elapsed_us) / 1000.0, fp->regions.size());
  if (argc == 3) {
    std::ifstream in(argv[2], std::ios::binary);
    if (in) {
      const base::Bytes saved((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      diverge::Fingerprint before;
      base::Status st = diverge::decode(saved, before);
      if (!st) {
        std::fprintf(stderr, "diverge_probe: %s\n", st.message().c_str());
        return 1;
      }
      const auto diff = diverge::differences(before, fp.value());
      std::printf("%s\n", diff.empty() ? "no differences from the saved fingerprint" : "differences:");
      for (const auto& line : diff) std::printf("  - %s\n", line.c_str());
    }
    const base::Bytes bytes = diverge::encode(fp.value());
    std::ofstream out(argv[2], std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!out) {
      std::fprintf(stderr, "diverge_probe: cannot write %s\n", argv[2]);
      return 1;
    }
  }
  return 0;
}
