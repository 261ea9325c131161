// SPDX-License-Identifier: MIT
// Logging to stderr with journald's "<N>" priority prefixes (sd-daemon.h):
// under systemd the journal files each line at its priority; on a terminal the
// prefix is still readable. Thread-safe: each line is one write(2).
#pragma once

namespace base {

enum class LogLevel { error = 3, warning = 4, notice = 5, info = 6, debug = 7 };

// Lines above this level are dropped. Default: info.
void set_log_level(LogLevel level);
LogLevel log_level();

void log(LogLevel level, const char* format, ...) __attribute__((format(printf, 2, 3)));

}  // namespace base

#define LOG_ERROR(...) ::base::log(::base::LogLevel::error, __VA_ARGS__)
#define LOG_WARN(...) ::base::log(::base::LogLevel::warning, __VA_ARGS__)
#define LOG_NOTICE(...) ::base::log(::base::LogLevel::notice, __VA_ARGS__)
#define LOG_INFO(...) ::base::log(::base::LogLevel::info, __VA_ARGS__)
#define LOG_DEBUG(...) ::base::log(::base::LogLevel::debug, __VA_ARGS__)
