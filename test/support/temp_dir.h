// SPDX-License-Identifier: MIT
// A scratch directory for tests: made fresh (mkdtemp) and removed with all it
// holds on scope exit, with small helpers to fill it (fake sysfs trees,
// config and state files). Header-only, for every test target.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace test_support {

class TempDir {
 public:
  // parent/prefix-XXXXXX; parent "" means $TMPDIR, else /tmp. ok() says
  // whether it could be made.
  explicit TempDir(const std::string& prefix = "cloned-test", std::string parent = "") {
    if (parent.empty()) {
      const char* env = std::getenv("TMPDIR");
      parent = env != nullptr && *env != '\0' ? env : "/tmp";
    }
    std::string pattern = parent + "/" + prefix + "-XXXXXX";
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
  std::string operator/(const std::string& relative) const { return file(relative); }

  // Writes `content` to `relative`, creating its directories; returns its path.
  std::string write(const std::string& relative, const std::string& content) const {
    const std::string target = file(relative);
    std::filesystem::create_directories(std::filesystem::path(target).parent_path());
    std::ofstream(target) << content;
    return target;
  }
  std::string read(const std::string& relative) const {
    std::ifstream in(file(relative));
    std::stringstream content;
    content << in.rdbuf();
    return content.str();
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

}  // namespace test_support
