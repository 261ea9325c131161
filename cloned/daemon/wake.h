// SPDX-License-Identifier: MIT
// Sleeping when idle and waking on the magic packet: the daemon's part
// (docs/WAKE.md). The Waker arms the NIC at start, watches the link inside
// the loop, tells the original its wake info after every hello and before
// sleeping, asks the SleepPolicy every tick, and carries out a sleep:
//   preparing: the store is checkpointed (the policy already waited until
//              every acknowledged write was durable and committed);
//   leaving:   re-armed, the original told (wake_info, going_to_sleep), its
//              session and the listener closed; wait for the socket to go;
//   asleep:    the PowerController suspends; on resume re-arm and listen.
//
// Threading: loop thread only, except the sleeper thread, which only calls
// power->sleep() and signals the `resumed` async handle. Lifetime: the owner
// calls close_handles() before the loop ends (their memory stays valid until
// their close callbacks ran, inside uv_run) and destroys the Waker after
// uv_run returned; the destructor joins the sleeper.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "base/bytes.h"
#include "base/status.h"
#include "cloned/apply/apply.h"
#include "cloned/daemon/sleep_policy.h"
#include "config/config.h"
#include "proto/wake_messages.h"
#include "wol/arm.h"
#include "wol/link_monitor.h"
#include "wol/magic.h"
#include "wol/power.h"
#include "wol/power_packet.h"

namespace cloned {

struct LiveStatus;

// What the Waker needs from the rest of the daemon (which implements it and
// outlives the Waker). Loop thread only.
class WakeHost {
 public:
  // The daemon's share of the sleep decision: sessions, pending work, resync
  // and verify. The Waker fills in armed, unarmed_reason and sleep_requested.
  virtual SleepInputs sleep_inputs(uint64_t now_ms) const = 0;
  // False while stopping, after a fatal error and after a disk failure.
  virtual bool may_sleep() const = 0;
  virtual bool stopping() const = 0;
  virtual bool connections_gone() const = 0;  // no connection open or closing
  // The session whose hello was answered: messages for the original.
  virtual bool session_ready() const = 0;
  virtual void send_to_session(const base::Bytes& plain) = 0;
  virtual void close_session(const std::string& why) = 0;
  // Not listening while asleep; listen_again() returns true once listening
  // again (false: not yet possible, ask again at the next tick).
  virtual void stop_listening() = 0;
  virtual bool listen_again() = 0;
  virtual void checkpoint_store() = 0;  // completes with Waker::on_checkpoint
  // Once no session is left: the state the clone sleeps in is committed,
  // with the disk's fingerprint (a session that asked to sleep invalidated
  // it); false while that is still being taken or committed.
  virtual bool ready_to_sleep() = 0;
  virtual void after_resume() = 0;  // the hardware may have changed while asleep
  virtual void record_event(const std::string& level, const std::string& kind, const std::string& message) = 0;
  virtual void publish_status() = 0;

 protected:
  ~WakeHost() = default;
};

// Sleeps that fail in a row (the power backend refused, or the suspend did
// not happen) before the clone stops trying until it is restarted.
inline constexpr uint32_t kSleepFailuresMax = 3;

// The [wake] settings of cloned.toml the Waker reads.
struct WakeSettings {
  std::string interface;  // "" = never sleeps
  uint32_t idle_sleep_s = 0;
  std::string power_backend = "logind";  // logind, sysfs, test-double
  std::string sysfs_mode = "mem";
  bool test_double_counts_as_armed = false;
  uint32_t test_double_sleep_limit_ms = 3'600'000;  // the test double's sleep fails after this
  bool testing_sleep_on_virtio_nic = false;         // main.cpp checked that the NIC is virtio_net
};

// Whether an arm status lets the clone sleep: magic-packet wake armed and
// its device allowed to wake the machine (power/wakeup not "disabled": the
// kernel then enables no wake for it in suspend, and the clone would stay
// asleep for good); or unsupported, counted as armed by a testing knob (the
// test double's, or the VM suite's on a virtio NIC).
bool arm_lets_sleep(const wol::ArmStatus& arm, bool testing_knob);

// [wake] testing_sleep_on_virtio_nic is refused (main.cpp: cloned does not
// start) unless the wake interface is a virtio_net NIC, read under
// sysfs_root ("/sys"): a real clone has no such NIC.
base::Status check_wake_testing_knob(const config::CloneConfig& c, const std::string& sysfs_root);

class Waker {
 public:
  Waker(WakeHost& host, const apply::Machine& machine, uv_loop_t* loop, WakeSettings settings);
  ~Waker();  // cancels a simulated sleep and joins the sleeper
  Waker(const Waker&) = delete;
  Waker& operator=(const Waker&) = delete;

