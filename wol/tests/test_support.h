// SPDX-License-Identifier: MIT
// Helpers shared by the wol tests: a temporary directory that cleans up after
// itself, and writing small files into it (fake sysfs trees, state files).
#pragma once

#include <string>

#include "test/support/temp_dir.h"

namespace wol_test {

// A fresh directory under /tmp, removed with everything in it on scope exit.
class TempDir : public test_support::TempDir {
 public:
  TempDir() : test_support::TempDir("wol-test", "/tmp") {}
};

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace wol_test
