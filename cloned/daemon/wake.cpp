// SPDX-License-Identifier: MIT
// The Waker (wake.h): its start, arming, the wake info and the link monitor.
// The sleep itself is in wake_sleep.cpp, logind in wake_logind.cpp.
#include "cloned/daemon/wake.h"

#include <arpa/inet.h>

#include "base/log.h"
#include "cloned/daemon/clock.h"
#include "cloned/daemon/status.h"

namespace cloned {

proto::WakeArm to_wake_arm(wol::ArmState s) {
  switch (s) {
    case wol::ArmState::armed: return proto::WakeArm::armed;
    case wol::ArmState::disarmed: return proto::WakeArm::disarmed;
    case wol::ArmState::unsupported: return proto::WakeArm::unsupported;
    case wol::ArmState::no_permission: return proto::WakeArm::no_permission;
    case wol::ArmState::error: return proto::WakeArm::error;
  }
  return proto::WakeArm::error;
}

std::string ipv4_broadcast(const std::string& address) {
  const size_t slash = address.find('/');
  if (slash == std::string::npos) return "";
  in_addr a{};
  if (inet_pton(AF_INET, address.substr(0, slash).c_str(), &a) != 1) return "";
  int prefix = -1;
  try {
    prefix = std::stoi(address.substr(slash + 1));
  } catch (const std::exception&) {
    return "";
  }
  if (prefix < 0 || prefix > 30) return "";  // /31 and /32 have no broadcast
  const uint32_t host_mask = prefix == 0 ? 0xffffffffu : (1u << (32 - prefix)) - 1;
  a.s_addr = htonl(ntohl(a.s_addr) | host_mask);
  char text[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &a, text, sizeof text);
  return text;
}

Waker::Waker(WakeHost& host, const apply::Machine& machine, uv_loop_t* loop, WakeSettings settings)
    : host_(host),
      machine_(machine),
      loop_(loop),
      settings_(std::move(settings)),
      policy_(static_cast<uint64_t>(settings_.idle_sleep_s) * 1000, now_ms()) {}

Waker::~Waker() {
  if (test_double_ != nullptr) test_double_->cancel();
  if (sleeper_.joinable()) sleeper_.join();
}

void Waker::start() {
  if (settings_.interface.empty()) {
    LOG_INFO("Wake-on-LAN is not configured (no [wake] interface): the clone never sleeps");
    return;
  }
  phase_ = Phase::awake;
  uv_async_init(loop_, &resumed_, [](uv_async_t* a) {
    Waker* w = static_cast<Waker*>(a->data);
    if (w->sleeper_.joinable()) w->sleeper_.join();
    base::Status result;
    {
      std::lock_guard<std::mutex> lock(w->sleep_mutex_);
      result = w->sleep_result_;
    }
    w->on_resumed(result);
  });
  resumed_.data = this;
  handles_open_ = true;
  if (base::Result<wol::MacAddress> mac = wol::interface_mac(settings_.interface)) {
    mac_ = *mac;
    mac_known_ = true;
  } else {
    LOG_WARN("cannot read the MAC of %s: %s", settings_.interface.c_str(), mac.status().message().c_str());
  }
  setup_power();
  arm("at start");
  base::Result<std::unique_ptr<wol::LinkMonitor>> link = wol::LinkMonitor::open(
      settings_.interface, [this](const wol::LinkEvent& e) { on_link_event(e); });
  if (!link) {
    LOG_WARN("cannot watch the link of %s (changes will not be noticed): %s", settings_.interface.c_str(),
             link.status().message().c_str());
    return;
  }
  link_ = std::move(*link);
  uv_poll_init(loop_, &link_poll_, link_->fd());
  link_poll_.data = this;
  uv_poll_start(&link_poll_, UV_READABLE,
                [](uv_poll_t* p, int, int) { static_cast<Waker*>(p->data)->link_->on_readable(); });
}

void Waker::setup_power() {
  const std::string& b = settings_.power_backend;
  if (b == "test-double") {
    if (!mac_known_) {
      power_error_ = "the power test double needs the MAC of " + settings_.interface;
      return;
    }
    auto p = std::make_unique<wol::PacketWakePower>(
        settings_.interface, mac_, std::chrono::milliseconds(settings_.test_double_sleep_limit_ms));
    test_double_ = p.get();
    power_ = std::move(p);
    LOG_NOTICE("power backend: the test double (it never suspends; asleep, the daemon does not listen until a "
               "magic packet for %s arrives on %s)", wol::format_mac(mac_).c_str(), settings_.interface.c_str());
  } else if (b == "sysfs") {
    auto p = std::make_unique<wol::SysfsPower>(wol::SysfsPower::kSystemStatePath, settings_.sysfs_mode);
    if (!p->mem_sleep().empty()) LOG_INFO("power backend sysfs; mem_sleep offers: %s", p->mem_sleep().c_str());
    power_ = std::move(p);
  } else {
    setup_logind();
  }
  if (power_) {
    if (base::Status s = power_->can_sleep(); !s.is_ok()) power_error_ = s.message();
  }
  if (!power_error_.empty()) LOG_WARN("the clone cannot sleep: %s", power_error_.c_str());
}

// [wake] testing_sleep_on_virtio_nic lets the clone sleep on a NIC that cannot
// be armed; the VM suite needs it, a real clone must never have it: only a
// virtual machine's virtio NIC may carry it.
base::Status check_wake_testing_knob(const config::CloneConfig& c, const std::string& sysfs_root) {
  if (!c.testing_sleep_on_virtio_nic) return base::Status::ok();
  const std::string driver = wol::read_nic_driver(sysfs_root, c.wake_interface);
  if (driver == "virtio_net") {
    LOG_WARN("[wake] testing_sleep_on_virtio_nic: the clone sleeps although %s cannot be armed for Wake-on-LAN; "
             "only a test's stand-in for the NIC can wake it",
             c.wake_interface.c_str());
    return base::Status::ok();
  }
  return base::Status::error(EPERM, "refusing to start: [wake] testing_sleep_on_virtio_nic is for the VM test only, "
                                    "where the wake interface is a virtual machine's virtio NIC; " +
                                        c.wake_interface + " is driven by '" + (driver.empty() ? "no driver" : driver) +
                                        "'. Remove the key: a real clone sleeps only when its NIC is armed.");
}

bool arm_lets_sleep(const wol::ArmStatus& arm, bool testing_knob) {
  if (arm.state == wol::ArmState::armed) return arm.power_wakeup != "disabled";
  return testing_knob && arm.state == wol::ArmState::unsupported;
}

const char* Waker::knob_name() const {
  return settings_.testing_sleep_on_virtio_nic ? "testing_sleep_on_virtio_nic" : "test_double_counts_as_armed";
}

// Arms magic-packet wake; logs only changes (it runs before every sleep and
// after every link change).
void Waker::arm(const char* when) {
  if (phase_ == Phase::off) return;
  arm_ = wol::arm_magic_wake(settings_.interface);
  // The testing knobs: config.cpp allows the first only with the test
  // double, main.cpp the second only on a virtio NIC.
  const bool knob = (test_double_ != nullptr && settings_.test_double_counts_as_armed) ||
                    settings_.testing_sleep_on_virtio_nic;
  counts_as_armed_ = arm_lets_sleep(arm_, knob) && power_error_.empty();
  const std::string now = std::string(wol::to_string(arm_.state)) + (counts_as_armed_ ? "+" : "-");
  if (now == last_arm_state_) return;
  last_arm_state_ = now;
  const char* nic = settings_.interface.c_str();
  if (arm_.state == wol::ArmState::armed && counts_as_armed_) {
    LOG_NOTICE("Wake-on-LAN armed on %s (%s) %s: %s", nic, mac_known_ ? wol::format_mac(mac_).c_str() : "MAC unknown",
               when, arm_.reason.c_str());
  } else if (counts_as_armed_) {
    LOG_WARN("Wake-on-LAN is %s on %s (%s), counted as armed by the testing knob %s", wol::to_string(arm_.state), nic,
             arm_.reason.c_str(), knob_name());
  } else {
    LOG_WARN("Wake-on-LAN is %s on %s %s: %s; the clone will stay awake rather than sleep for good",
             wol::to_string(arm_.state), nic, when, arm_.reason.c_str());
  }
  host_.record_event(counts_as_armed_ ? "info" : "warning", "wake",
                     std::string("Wake-on-LAN ") + wol::to_string(arm_.state) + " on " + settings_.interface + ": " +
                         arm_.reason);
  host_.publish_status();
}

void Waker::rearm(const char* when) {
  last_arm_state_.clear();
  arm(when);
}

proto::WakeInfo Waker::info() const {
  proto::WakeInfo info;
  if (phase_ == Phase::off) {
    info.reason = "Wake-on-LAN is not configured on the clone (no [wake] interface); it never sleeps.";
    return info;
  }
  info.arm = to_wake_arm(arm_.state);
  info.reason = arm_.reason;
  if (arm_.state == wol::ArmState::armed && !arm_lets_sleep(arm_, false)) {
    info.arm = proto::WakeArm::error;  // armed, but the machine may not wake: it stays awake
    info.reason += " The clone stays awake until then.";
  }
  if (counts_as_armed_ && arm_.state != wol::ArmState::armed) {
    info.arm = proto::WakeArm::armed;
    info.flags |= proto::kWakeFlagTestDouble;
    info.reason += std::string(" (counted as armed by the testing knob ") + knob_name() + ")";
  }
  if (!power_error_.empty()) {
    if (info.arm == proto::WakeArm::armed) info.arm = proto::WakeArm::error;
    info.reason += " The clone cannot sleep: " + power_error_;
  }
  if (settings_.idle_sleep_s != 0) info.flags |= proto::kWakeFlagSleepsWhenIdle;
  info.mac = mac_.bytes;
  info.idle_sleep_s = settings_.idle_sleep_s;
  info.interface = settings_.interface;
  if (link_) {
    for (const std::string& a : link_->state().addresses) {
      info.broadcast = ipv4_broadcast(a);
      if (!info.broadcast.empty()) break;
    }
  }
  return info;
}

// Tells the connected original how to wake the clone: after every hello,
// after link changes, and before sleeping.
void Waker::announce() {
  if (!host_.session_ready()) return;
  base::Bytes out;
  proto::encode_wake_info(info(), out);
  host_.send_to_session(out);
}

void Waker::on_link_event(const wol::LinkEvent& e) {
  LOG_INFO("link %s: %s%s%s", e.interface.c_str(), wol::to_string(e.kind), e.address.empty() ? "" : " ",
           e.address.c_str());
  if (e.kind == wol::LinkEventKind::appeared || e.kind == wol::LinkEventKind::carrier_up) {
    if (base::Result<wol::MacAddress> mac = wol::interface_mac(settings_.interface)) {
      mac_ = *mac;
      mac_known_ = true;
    }
    rearm("after the link came up");  // drivers may forget the arming on link down/up
  }
  if (e.kind != wol::LinkEventKind::carrier_down && e.kind != wol::LinkEventKind::vanished) announce();
  host_.publish_status();
}

void Waker::on_sleep_request() {
  LOG_NOTICE("the original asks the clone to sleep");
  host_.record_event("info", "wake", "the original asked the clone to sleep");
  sleep_requested_ = true;
  if (phase_ == Phase::off || !counts_as_armed_) {
    announce();  // it tells why not
    // Refused: the request must not stay behind to put the clone to sleep
    // once it is armed, in a later session's first quiet moment.
    sleep_requested_ = false;
  }
}

// The request belongs to the session that sent it: once that session has
// ended, a later session's first quiet moment is not its cue. (A sleep
// already prepared goes on without it: on_checkpoint and leave() do not
// look at the request again.)
void Waker::on_session_ended() { sleep_requested_ = false; }

SleepInputs Waker::inputs(uint64_t now) const {
  SleepInputs in = host_.sleep_inputs(now);
  in.armed = counts_as_armed_;
  in.unarmed_reason = arm_.reason + (power_error_.empty() ? "" : "; " + power_error_);
  in.sleep_requested = sleep_requested_;
  return in;
}

const char* Waker::phase_name(Phase p) {
  switch (p) {
    case Phase::off: return "";
    case Phase::awake: return "awake";
    case Phase::preparing: return "preparing to sleep";
    case Phase::leaving: return "going to sleep";
    case Phase::asleep: return "asleep";
  }
  return "";
}

void Waker::fill_status(LiveStatus& s) const {
  s.wake_interface = settings_.interface;
  s.wake_power = phase_ == Phase::off ? "" : power_ ? power_->name() : "unavailable";
  s.wake_idle_sleep_s = settings_.idle_sleep_s;
  s.wake_phase = phase_name(phase_);
  s.wake_decision = decision_;
  s.wake_sleep_count = sleep_count_;
  s.wake_last_sleep_unix_ms = last_sleep_unix_ms_;
  s.wake_last_wake_unix_ms = last_wake_unix_ms_;
  if (phase_ == Phase::off) return;
  const proto::WakeInfo wake_info = info();
  s.wake_mac = mac_known_ ? wol::format_mac(mac_) : "";
  s.wake_arm = proto::wake_arm_name(wake_info.arm);
  s.wake_reason = wake_info.reason;
}

}  // namespace cloned
