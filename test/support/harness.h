// SPDX-License-Identifier: MIT
// Black-box test support: temporary directories, child processes of the real
// binaries (paths from the environment that meson sets), free loopback ports,
// and loop devices that are always detached. Every wait has a time limit.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "test/support/temp_dir.h"

namespace harness {

// A fresh directory under $TMPDIR (or /var/tmp), removed with its contents.
class TempDir : public test_support::TempDir {
 public:
  TempDir() : test_support::TempDir("cloned-test", default_parent()) {
    if (!ok()) std::abort();  // every black-box test needs one
  }

 private:
  static std::string default_parent() {
    const char* env = std::getenv("TMPDIR");
    return env != nullptr && *env != '\0' ? env : "/var/tmp";
  }
};

// Path of a project binary: the environment variable (set by meson test), else
// the build tree guess.
std::string binary(const std::string& env_name);

// A child process; stdout and stderr go to `log_path` (appended).
class Process {
 public:
  // `env` entries are added to (or replace in) the child's environment.
  Process(const std::vector<std::string>& argv, const std::string& log_path,
          const std::map<std::string, std::string>& env = {});
  ~Process();  // kills (SIGKILL) and reaps if still running
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  void signal(int signum);
  // Waits up to timeout_ms; returns the exit code, 128+signal, or -1 on timeout.
  int wait(int timeout_ms);

 private:
  pid_t pid_ = -1;
  int status_ = -1;
  bool reaped_ = false;
};

// Runs to completion (bounded by timeout_ms, then killed); output into `output`.
int run(const std::vector<std::string>& argv, std::string& output, int timeout_ms = 120000);

// A loopback TCP port that was free a moment ago.
uint16_t free_port();
// Waits until something listens on 127.0.0.1:port.
bool wait_for_listener(uint16_t port, int timeout_ms);

std::string read_file(const std::string& path);
// How many times `needle` occurs in `text`, not overlapping.
size_t count_of(const std::string& text, const std::string& needle);
bool write_file(const std::string& path, const std::string& content);
bool files_equal(const std::string& a, const std::string& b, uint64_t* first_difference = nullptr);
bool make_zero_file(const std::string& path, uint64_t size_bytes);

bool is_root();

// A loop device over a file, detached in the destructor. attached() false
// (with why()) when the machine cannot give one.
class LoopDevice {
 public:
  explicit LoopDevice(const std::string& backing_file);
  ~LoopDevice();
  LoopDevice(const LoopDevice&) = delete;
  LoopDevice& operator=(const LoopDevice&) = delete;
  bool attached() const { return !device_.empty(); }
  const std::string& device() const { return device_; }
  const std::string& why() const { return why_; }

 private:
  std::string device_;
  std::string why_;
};

// Pairs a clone and an original in `dir` (clone/ and origin/ below it) with a
// target and a free port; returns the two config paths.
struct Pair {
  std::string clone_config;
  std::string origin_config;
  uint16_t port = 0;
};
// Sets "table.key" = value (TOML text, quoted as needed) in a config file,
// adding the table or the key where missing.
void set_config_keys(const std::string& path, const std::map<std::string, std::string>& keys);

// Overrides are "table.key" -> TOML value text, e.g. {"link.idle_timeout_ms", "500"}.
Pair make_pair(const std::string& dir, const std::string& target,
               const std::map<std::string, std::string>& clone_overrides = {},
               const std::map<std::string, std::string>& origin_overrides = {});

}  // namespace harness
