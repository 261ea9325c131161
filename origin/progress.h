// SPDX-License-Identifier: MIT
// A progress line on stderr about once a second, for long commands. On a
// terminal the line is redrawn in place (\r) and ended with a newline at
// stop(); otherwise each report is its own line (logs, test output).
//
// Threading: the line function runs on the reporter's own thread; it must
// read only thread-safe state (atomics, the replicator's counters()).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace origin {

class ProgressReporter {
 public:
  explicit ProgressReporter(std::function<std::string()> line, uint32_t interval_ms = 1000);
  ~ProgressReporter();  // stop()
  ProgressReporter(const ProgressReporter&) = delete;
  ProgressReporter& operator=(const ProgressReporter&) = delete;

  // Stops reporting (no final report). Idempotent.
  void stop();

 private:
  void run();
  void print(const std::string& line);

  std::function<std::string()> line_;
  const uint32_t interval_ms_;
  const bool tty_;
  size_t last_width_ = 0;
  bool printed_ = false;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// "123.4 MB/s" (decimal megabytes, as disk and link rates are quoted).
std::string format_rate(uint64_t bytes, uint64_t elapsed_ns);

}  // namespace origin
