// SPDX-License-Identifier: MIT
// Internal to the daemon: the state of sleeping and waking (docs/WAKE.md).
// The Daemon methods that drive it are in wake.cpp; this struct only holds
// what they share. Everything here is used on the loop thread, except the
// sleeper thread, which only calls power->sleep() and signals `resumed`.
#pragma once

#include <uv.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "base/status.h"
#include "cloned/daemon/sleep_policy.h"
#include "proto/wake_messages.h"
#include "wol/arm.h"
#include "wol/link_monitor.h"
#include "wol/magic.h"
#include "wol/power.h"
#include "wol/power_packet.h"

namespace cloned {

struct WakeRuntime {
  enum class Phase {
    off,        // no [wake] interface: never sleeps
    awake,
    preparing,  // checkpointing the store before sleeping
    leaving,    // told the original; waiting for its connection to close
    asleep,     // power->sleep() under way
  };

  WakeRuntime(uint64_t idle_sleep_ms, uint64_t now_ms) : policy(idle_sleep_ms, now_ms) {}
  ~WakeRuntime();  // cancels a simulated sleep and joins the sleeper

  Phase phase = Phase::off;
  SleepPolicy policy;
  std::unique_ptr<wol::PowerController> power;
  wol::PacketWakePower* test_double = nullptr;  // = power.get() for the test double
  wol::LogindPower* logind = nullptr;           // = power.get() for logind
  std::string power_error;                      // the backend could not be set up

  wol::ArmStatus arm;
  bool counts_as_armed = false;   // armed, or the test double's testing knob
  std::string last_arm_state;     // to log changes only
  wol::MacAddress mac;
  bool mac_known = false;

  std::unique_ptr<wol::LinkMonitor> link;
  uv_poll_t link_poll{};
  uv_poll_t bus_poll{};
  uv_timer_t bus_timer{};
  uv_async_t resumed{};
  bool handles_open = false;
  bool bus_open = false;

  std::thread sleeper;
  std::mutex sleep_mutex;
  base::Status sleep_result;      // set by the sleeper before it signals `resumed`
  uint64_t leave_deadline_ms = 0;
  bool relisten_pending = false;
  bool listener_closed = false;   // the listener's close callback ran (it may be set up again)

  bool sleep_requested = false;   // the original sent sleep_request
  // Set by the apply machine's resync and verify once the lead wires them in;
  // the policy never sleeps while either is true.
  bool resync_active = false;
  bool verify_active = false;

  std::string decision;           // the last reason for staying awake, for status
  uint64_t sleep_count = 0;
  int64_t last_sleep_unix_ms = 0;
  int64_t last_wake_unix_ms = 0;
};

proto::WakeArm to_wake_arm(wol::ArmState s);
// "10.213.0.2/24" -> "10.213.0.255"; "" for IPv6 or nonsense.
std::string ipv4_broadcast(const std::string& address_with_prefix);

}  // namespace cloned
