// SPDX-License-Identifier: MIT
// The calling thread's name and priority.
#pragma once

#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
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

// struct sched_attr of sched_setattr(2), as the kernel lays it out (size 56:
// SCHED_ATTR_SIZE_VER1). glibc before 2.41 has no wrapper and no type.
struct SchedAttr {
  uint32_t size = sizeof(SchedAttr);
  uint32_t sched_policy = 0;
  uint64_t sched_flags = 0;
  int32_t sched_nice = 0;
  uint32_t sched_priority = 0;
  uint64_t sched_runtime = 0;  // ns; for SCHED_OTHER, the time slice asked for
  uint64_t sched_deadline = 0;
  uint64_t sched_period = 0;
  uint32_t sched_util_min = 0;
  uint32_t sched_util_max = 0;
};
static_assert(sizeof(SchedAttr) == 56);

// Asks the kernel to run the calling thread in time slices of `microseconds`
// rather than its default (0.7-3 ms), keeping its policy and nice value. The
// fair scheduler since Linux 6.6 (EEVDF) lets a thread that wakes run ahead of
// busy ones by an earlier deadline, which a lower nice value no longer gives
// (there it buys a share of the CPU, not a turn); since 6.12 a thread may ask
// for a shorter slice, which makes its deadlines earlier. The kernel clamps the
// slice to 0.1-100 ms. Older kernels (Debian 12's 6.1, whose scheduler still
// lets a lower nice value preempt) take the call and ignore the slice; a
// SCHED_IDLE thread's is ignored too, and a real-time thread's call fails
// (EINVAL). Needs no privilege.
inline base::Status ask_this_thread_time_slice(uint32_t microseconds) {
  if (microseconds == 0) return base::Status::ok();
  constexpr uint64_t kKeepPolicy = 0x08;  // SCHED_FLAG_KEEP_POLICY
  errno = 0;
  const int nice = ::getpriority(PRIO_PROCESS, 0);
  if (nice == -1 && errno != 0) return base::Status::from_errno("cannot read the thread's nice value");
  SchedAttr attr;
  attr.sched_flags = kKeepPolicy;
  attr.sched_nice = nice;
  attr.sched_runtime = uint64_t{microseconds} * 1000;
  if (::syscall(SYS_sched_setattr, 0, &attr, 0) != 0) {
    const int err = errno;
    return base::Status::from_errno(err, "cannot ask for time slices of " + std::to_string(microseconds) + " us");
  }
  return base::Status::ok();
}

}  // namespace base
