// SPDX-License-Identifier: MIT
// Sleeping when idle and waking on the magic packet: the daemon's side
// (docs/WAKE.md). Arms the NIC at start, watches the link inside the loop,
// tells the original its wake info after every hello and before sleeping,
// asks the SleepPolicy every tick, and carries out a sleep:
//   preparing: the store is checkpointed (the policy already waited until
//              every acknowledged write was durable and committed);
//   leaving:   re-armed, the original told (wake_info, going_to_sleep), its
//              session and the listener closed; wait for the socket to go;
//   asleep:    the PowerController suspends; on resume re-arm and listen.
#include "cloned/daemon/wake.h"

#include <arpa/inet.h>
#include <poll.h>
#include <time.h>

#include <cassert>

#include "base/log.h"
#include "cloned/daemon/conn.h"
#include "cloned/daemon/daemon.h"
#include "cloned/daemon/status.h"

namespace cloned {

namespace {
constexpr uint64_t kLeaveWaitMs = 2000;  // for the going_to_sleep to reach the original
constexpr auto kTestDoubleSleepLimit = std::chrono::hours(1);
}  // namespace

WakeRuntime::~WakeRuntime() {
  if (test_double != nullptr) test_double->cancel();
  if (sleeper.joinable()) sleeper.join();
}

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

void Daemon::wake_start() {
  wake_ = std::make_unique<WakeRuntime>(static_cast<uint64_t>(config_.idle_sleep_s) * 1000, now_ms());
  WakeRuntime& w = *wake_;
  if (config_.wake_interface.empty()) {
    LOG_INFO("Wake-on-LAN is not configured (no [wake] interface): the clone never sleeps");
    return;
  }
  w.phase = WakeRuntime::Phase::awake;
  uv_async_init(&loop_, &w.resumed, [](uv_async_t* a) {
    Daemon* d = static_cast<Daemon*>(a->data);
    if (d->wake_->sleeper.joinable()) d->wake_->sleeper.join();
    base::Status result;
    {
      std::lock_guard<std::mutex> lock(d->wake_->sleep_mutex);
      result = d->wake_->sleep_result;
    }
    d->wake_on_resumed(result);
  });
  w.resumed.data = this;
  w.handles_open = true;
  if (base::Result<wol::MacAddress> mac = wol::interface_mac(config_.wake_interface)) {
    w.mac = *mac;
    w.mac_known = true;
  } else {
    LOG_WARN("cannot read the MAC of %s: %s", config_.wake_interface.c_str(), mac.status().message().c_str());
  }
  wake_setup_power();
  wake_arm("at start");
  base::Result<std::unique_ptr<wol::LinkMonitor>> link = wol::LinkMonitor::open(
      config_.wake_interface, [this](const wol::LinkEvent& e) { wake_on_link_event(e); });
  if (!link) {
    LOG_WARN("cannot watch the link of %s (changes will not be noticed): %s", config_.wake_interface.c_str(),
             link.status().message().c_str());
    return;
  }
  w.link = std::move(*link);
  uv_poll_init(&loop_, &w.link_poll, w.link->fd());
  w.link_poll.data = this;
  uv_poll_start(&w.link_poll, UV_READABLE, [](uv_poll_t* p, int, int) {
    static_cast<Daemon*>(p->data)->wake_->link->on_readable();
  });
}

void Daemon::wake_setup_power() {
  WakeRuntime& w = *wake_;
  const std::string& b = config_.power_backend;
  if (b == "test-double") {
    if (!w.mac_known) {
      w.power_error = "the power test double needs the MAC of " + config_.wake_interface;
      return;
    }
    auto p = std::make_unique<wol::PacketWakePower>(config_.wake_interface, w.mac, kTestDoubleSleepLimit);
    w.test_double = p.get();
    w.power = std::move(p);
    LOG_NOTICE("power backend: the test double (it never suspends; asleep, the daemon does not listen until a "
               "magic packet for %s arrives on %s)", wol::format_mac(w.mac).c_str(), config_.wake_interface.c_str());
  } else if (b == "sysfs") {
    auto p = std::make_unique<wol::SysfsPower>(wol::SysfsPower::kSystemStatePath, config_.sysfs_mode);
    if (!p->mem_sleep().empty()) LOG_INFO("power backend sysfs; mem_sleep offers: %s", p->mem_sleep().c_str());
    w.power = std::move(p);
  } else {
    wake_setup_logind();
  }
  if (w.power) {
    if (base::Status s = w.power->can_sleep(); !s.is_ok()) w.power_error = s.message();
  }
  if (!w.power_error.empty()) LOG_WARN("the clone cannot sleep: %s", w.power_error.c_str());
}

// Arms magic-packet wake; logs only changes (it runs before every sleep and
// after every link change).
void Daemon::wake_arm(const char* when) {
  WakeRuntime& w = *wake_;
  if (w.phase == WakeRuntime::Phase::off) return;
  w.arm = wol::arm_magic_wake(config_.wake_interface);
  w.counts_as_armed = w.arm.state == wol::ArmState::armed;
  if (!w.counts_as_armed && w.test_double != nullptr && config_.test_double_counts_as_armed &&
      w.arm.state == wol::ArmState::unsupported) {
    w.counts_as_armed = true;  // the testing knob (config.cpp allows it only with the test double)
  }
  if (!w.power_error.empty()) w.counts_as_armed = false;
  const std::string now = std::string(wol::to_string(w.arm.state)) + (w.counts_as_armed ? "+" : "-");
  if (now == w.last_arm_state) return;
  w.last_arm_state = now;
  if (w.arm.state == wol::ArmState::armed) {
    LOG_NOTICE("Wake-on-LAN armed on %s (%s) %s: %s", config_.wake_interface.c_str(),
               w.mac_known ? wol::format_mac(w.mac).c_str() : "MAC unknown", when, w.arm.reason.c_str());
  } else if (w.counts_as_armed) {
    LOG_WARN("Wake-on-LAN is %s on %s (%s), counted as armed by the testing knob test_double_counts_as_armed",
             wol::to_string(w.arm.state), config_.wake_interface.c_str(), w.arm.reason.c_str());
  } else {
    LOG_WARN("Wake-on-LAN is %s on %s %s: %s; the clone will stay awake rather than sleep for good",
             wol::to_string(w.arm.state), config_.wake_interface.c_str(), when, w.arm.reason.c_str());
  }
  record_event(w.counts_as_armed ? "info" : "warning", "wake",
               std::string("Wake-on-LAN ") + wol::to_string(w.arm.state) + " on " + config_.wake_interface + ": " +
                   w.arm.reason);
  publish_status();
}

proto::WakeInfo Daemon::wake_info() const {
  const WakeRuntime& w = *wake_;
  proto::WakeInfo info;
  if (w.phase == WakeRuntime::Phase::off) {
    info.reason = "Wake-on-LAN is not configured on the clone (no [wake] interface); it never sleeps.";
    return info;
  }
  info.arm = to_wake_arm(w.arm.state);
  info.reason = w.arm.reason;
  if (w.counts_as_armed && w.arm.state != wol::ArmState::armed) {
    info.arm = proto::WakeArm::armed;
    info.flags |= proto::kWakeFlagTestDouble;
    info.reason += " (counted as armed by the testing knob test_double_counts_as_armed)";
  }
  if (!w.power_error.empty()) {
    if (info.arm == proto::WakeArm::armed) info.arm = proto::WakeArm::error;
    info.reason += " The clone cannot sleep: " + w.power_error;
  }
  if (config_.idle_sleep_s != 0) info.flags |= proto::kWakeFlagSleepsWhenIdle;
  info.mac = w.mac.bytes;
  info.idle_sleep_s = config_.idle_sleep_s;
  info.interface = config_.wake_interface;
  if (w.link) {
    for (const std::string& a : w.link->state().addresses) {
      info.broadcast = ipv4_broadcast(a);
      if (!info.broadcast.empty()) break;
    }
  }
  return info;
}

// Tells the connected original how to wake the clone: after every hello,
// after link changes, and before sleeping.
void Daemon::wake_announce() {
  if (session_ == nullptr || session_->phase != Conn::Phase::session || !wake_) return;
  base::Bytes out;
  proto::encode_wake_info(wake_info(), out);
  send_plain(session_, out);
}

void Daemon::wake_on_link_event(const wol::LinkEvent& e) {
  LOG_INFO("link %s: %s%s%s", e.interface.c_str(), wol::to_string(e.kind), e.address.empty() ? "" : " ",
           e.address.c_str());
  if (e.kind == wol::LinkEventKind::appeared || e.kind == wol::LinkEventKind::carrier_up) {
    if (base::Result<wol::MacAddress> mac = wol::interface_mac(config_.wake_interface)) {
      wake_->mac = *mac;
      wake_->mac_known = true;
    }
    wake_->last_arm_state.clear();  // drivers may forget the arming on link down/up: say what it is now
    wake_arm("after the link came up");
  }
  if (e.kind != wol::LinkEventKind::carrier_down && e.kind != wol::LinkEventKind::vanished) wake_announce();
  publish_status();
}

void Daemon::wake_on_sleep_request() {
  LOG_NOTICE("the original asks the clone to sleep");
  record_event("info", "wake", "the original asked the clone to sleep");
  wake_->sleep_requested = true;
  if (wake_->phase == WakeRuntime::Phase::off || !wake_->counts_as_armed) wake_announce();  // it tells why not
}

SleepInputs Daemon::wake_inputs(uint64_t now) const {
  SleepInputs in;
  in.now_ms = now;
  in.session_open = session_ != nullptr || machine_.in_session() || machine_.hello_pending() || pending_handshakes() > 0;
  in.work_pending = machine_.held_bytes() > 0 || machine_.in_flight() > 0 || machine_.queued() > 0 ||
                    !frames_.empty() || machine_.committed().seq < machine_.durable().seq;
  in.mid_epoch = machine_.in_session() && machine_.received_seq() > machine_.durable().seq;
  // A resync in this session (an interrupted one waits for the original's
  // return and does not keep the clone up); a verify the original reported
  // within the last minute.
  in.resync_active = wake_->resync_active || machine_.resync_running() ||
                     (progress_.active && progress_.kind == proto::ProgressKind::resync && now - progress_.updated_ms < 60000);
  in.verify_active = wake_->verify_active ||
                     (progress_.active && progress_.kind == proto::ProgressKind::verify && now - progress_.updated_ms < 60000);
  in.armed = wake_->counts_as_armed;
  in.unarmed_reason = wake_->arm.reason + (wake_->power_error.empty() ? "" : "; " + wake_->power_error);
  in.sleep_requested = wake_->sleep_requested;
  return in;
}

void Daemon::wake_tick(uint64_t now) {
  if (!wake_ || wake_->phase == WakeRuntime::Phase::off) return;
  WakeRuntime& w = *wake_;
  if (w.relisten_pending && w.phase == WakeRuntime::Phase::awake) wake_relisten();
  if (w.phase == WakeRuntime::Phase::leaving && (conns_.empty() || now >= w.leave_deadline_ms)) {
    wake_enter_sleep();
    return;
  }
  if (w.phase != WakeRuntime::Phase::awake || stopping_ || fatal_ || machine_.disk_failed()) return;
  const SleepDecision d = w.policy.decide(wake_inputs(now));
  if (d.report_unarmed) {
    LOG_WARN("%s", d.why.c_str());
    record_event("warning", "wake", d.why);
    wake_announce();
  }
  if (!d.sleep()) {
    if (d.why != w.decision) {
      w.decision = d.why;
      publish_status();
    }
    return;
  }
  LOG_NOTICE("going to sleep: %s Checkpointing the state store first.", d.why.c_str());
  w.decision = d.why;
  w.phase = WakeRuntime::Phase::preparing;
  store_worker_->checkpoint();
}

void Daemon::wake_on_checkpoint(const base::Status& s) {
  WakeRuntime& w = *wake_;
  if (w.phase != WakeRuntime::Phase::preparing) return;
  if (!s.is_ok()) LOG_WARN("checkpointing the state store failed (the clone sleeps anyway): %s", s.message().c_str());
  const SleepInputs in = wake_inputs(now_ms());
  // Something may have arrived while the store worked: then stay awake.
  if (in.work_pending || in.mid_epoch || in.resync_active || in.verify_active || stopping_ ||
      (in.session_open && !in.sleep_requested)) {
    LOG_INFO("not sleeping after all: the original came back or work arrived");
    w.phase = WakeRuntime::Phase::awake;
    w.policy.restart_idle(now_ms());
    return;
  }
  w.last_arm_state.clear();
  wake_arm("before sleeping");
  if (!w.counts_as_armed) {
    w.phase = WakeRuntime::Phase::awake;
    w.policy.restart_idle(now_ms());
    return;
  }
  if (w.test_double != nullptr) {
    // Open the receiver before the listener closes, so no magic packet sent
    // after the original finds the clone silent can be missed.
    if (base::Status r = w.test_double->open_receiver(); !r.is_ok()) {
      LOG_ERROR("the power test double cannot watch for magic packets: %s", r.message().c_str());
      w.phase = WakeRuntime::Phase::awake;
      w.policy.restart_idle(now_ms());
      return;
    }
  }
  wake_announce();
  if (session_ != nullptr && session_->phase == Conn::Phase::session) {
    const apply::Position p = machine_.durable();
    base::Bytes out;
    proto::encode_going_to_sleep({p.seq, machine_.committed().seq, w.decision}, out);
    send_plain(session_, out);
    close_conn(session_, "the clone goes to sleep");
  }
  // Not listening while asleep: the original sees a refused connection and
  // sends a magic packet (with a real suspend it sees no answer at all).
  w.listener_closed = false;
  uv_close(reinterpret_cast<uv_handle_t*>(&listener_),
           [](uv_handle_t* h) { static_cast<Daemon*>(h->data)->wake_->listener_closed = true; });
  w.phase = WakeRuntime::Phase::leaving;
  w.leave_deadline_ms = now_ms() + kLeaveWaitMs;
}

void Daemon::wake_enter_sleep() {
  WakeRuntime& w = *wake_;
  ++w.sleep_count;
  w.last_sleep_unix_ms = unix_ms_now();
  w.phase = WakeRuntime::Phase::asleep;
  LOG_NOTICE("sleeping (power %s), at record %llu; a magic packet for %s on %s wakes the clone", w.power->name(),
             static_cast<unsigned long long>(machine_.durable().seq), wol::format_mac(w.mac).c_str(),
             config_.wake_interface.c_str());
  record_event("notice", "sleep", "sleeping at record " + std::to_string(machine_.durable().seq) + ": " + w.decision);
  publish_status();
  if (!w.power->returns_after_resume()) {
    // logind: Suspend returns at once; the resume is PrepareForSleep(false).
    if (w.logind != nullptr) w.logind->release_delay_lock();
    if (base::Status s = w.power->sleep(); !s.is_ok()) wake_on_resumed(s);
    return;
  }
  w.sleeper = std::thread([this] {
    base::Status s = wake_->power->sleep();
    {
      std::lock_guard<std::mutex> lock(wake_->sleep_mutex);
      wake_->sleep_result = s;
    }
    uv_async_send(&wake_->resumed);
  });
}

void Daemon::wake_on_resumed(const base::Status& result) {
  WakeRuntime& w = *wake_;
  if (w.phase != WakeRuntime::Phase::asleep) return;
  w.phase = WakeRuntime::Phase::awake;
  w.last_wake_unix_ms = unix_ms_now();
  w.sleep_requested = false;
  if (stopping_) return;
  std::string why = result.is_ok() ? "awake again" : "the sleep failed: " + result.message();
  if (result.is_ok() && w.test_double != nullptr) why += " (" + w.test_double->last_wake_reason() + ")";
  if (result.is_ok()) LOG_NOTICE("%s; re-arming and listening", why.c_str());
  else LOG_WARN("%s; staying awake and listening", why.c_str());
  record_event(result.is_ok() ? "notice" : "warning", "wake", why);
  if (w.logind != nullptr) (void)w.logind->take_delay_lock("cloned makes its work durable and re-arms Wake-on-LAN");
  if (w.link) w.link->on_readable();  // re-check the link: changes queued while asleep
  w.last_arm_state.clear();
  wake_arm("after waking");
  if (health_) health_->poll_now();  // the hardware may have changed while asleep
  w.relisten_pending = true;
  wake_relisten();
  w.policy.restart_idle(now_ms());
  publish_status();
}

void Daemon::wake_relisten() {
  if (uv_is_closing(reinterpret_cast<uv_handle_t*>(&listener_)) == 0) {
    wake_->relisten_pending = false;  // still listening
    return;
  }
  if (!wake_->listener_closed) return;  // its close callback has not run yet: next tick
  if (base::Status s = listen(); !s.is_ok()) {
    LOG_ERROR("after waking: %s (trying again)", s.message().c_str());
    return;
  }
  wake_->relisten_pending = false;
  LOG_INFO("listening again on %s:%u", config_.listen_host.c_str(), config_.listen_port);
}

void Daemon::wake_close_handles() {
  if (!wake_ || !wake_->handles_open) return;
  WakeRuntime& w = *wake_;
  w.handles_open = false;
  if (w.test_double != nullptr) w.test_double->cancel();
  if (w.sleeper.joinable()) w.sleeper.join();  // before `resumed` closes: the sleeper signals it
  uv_close(reinterpret_cast<uv_handle_t*>(&w.resumed), nullptr);
  if (w.link) uv_close(reinterpret_cast<uv_handle_t*>(&w.link_poll), nullptr);
  if (w.bus_open) {
    uv_close(reinterpret_cast<uv_handle_t*>(&w.bus_poll), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&w.bus_timer), nullptr);
    w.bus_open = false;
  }
}

