// SPDX-License-Identifier: MIT
// The original remembers the clone's wake info, and builds the magic packet's
// target from the command line, origin.toml and what it learned, in that order.
#include <doctest/doctest.h>

#include <cerrno>

#include "origin/tests/test_util.h"
#include "origin/wake.h"

namespace {

proto::WakeInfo sample_info() {
  proto::WakeInfo m;
  m.arm = proto::WakeArm::armed;
  m.mac = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55};
  m.interface = "enp0s31f6";
  m.broadcast = "192.168.1.255";
  m.reason = "magic-packet wake is on.\nsecond line";
  return m;
}

config::OriginConfig config_in(const std::string& dir) {
  config::OriginConfig c;
  c.config_path = dir + "/origin.toml";
  c.state_dir = dir + "/state";
  return c;
}

}  // namespace

TEST_CASE("the clone's wake info is saved and loads back; nothing learned is ENOENT") {
  origin_test::TempDir d;
  CHECK(origin::load_clone_wake_info(d / "state").status().code() == ENOENT);
  REQUIRE(origin::save_clone_wake_info(d / "state", sample_info()).is_ok());
  base::Result<proto::WakeInfo> back = origin::load_clone_wake_info(d / "state");
  REQUIRE(back.is_ok());
  CHECK(back->mac == sample_info().mac);
  CHECK(back->interface == "enp0s31f6");
  CHECK(back->broadcast == "192.168.1.255");
  CHECK(back->arm == proto::WakeArm::armed);
  CHECK(back->reason == "magic-packet wake is on. second line");  // one line in the file
}

TEST_CASE("the wake target: --mac over [wake] mac over the learned MAC, and a clear error when none") {
  origin_test::TempDir d;
  config::OriginConfig c = config_in(d.path());
  base::Result<wol::SendOptions> none = origin::wake_target(c, "", "");
  REQUIRE_FALSE(none.is_ok());
  CHECK(none.status().message().find("the clone's MAC address is unknown: give --mac, set [wake] mac") !=
        std::string::npos);

  REQUIRE(origin::save_clone_wake_info(c.state_dir, sample_info()).is_ok());
  base::Result<wol::SendOptions> learned = origin::wake_target(c, "", "");
  REQUIRE(learned.is_ok());
  CHECK(wol::format_mac(learned->target) == "02:11:22:33:44:55");
  CHECK(learned->subnet_broadcast == "192.168.1.255");
  CHECK(learned->interface.empty());  // the clone's interface name is not ours

  c.wake_mac = "02:aa:aa:aa:aa:aa";
  c.wake_interface = "eth1";
  c.wake_broadcast = "10.0.0.255";
  base::Result<wol::SendOptions> configured = origin::wake_target(c, "", "");
  REQUIRE(configured.is_ok());
  CHECK(wol::format_mac(configured->target) == "02:aa:aa:aa:aa:aa");
  CHECK(configured->interface == "eth1");
  CHECK(configured->subnet_broadcast == "10.0.0.255");

  base::Result<wol::SendOptions> given = origin::wake_target(c, "eth9", "02-BB-BB-BB-BB-BB");
  REQUIRE(given.is_ok());
  CHECK(wol::format_mac(given->target) == "02:bb:bb:bb:bb:bb");
  CHECK(given->interface == "eth9");

  CHECK_FALSE(origin::wake_target(c, "", "not a mac").is_ok());
  CHECK(origin::wake_target(c, "", "01:00:5e:00:00:01").status().code() == EINVAL);  // multicast
}

TEST_CASE("refused, timed out and unreachable sessions, and a clone going to sleep, look asleep; others do not") {
  CHECK(origin::looks_asleep(base::Status::error(ECONNREFUSED, "cannot connect")));
  CHECK(origin::looks_asleep(base::Status::error(ETIMEDOUT, "no answer in time")));
  CHECK(origin::looks_asleep(base::Status::error(EHOSTUNREACH, "no route")));
  CHECK(origin::looks_asleep(base::Status::error(ECONNRESET, "the clone goes to sleep (idle)")));
  CHECK_FALSE(origin::looks_asleep(base::Status::error(ECONNRESET, "the clone closed the connection")));
  CHECK_FALSE(origin::looks_asleep(base::Status::error(EAGAIN, "the clone refused: busy")));
}
