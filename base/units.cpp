// SPDX-License-Identifier: MIT
#include "base/units.h"

#include <ctime>

#include <time.h>

#include <cctype>
#include <cmath>
#include <cstdio>

namespace base {

std::optional<uint64_t> parse_size_bytes(std::string_view text) {
  size_t i = 0;
  uint64_t whole = 0;
  bool any_digit = false;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    uint64_t d = static_cast<uint64_t>(text[i] - '0');
    if (whole > (UINT64_MAX - d) / 10) return std::nullopt;
    whole = whole * 10 + d;
    any_digit = true;
    ++i;
  }
  uint64_t frac_num = 0, frac_den = 1;
  if (i < text.size() && text[i] == '.') {
    ++i;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      if (frac_den > 1'000'000'000ULL) return std::nullopt;
      frac_num = frac_num * 10 + static_cast<uint64_t>(text[i] - '0');
      frac_den *= 10;
      any_digit = true;
      ++i;
    }
  }
  if (!any_digit) return std::nullopt;
  uint64_t mult = 1;
  if (i < text.size()) {
    switch (std::toupper(static_cast<unsigned char>(text[i]))) {
      case 'K': mult = 1ULL << 10; break;
      case 'M': mult = 1ULL << 20; break;
      case 'G': mult = 1ULL << 30; break;
      case 'T': mult = 1ULL << 40; break;
      case 'B': mult = 1; break;
      default: return std::nullopt;
    }
    ++i;
    std::string_view tail = text.substr(i);
    if (mult > 1 && !(tail.empty() || tail == "B" || tail == "iB" || tail == "ib" || tail == "b"))
      return std::nullopt;
    if (mult == 1 && !tail.empty()) return std::nullopt;
  }
  if (whole > UINT64_MAX / mult) return std::nullopt;
  uint64_t total = whole * mult;
  if (frac_num != 0) {
    // The fraction must come to a whole number of bytes.
    __extension__ typedef unsigned __int128 u128;  // exact, no overflow for 64x64
    u128 f = static_cast<u128>(frac_num) * mult;
    if (f % frac_den != 0) return std::nullopt;
    uint64_t add = static_cast<uint64_t>(f / frac_den);
    if (total > UINT64_MAX - add) return std::nullopt;
    total += add;
  }
  return total;
}

std::string format_bytes(uint64_t bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int u = 0;
  double v = static_cast<double>(bytes);
  while (v >= 1024.0 && u < 5) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  if (u == 0) std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  else if (std::fabs(v - std::round(v)) < 0.05) std::snprintf(buf, sizeof buf, "%.0f %s", v, units[u]);
  else std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

uint64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

int64_t unix_ms() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + static_cast<int64_t>(ts.tv_nsec) / 1'000'000;
}

std::string format_utc_time(int64_t unix_ms) {
  const time_t t = static_cast<time_t>(unix_ms / 1000);
  struct tm tm {};
  if (gmtime_r(&t, &tm) == nullptr) return std::to_string(unix_ms / 1000) + " (unix time)";
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

}  // namespace base