  void start();                                    // arms, opens the power backend and the link monitor
  void on_tick(uint64_t now_ms);                   // the policy, and the steps of a sleep
  void on_checkpoint(const base::Status& result);  // the store's checkpoint before sleeping
  void on_sleep_request();                         // the original asked the clone to sleep
  void on_session_ended();                         // a request to sleep ends with its session
  void announce();                                 // wake_info to the session: after every hello
  void close_handles();                            // before the loop ends
  void fill_status(LiveStatus& status) const;

 private:
  enum class Phase {
    off,  // no [wake] interface: never sleeps
    awake,
    preparing,  // checkpointing the store before sleeping
    leaving,    // told the original; waiting for its connection to close
    asleep,     // power->sleep() under way
  };
  static const char* phase_name(Phase p);

  // wake.cpp
  void setup_power();
  void arm(const char* when);
  const char* knob_name() const;  // the testing knob that counts an unarmed NIC as armed
  void rearm(const char* when);   // says what the arming is now, even if unchanged
  proto::WakeInfo info() const;
  void on_link_event(const wol::LinkEvent& e);
  SleepInputs inputs(uint64_t now_ms) const;
  void stay_awake();
  // wake_sleep.cpp
  void leave();
  void enter_sleep();
  void on_resumed(const base::Status& result);
  void relisten();
  // wake_logind.cpp
  void setup_logind();
  void on_prepare_for_sleep(bool going);
  void logind_reschedule();
  void logind_process();
  void on_bus_lost(const base::Status& why);

  WakeHost& host_;
  const apply::Machine& machine_;
  uv_loop_t* loop_;
  const WakeSettings settings_;

  Phase phase_ = Phase::off;
  SleepPolicy policy_;
  std::unique_ptr<wol::PowerController> power_;
  wol::PacketWakePower* test_double_ = nullptr;  // = power_.get() for the test double
  wol::LogindPower* logind_ = nullptr;           // = power_.get() for logind
  std::string power_error_;                      // the backend could not be set up, or is lost: no sleep
  uint32_t sleeps_failed_ = 0;                   // sleeps that failed in a row (kSleepFailuresMax: give up)

  wol::ArmStatus arm_;
  bool counts_as_armed_ = false;  // armed, or the test double's testing knob
  std::string last_arm_state_;    // to log changes only
  wol::MacAddress mac_;
  bool mac_known_ = false;

  std::unique_ptr<wol::LinkMonitor> link_;
  uv_poll_t link_poll_{};
  uv_poll_t bus_poll_{};
  uv_timer_t bus_timer_{};
  uv_async_t resumed_{};
  bool handles_open_ = false;
  bool bus_open_ = false;
  bool bus_lost_ = false;  // the connection to logind failed: no longer polled

  std::thread sleeper_;
  std::mutex sleep_mutex_;
  base::Status sleep_result_;  // set by the sleeper before it signals resumed_
  uint64_t leave_deadline_ms_ = 0;
  bool relisten_pending_ = false;
  bool sleep_requested_ = false;  // the original sent sleep_request

  std::string decision_;  // the last reason for staying awake, for status
  uint64_t sleep_count_ = 0;
  int64_t last_sleep_unix_ms_ = 0;
  int64_t last_wake_unix_ms_ = 0;
};

proto::WakeArm to_wake_arm(wol::ArmState s);
// "10.213.0.2/24" -> "10.213.0.255"; "" for IPv6 or nonsense.
std::string ipv4_broadcast(const std::string& address_with_prefix);

}  // namespace cloned
