// SPDX-License-Identifier: MIT
// Helpers shared by the wol tests: a temporary directory that cleans up after
// itself, and writing small files into it (fake sysfs trees, state files).
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace wol_test {

// A fresh directory under /tmp, removed with everything in it on scope exit.
class TempDir {
 public:
  TempDir() {
    std::string pattern = "/tmp/wol-test-XXXXXX";
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  bool ok() const { return !path_.empty(); }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

  // Writes `content` to `name` (a relative path), creating its directories.
  std::string write(const std::string& name, const std::string& content) const {
    const std::filesystem::path target = std::filesystem::path(path_) / name;
    std::filesystem::create_directories(target.parent_path());
    std::ofstream(target) << content;
    return target.string();
  }

  std::string read(const std::string& name) const {
    std::ifstream in(file(name));
    std::stringstream content;
    content << in.rdbuf();
    return content.str();
  }

 private:
  std::string path_;
};

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace wol_test
