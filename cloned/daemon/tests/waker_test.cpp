// SPDX-License-Identifier: MIT
// The Waker over a fake host, without a [wake] interface: it never sleeps,
// says why when the original asks, and reports itself as not configured.
// (With an interface it needs a NIC and a loop: e2e-wake covers that.)
#include <doctest/doctest.h>

#include <filesystem>

#include "blockio/memory_device.h"
#include "cloned/daemon/clock.h"
#include "cloned/daemon/status.h"
#include "cloned/daemon/wake.h"
#include "test/support/temp_dir.h"

namespace {

struct FakeHost final : cloned::WakeHost {
  bool ready = true;
  std::vector<base::Bytes> sent;
  int checkpoints = 0, stops = 0, events = 0;
  cloned::SleepInputs sleep_inputs(uint64_t now) const override {
    cloned::SleepInputs in;
    in.now_ms = now;
    return in;  // idle: nothing would keep the clone awake
  }
  bool may_sleep() const override { return true; }
  bool stopping() const override { return false; }
  bool connections_gone() const override { return true; }
  bool session_ready() const override { return ready; }
  void send_to_session(const base::Bytes& plain) override { sent.push_back(plain); }
  void close_session(const std::string&) override {}
  void stop_listening() override { ++stops; }
  bool listen_again() override { return true; }
  void checkpoint_store() override { ++checkpoints; }
  bool ready_to_sleep() override { return true; }
  void after_resume() override {}
  void record_event(const std::string&, const std::string&, const std::string&) override { ++events; }
  void publish_status() override {}
};

}  // namespace

TEST_CASE("without a wake interface the Waker never sleeps and tells the original why when asked") {
  blockio::MemoryDevice device(1 << 20, 512);
  apply::Machine machine(device.geometry(), apply::ReplicaState{}, apply::Limits{});
  FakeHost host;
  cloned::WakeSettings settings;
  settings.idle_sleep_s = 10;  // would sleep after 10 s idle, if it could
  cloned::Waker waker(host, machine, nullptr, settings);
  waker.start();  // no interface: no handles, no loop needed
  for (uint64_t t = 0; t < 100; ++t) waker.on_tick(cloned::now_ms() + t * 1000);
  CHECK(host.checkpoints == 0);
  CHECK(host.stops == 0);

  waker.on_sleep_request();
  REQUIRE(host.sent.size() == 1);
  proto::WakeInfo info;
  REQUIRE(proto::decode_wake_info(host.sent[0], info).is_ok());
  CHECK(info.arm == proto::WakeArm::not_configured);
  CHECK(info.reason.find("never sleeps") != std::string::npos);

  cloned::LiveStatus status;
  waker.fill_status(status);
  CHECK(status.wake_interface.empty());
  CHECK(status.wake_phase.empty());
  CHECK(status.wake_power.empty());
  CHECK(status.wake_arm == "not_configured");
  CHECK(status.wake_idle_sleep_s == 10);
  waker.close_handles();  // nothing was opened: a no-op
}

TEST_CASE("the wake info goes only to a session whose hello was answered") {
  blockio::MemoryDevice device(1 << 20, 512);
  apply::Machine machine(device.geometry(), apply::ReplicaState{}, apply::Limits{});
  FakeHost host;
  host.ready = false;
  cloned::Waker waker(host, machine, nullptr, cloned::WakeSettings{});
  waker.start();
  waker.announce();
  CHECK(host.sent.empty());
  host.ready = true;
  waker.announce();
  CHECK(host.sent.size() == 1);
}

TEST_CASE("the VM suite's knob is refused unless the wake NIC is a virtio NIC") {
  test_support::TempDir sysfs{"waker_test"};
  std::filesystem::create_directories(sysfs.path() + "/class/net/ens3/device");
  std::filesystem::create_directories(sysfs.path() + "/class/net/eth0/device");
  std::filesystem::create_directory_symlink("../../bus/virtio/drivers/virtio_net",
                                            sysfs.path() + "/class/net/ens3/device/driver");
  std::filesystem::create_directory_symlink("../../bus/pci/drivers/e1000e",
                                            sysfs.path() + "/class/net/eth0/device/driver");
  config::CloneConfig c;
  c.wake_interface = "eth0";
  CHECK(cloned::check_wake_testing_knob(c, sysfs.path()).is_ok());  // no knob: nothing to check

  c.testing_sleep_on_virtio_nic = true;
  const base::Status real_nic = cloned::check_wake_testing_knob(c, sysfs.path());
  CHECK_FALSE(real_nic.is_ok());
  CHECK(real_nic.message().find("refusing to start") != std::string::npos);
  CHECK(real_nic.message().find("'e1000e'") != std::string::npos);

  c.wake_interface = "wolb";  // a veth: no device, no driver
  const base::Status veth = cloned::check_wake_testing_knob(c, sysfs.path());
  CHECK_FALSE(veth.is_ok());
  CHECK(veth.message().find("'no driver'") != std::string::npos);

  c.wake_interface = "ens3";
  CHECK(cloned::check_wake_testing_knob(c, sysfs.path()).is_ok());
}

// Found in review: an armed NIC whose device may not wake the machine
// (power/wakeup disabled) counted as armed, and the clone slept for good.
TEST_CASE("the clone sleeps only armed with its device allowed to wake the machine, or by a testing knob") {
  wol::ArmStatus arm;
  arm.state = wol::ArmState::armed;
  for (const char* wakeup : {"enabled", ""}) {  // "": no file; the firmware decides
    arm.power_wakeup = wakeup;
    CHECK(cloned::arm_lets_sleep(arm, false));
  }
  arm.power_wakeup = "disabled";
  CHECK_FALSE(cloned::arm_lets_sleep(arm, false));
  CHECK_FALSE(cloned::arm_lets_sleep(arm, true));  // a knob counts an unsupported NIC, not this
  arm.power_wakeup = "";
  for (wol::ArmState state : {wol::ArmState::disarmed, wol::ArmState::no_permission, wol::ArmState::error}) {
    arm.state = state;
    CHECK_FALSE(cloned::arm_lets_sleep(arm, true));
  }
  arm.state = wol::ArmState::unsupported;
  CHECK_FALSE(cloned::arm_lets_sleep(arm, false));
  CHECK(cloned::arm_lets_sleep(arm, true));
}
