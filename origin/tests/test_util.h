// SPDX-License-Identifier: MIT
// Helpers shared by the origin unit tests: a temporary directory and
// whole-file reads and writes.
#pragma once

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "base/bytes.h"
#include "base/unique_fd.h"
#include "digest/digest.h"
#include "test/support/temp_dir.h"

namespace origin_test {

class TempDir : public test_support::TempDir {
 public:
  TempDir() : test_support::TempDir("origin_test") {}
};

inline base::Bytes read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return base::Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void write_file(const std::string& path, const base::Bytes& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

inline void make_zero_image(const std::string& path, uint64_t size_bytes) {
  base::UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600));
  if (fd) (void)::ftruncate(fd.get(), static_cast<off_t>(size_bytes));
}

inline digest::DigestKey test_digest_key() {
  digest::DigestKey k{};
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(0x40 + i);
  return k;
}

}  // namespace origin_test
