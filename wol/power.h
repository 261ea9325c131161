// SPDX-License-Identifier: MIT
// Putting the clone to sleep, behind an interface with a test double.
//
// SAFETY: tests use FakePower only, SysfsPower pointed at a file in a
// temporary directory, or LogindPower on a private bus with a stand-in for
// logind (test/support/fake_logind.cpp; the daemon's mount namespace hides
// the machine's bus). Nothing in a test may call the real logind's
// CanSuspend or Suspend, or write to the real /sys/power/*. That is why
// SysfsPower takes its path explicitly and LogindPower must be connected on
// purpose.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

struct sd_bus;
struct sd_bus_slot;

namespace wol {

class PowerController {
 public:
  virtual ~PowerController() = default;
  virtual const char* name() const = 0;
  // Ok when this backend can suspend the machine now; else a sentence on why not.
  virtual base::Status can_sleep() = 0;
  // Suspends the machine. Whether it returns after the resume or as soon as
  // the request is on its way depends on the backend: see returns_after_resume().
  virtual base::Status sleep() = 0;
  // True: sleep() blocks the calling thread until the machine is awake again
  // (so call it off the loop thread). False: it returns at once, and the
  // resume is signalled separately (logind's PrepareForSleep(false)).
  virtual bool returns_after_resume() const = 0;
};

// Writes a sleep state ("mem") to the kernel's state file, by default
// /sys/power/state. The write returns after the resume. Skips logind: no
// PrepareForSleep, no hooks, other services' delay locks are ignored; and it
// needs a writable /sys (not under ProtectKernelTunables=). Thread-compatible.
class SysfsPower final : public PowerController {
 public:
  static constexpr const char* kSystemStatePath = "/sys/power/state";
  // The path is explicit on purpose: only the daemon passes kSystemStatePath.
  // `mode` is one word the state file lists: "mem", "freeze", "standby".
  explicit SysfsPower(std::string state_path, std::string mode = "mem");
  const char* name() const override { return "sysfs"; }
  base::Status can_sleep() override;
  base::Status sleep() override;
  bool returns_after_resume() const override { return true; }
  // The mem_sleep file next to the state file ("s2idle [deep]"), "" if absent:
  // worth logging at start, since WoL from s2idle depends on the platform.
  std::string mem_sleep() const;

 private:
  std::string state_path_;
  std::string mode_;
};

// A PowerController for tests: records every call, and simulates sleep by
// blocking in sleep() until wake() is called from another thread (e.g. when a
// test's receiver sees the magic packet), or until `sleep_limit` passes
// (then ETIMEDOUT, so a broken test cannot hang). Thread-safe.
class FakePower final : public PowerController {
 public:
  explicit FakePower(std::chrono::milliseconds sleep_limit = std::chrono::seconds(30));
  const char* name() const override { return "fake"; }
  base::Status can_sleep() override;
  base::Status sleep() override;
  bool returns_after_resume() const override { return true; }

  // What can_sleep() answers (ok by default), and a failure sleep() returns
  // at once instead of sleeping (none by default).
  void set_can_sleep(base::Status answer);
  void set_sleep_failure(base::Status failure);

  // Ends a simulated sleep; false (and nothing happens) if not asleep, as a
  // magic packet to a machine that is awake wakes nothing.
  bool wake(const std::string& reason);
  // A callback that wakes this fake; it must not outlive the fake.
  std::function<void()> waker(std::string reason);
  // Waits until some thread is inside sleep(); false on timeout.
  bool wait_until_asleep(std::chrono::milliseconds timeout);

  bool asleep() const;
  int can_sleep_count() const;
  int sleep_count() const;
  std::vector<std::string> calls() const;  // "can_sleep", "sleep", "wake:<reason>" in order
  std::string last_wake_reason() const;

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::chrono::milliseconds sleep_limit_;
  base::Status can_sleep_answer_;
  base::Status sleep_failure_;
  bool asleep_ = false;
  uint64_t wake_generation_ = 0;
  int can_sleep_count_ = 0;
  int sleep_count_ = 0;
  std::vector<std::string> calls_;
  std::string last_wake_reason_;
};

// CanSuspend's answer as a Status: "yes" ok; "challenge" EACCES (polkit would
// ask); "no" EPERM (policy forbids); "na" EOPNOTSUPP (no suspend on this
// hardware or kernel); anything else EPROTO.
base::Status interpret_can_suspend(std::string_view answer);

// Suspending through systemd-logind over sd-bus (org.freedesktop.login1):
// hooks run, PrepareForSleep is emitted, inhibitors are honoured.
//
// Loop integration (the daemon's loop adapter does this; we call no uv_):
// poll fd() for poll_events(), arm a timer for timeout_usec(), and call
// process() after every wakeup. The pattern for a clean sleep: take a delay
// lock at start; on PrepareForSleep(true) flush, commit, re-arm WoL, then
// release the lock; on PrepareForSleep(false) take it again. When the daemon
// itself calls sleep(), it must release its own lock in the true handler,
// or logind waits InhibitDelayMaxSec (5 s).
//
// Ownership and threading: owns its bus connection, slots and lock fd; use
// from one thread only. Handlers run inside process().
class LogindPower final : public PowerController {
 public:
  static base::Result<std::unique_ptr<LogindPower>> connect_system_bus();
  ~LogindPower() override;
  LogindPower(const LogindPower&) = delete;
  LogindPower& operator=(const LogindPower&) = delete;

  const char* name() const override { return "logind"; }
  // Calls CanSuspend (a synchronous method call of a few milliseconds).
  base::Status can_sleep() override;
  // Sends Suspend(false) and returns; a refusal arrives later through the
  // sleep-failure handler, the resume as PrepareForSleep(false).
  base::Status sleep() override;
  bool returns_after_resume() const override { return false; }

  // Inhibit("sleep", "cloned", why, "delay"); holding it delays a suspend
  // until release_delay_lock() (at most InhibitDelayMaxSec).
  base::Status take_delay_lock(const std::string& why);
  void release_delay_lock();
  bool holds_delay_lock() const { return lock_fd_ >= 0; }

  // `handler(true)` before the machine sleeps, `handler(false)` after it
  // resumed or a sleep attempt failed.
  base::Status watch_prepare_for_sleep(std::function<void(bool going_to_sleep)> handler);
  void set_sleep_failure_handler(std::function<void(const base::Status&)> handler);

  int fd() const;
  int poll_events() const;         // POLLIN / POLLOUT bits
  uint64_t timeout_usec() const;   // absolute CLOCK_MONOTONIC; UINT64_MAX: none
  base::Status process();          // dispatches everything that is ready

 private:
  explicit LogindPower(sd_bus* bus);
  struct Callbacks;  // the sd-bus C callbacks, defined with sd-bus.h in power_logind.cpp

  sd_bus* bus_ = nullptr;
  sd_bus_slot* signal_slot_ = nullptr;
  sd_bus_slot* suspend_slot_ = nullptr;
  int lock_fd_ = -1;
  std::function<void(bool)> prepare_handler_;
  std::function<void(const base::Status&)> failure_handler_;
};

}  // namespace wol
