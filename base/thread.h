// SPDX-License-Identifier: MIT
// The calling thread's name and priority.
#pragma once

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include "base/status.h"

namespace base {

// Names the calling thread, so that top -H, ps -L, perf and /proc/PID/task/*/comm
// tell a daemon's threads apart ("cloned-disk", "cloned-store"...). Linux keeps
// at most 15 bytes of a name; longer ones are cut. Best effort: a failure
// changes nothing but the name.
inline void name_this_thread(const char* name) {
  char cut[16] = {};
  std::memcpy(cut, name, std::min(std::strlen(name), sizeof cut - 1));
  (void)pthread_setname_np(pthread_self(), cut);
}

// Lowers the calling thread's nice value by `steps` (a higher priority; never
// below -20): on Linux the nice value belongs to each thread, not to the
// process. Going below where the thread stands needs CAP_SYS_NICE (or an
// RLIMIT_NICE that allows it); without it this fails with EPERM or EACCES and
// the thread keeps its priority.
inline base::Status raise_this_thread_priority(uint32_t steps) {
  if (steps == 0) return base::Status::ok();
  errno = 0;
  const int now = ::getpriority(PRIO_PROCESS, 0);  // 0: the calling thread
  if (now == -1 && errno != 0) return base::Status::from_errno("cannot read the thread's nice value");
  const int want = std::max(-20, now - static_cast<int>(std::min<uint32_t>(steps, 40)));
  if (::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), want) != 0)
    return base::Status::from_errno("cannot set the thread's nice value from " + std::to_string(now) + " to " +
                                    std::to_string(want));
  return base::Status::ok();
}

}  // namespace base