// logind: a delay lock held while awake, so that a suspend started elsewhere
// (the lid, a user) waits until the NIC is re-armed; PrepareForSleep(false)
// is the resume. The bus is polled inside the loop.
void Daemon::wake_setup_logind() {
  WakeRuntime& w = *wake_;
  base::Result<std::unique_ptr<wol::LogindPower>> bus = wol::LogindPower::connect_system_bus();
  if (!bus) {
    w.power_error = "cannot reach systemd-logind: " + bus.status().message() + " (set [wake] power = \"sysfs\" on systems without it)";
    return;
  }
  w.logind = bus->get();
  w.power = std::move(*bus);
  w.logind->set_sleep_failure_handler([this](const base::Status& s) { wake_on_resumed(s); });
  base::Status s = w.logind->watch_prepare_for_sleep([this](bool going) {
    WakeRuntime& wr = *wake_;
    if (going) {
      if (wr.phase != WakeRuntime::Phase::asleep) {  // someone else suspends the machine
        wr.last_arm_state.clear();
        wake_arm("before a suspend started elsewhere");
      }
      wr.logind->release_delay_lock();
    } else if (wr.phase == WakeRuntime::Phase::asleep) {
      wake_on_resumed(base::Status::ok());
    } else {
      (void)wr.logind->take_delay_lock("cloned makes its work durable and re-arms Wake-on-LAN");
      wr.last_arm_state.clear();
      wake_arm("after a resume");
    }
  });
  if (s.is_ok()) s = w.logind->take_delay_lock("cloned makes its work durable and re-arms Wake-on-LAN");
  if (!s.is_ok()) LOG_WARN("logind: %s", s.message().c_str());
  uv_poll_init(&loop_, &w.bus_poll, w.logind->fd());
  w.bus_poll.data = this;
  uv_timer_init(&loop_, &w.bus_timer);
  w.bus_timer.data = this;
  w.bus_open = true;
  wake_logind_reschedule();
}

