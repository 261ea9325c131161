// SPDX-License-Identifier: MIT
#include "origin/progress.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "base/thread.h"

namespace origin {

ProgressReporter::ProgressReporter(std::function<std::string()> line, uint32_t interval_ms)
    : line_(std::move(line)), interval_ms_(interval_ms), tty_(::isatty(STDERR_FILENO) == 1) {
  thread_ = std::thread([this] { run(); });
}

ProgressReporter::~ProgressReporter() { stop(); }

void ProgressReporter::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  if (tty_ && printed_) std::fputc('\n', stderr);
}

void ProgressReporter::run() {
  base::name_this_thread("origin-progress");
  std::unique_lock<std::mutex> lock(mutex_);
  while (!cv_.wait_for(lock, std::chrono::milliseconds(interval_ms_), [this] { return stop_; })) {
    lock.unlock();
    print(line_());
    lock.lock();
  }
}

void ProgressReporter::print(const std::string& line) {
  if (tty_) {
    const size_t pad = last_width_ > line.size() ? last_width_ - line.size() : 0;
    std::fprintf(stderr, "\r%s%*s", line.c_str(), static_cast<int>(pad), "");
    last_width_ = line.size();
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
  printed_ = true;
}

std::string format_rate(uint64_t bytes, uint64_t elapsed_ns) {
  const double seconds = static_cast<double>(elapsed_ns) / 1e9;
  const double mb_per_s = seconds > 0 ? static_cast<double>(bytes) / 1e6 / seconds : 0.0;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MB/s", mb_per_s);
  return buf;
}

}  // namespace origin
