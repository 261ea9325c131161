// SPDX-License-Identifier: MIT
// Helpers shared by the blockio tests: temporary directories that clean up
// after themselves, and aligned buffers with recognisable contents.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "base/aligned_buffer.h"
#include "test/support/temp_dir.h"

namespace blockio_test {

// A fresh directory under `parent`, removed with everything in it on scope exit.
class TempDir : public test_support::TempDir {
 public:
  explicit TempDir(const std::string& parent = "/var/tmp") : test_support::TempDir("blockio-test", parent) {}
};

// `size_bytes` bytes whose value depends on `seed` and position.
inline base::AlignedBuffer pattern(size_t size_bytes, uint8_t seed) {
  base::AlignedBuffer buffer(size_bytes);
  for (size_t i = 0; i < size_bytes; ++i) buffer.data()[i] = static_cast<uint8_t>(seed + i * 7 + (i >> 9));
  return buffer;
}

inline base::AlignedBuffer filled(size_t size_bytes, uint8_t value) {
  base::AlignedBuffer buffer(size_bytes);
  std::memset(buffer.data(), value, size_bytes);
  return buffer;
}

inline bool same_bytes(const base::AlignedBuffer& a, const base::AlignedBuffer& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size()) == 0;
}

inline bool all_bytes(const uint8_t* data, size_t size_bytes, uint8_t value) {
  for (size_t i = 0; i < size_bytes; ++i) {
    if (data[i] != value) return false;
  }
  return true;
}

}  // namespace blockio_test