void Daemon::wake_logind_reschedule() {
  WakeRuntime& w = *wake_;
  if (!w.bus_open) return;
  const int want = w.logind->poll_events();
  uv_poll_start(&w.bus_poll, ((want & POLLIN) ? UV_READABLE : 0) | ((want & POLLOUT) ? UV_WRITABLE : 0),
                [](uv_poll_t* p, int, int) {
                  Daemon* d = static_cast<Daemon*>(p->data);
                  if (base::Status s = d->wake_->logind->process(); !s.is_ok()) LOG_DEBUG("logind: %s", s.message().c_str());
                  d->wake_logind_reschedule();
                });
  const uint64_t at_usec = w.logind->timeout_usec();
  if (at_usec == UINT64_MAX) {
    uv_timer_stop(&w.bus_timer);
    return;
  }
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const uint64_t now_usec = static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
  const uint64_t in_ms = at_usec > now_usec ? (at_usec - now_usec + 999) / 1000 : 0;
  uv_timer_start(&w.bus_timer, [](uv_timer_t* t) {
    Daemon* d = static_cast<Daemon*>(t->data);
    (void)d->wake_->logind->process();
    d->wake_logind_reschedule();
  }, in_ms, 0);
}

const char* wake_phase_name(WakeRuntime::Phase p) {
  switch (p) {
    case WakeRuntime::Phase::off: return "";
    case WakeRuntime::Phase::awake: return "awake";
    case WakeRuntime::Phase::preparing: return "preparing to sleep";
    case WakeRuntime::Phase::leaving: return "going to sleep";
    case WakeRuntime::Phase::asleep: return "asleep";
  }
  return "";
}

void Daemon::wake_fill_status(LiveStatus& s) const {
  if (!wake_) return;
  const WakeRuntime& w = *wake_;
  s.wake_interface = config_.wake_interface;
  s.wake_power = w.phase == WakeRuntime::Phase::off ? "" : w.power ? w.power->name() : "unavailable";
  s.wake_idle_sleep_s = config_.idle_sleep_s;
  s.wake_phase = wake_phase_name(w.phase);
  s.wake_decision = w.decision;
  s.wake_sleep_count = w.sleep_count;
  s.wake_last_sleep_unix_ms = w.last_sleep_unix_ms;
  s.wake_last_wake_unix_ms = w.last_wake_unix_ms;
  if (w.phase == WakeRuntime::Phase::off) return;
  const proto::WakeInfo info = wake_info();
  s.wake_mac = w.mac_known ? wol::format_mac(w.mac) : "";
  s.wake_arm = proto::wake_arm_name(info.arm);
  s.wake_reason = info.reason;
}

}  // namespace cloned
