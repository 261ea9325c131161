// SPDX-License-Identifier: MIT
// Helpers for the hwhealth tests: a temporary directory holding a fake sysfs
// tree, removed on scope exit.
#pragma once

#include <string>

#include "test/support/temp_dir.h"

namespace hwhealth_test {

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

class TempDir : public test_support::TempDir {
 public:
  TempDir() : test_support::TempDir("hwhealth-test", "/var/tmp") {}
};

}  // namespace hwhealth_test
