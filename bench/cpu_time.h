// SPDX-License-Identifier: MIT
// The calling process's CPU time so far (user + system, all threads), for
// the benchmarks' "cpu_s" figures.
#pragma once

#include <sys/resource.h>

namespace bench {

inline double process_cpu_seconds() {
  rusage u{};
  (void)::getrusage(RUSAGE_SELF, &u);
  const auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return s(u.ru_utime) + s(u.ru_stime);
}

}  // namespace bench
