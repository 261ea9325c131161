// SPDX-License-Identifier: MIT
// Sizes with K/M/G/T suffixes (powers of 1024), as the command line takes them,
// numbers in sentences, and the two clocks.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace base {

// "4096", "4K", "256M", "1G", "1.5G" (suffix case-insensitive, optional "iB"/"B").
// nullopt on anything else, on overflow, or on a fraction that is not a whole byte.
std::optional<uint64_t> parse_size_bytes(std::string_view text);

// 42 -> "42": a number in a sentence ("record " + u64s(seq)).
inline std::string u64s(uint64_t v) { return std::to_string(v); }

// 268435456 -> "256 MiB"; 1536 -> "1.5 KiB"; 100 -> "100 B".
std::string format_bytes(uint64_t bytes);

// Monotonic clock in nanoseconds (CLOCK_MONOTONIC).
uint64_t monotonic_ns();

// Wall-clock milliseconds since the Unix epoch (CLOCK_REALTIME): for stamps
// that people read or that outlive the process, never for measuring time.
int64_t unix_ms();

// Milliseconds since the Unix epoch as "2026-11-22 06:40:01 UTC".
std::string format_utc_time(int64_t unix_ms);

}  // namespace base
