// SPDX-License-Identifier: MIT
#include "base/log.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstdio>

namespace base {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::info)};
}

void set_log_level(LogLevel level) { g_level.store(static_cast<int>(level)); }
LogLevel log_level() { return static_cast<LogLevel>(g_level.load()); }

void log(LogLevel level, const char* format, ...) {
  if (static_cast<int>(level) > g_level.load(std::memory_order_relaxed)) return;
  char line[2048];
  int prefix = std::snprintf(line, sizeof line, "<%d>", static_cast<int>(level));
  va_list args;
  va_start(args, format);
  int n = std::vsnprintf(line + prefix, sizeof line - prefix - 1, format, args);
  va_end(args);
  size_t len = static_cast<size_t>(prefix) +
               (n < 0 ? 0 : std::min<size_t>(static_cast<size_t>(n), sizeof line - prefix - 2));
  line[len++] = '\n';
  ssize_t ignored = ::write(STDERR_FILENO, line, len);
  (void)ignored;
}

}  // namespace base
