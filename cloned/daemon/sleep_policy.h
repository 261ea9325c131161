// SPDX-License-Identifier: MIT
// When the clone may go to sleep: a pure decision, no I/O, no clock of its
// own (the caller passes the time), so tests drive it with a fake clock.
//
// The clone sleeps once it has been idle for the configured time: no session
// open, nothing pending (records held or in flight, a flush or a store commit
// outstanding), no epoch half received, no resync and no verify running. It
// never sleeps unarmed (a NIC that cannot wake it would leave it asleep for
// good): it stays up and says so, once. An original's sleep_request skips the
// idle time and the open session (the daemon ends that session itself), but
// none of the other conditions.
//
// Threading: one thread (the loop's) owns an instance.
#pragma once

#include <cstdint>
#include <string>

namespace cloned {

struct SleepInputs {
  uint64_t now_ms = 0;        // monotonic
  bool session_open = false;  // an original is connected (or its hello is pending)
  bool work_pending = false;  // records held or in flight, flush or commit outstanding
  bool mid_epoch = false;     // records of an epoch received, its barrier not yet durable
  bool resync_active = false;
  bool verify_active = false;
  bool armed = false;         // magic-packet wake is armed (or the test double counts as armed)
  std::string unarmed_reason; // why not armed, for the report
  bool sleep_requested = false;  // the original asked (sleep_request)
};

enum class SleepVerdict {
  sleep,            // go to sleep now
  disabled,         // idle_sleep is 0 and nobody asked
  not_idle_long,    // idle, but not yet for the configured time
  session_open,
  work_pending,
  mid_epoch,
  resync_active,
  verify_active,
  unarmed,          // would sleep, but waking could not work
};
const char* to_string(SleepVerdict v);

struct SleepDecision {
  SleepVerdict verdict = SleepVerdict::disabled;
  std::string why;            // a sentence for the log and status
  bool report_unarmed = false;  // true the first time `unarmed` blocks a sleep: log it loudly
  bool sleep() const { return verdict == SleepVerdict::sleep; }
};

class SleepPolicy {
 public:
  // idle_sleep_ms 0: never sleep on its own (a sleep_request still can).
  SleepPolicy(uint64_t idle_sleep_ms, uint64_t start_ms);

  SleepDecision decide(const SleepInputs& in);
  // The clone slept and woke (or a sleep attempt failed): idle time counts
  // again from `now_ms`, and an unarmed state is reported again.
  void restart_idle(uint64_t now_ms);
  uint64_t idle_since_ms() const { return idle_since_ms_; }

 private:
  uint64_t idle_sleep_ms_;
  uint64_t idle_since_ms_;
  bool unarmed_reported_ = false;
};

}  // namespace cloned
