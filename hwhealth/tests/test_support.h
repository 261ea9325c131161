// SPDX-License-Identifier: MIT
// Helpers for the hwhealth tests: a temporary directory holding a fake sysfs
// tree, removed on scope exit.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace hwhealth_test {

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

class TempDir {
 public:
  TempDir() {
    std::string pattern = "/var/tmp/hwhealth-test-XXXXXX";
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
  std::string file(const std::string& relative) const { return path_ + "/" + relative; }

  // Writes `relative` (creating its directories) with `text`, as sysfs shows it.
  void write(const std::string& relative, const std::string& text) const {
    std::filesystem::create_directories(std::filesystem::path(file(relative)).parent_path());
    std::ofstream(file(relative)) << text;
  }
  void mkdir(const std::string& relative) const { std::filesystem::create_directories(file(relative)); }
  // A symlink at `relative` pointing at `target` (relative to the link's directory, as in sysfs).
  void link(const std::string& relative, const std::string& target) const {
    std::filesystem::create_directories(std::filesystem::path(file(relative)).parent_path());
    std::filesystem::create_symlink(target, file(relative));
  }

 private:
  std::string path_;
};

}  // namespace hwhealth_test
