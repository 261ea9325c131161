// SPDX-License-Identifier: MIT
// SAFETY: only the test double and SysfsPower on files in a temporary
// directory. Nothing here talks to logind or writes to /sys/power.
#include <doctest/doctest.h>

#include <cerrno>
#include <chrono>
#include <thread>

#include "wol/power.h"
#include "wol/tests/test_support.h"

using namespace std::chrono_literals;
using wol_test::contains;

TEST_CASE("the fake power controller blocks in sleep() until another thread wakes it") {
  wol::FakePower power;
  CHECK_FALSE(power.wake("too early"));  // awake: nothing to wake
  CHECK(power.can_sleep().is_ok());
  base::Status slept;
  std::thread sleeper([&] { slept = power.sleep(); });
  REQUIRE(power.wait_until_asleep(5s));
  CHECK(power.asleep());
  std::this_thread::sleep_for(20ms);
  CHECK(power.asleep());  // still asleep: nothing woke it yet
  power.waker("magic packet")();
  sleeper.join();
  CHECK(slept.is_ok());
  CHECK_FALSE(power.asleep());
  CHECK(power.sleep_count() == 1);
  CHECK(power.can_sleep_count() == 1);
  CHECK(power.last_wake_reason() == "magic packet");
  CHECK(power.calls() == std::vector<std::string>{"can_sleep", "sleep", "wake:magic packet"});
}

TEST_CASE("the fake power controller answers what it is told and never hangs a test") {
  wol::FakePower power(50ms);
  power.set_can_sleep(base::Status::error(EOPNOTSUPP, "no suspend here"));
  CHECK(power.can_sleep().code() == EOPNOTSUPP);
  const base::Status timed_out = power.sleep();
  CHECK(timed_out.code() == ETIMEDOUT);
  CHECK(contains(timed_out.message(), "not woken within 50 ms"));
  power.set_sleep_failure(base::Status::error(EPERM, "refused"));
  CHECK(power.sleep().code() == EPERM);
  CHECK_FALSE(power.asleep());
  CHECK(power.sleep_count() == 2);
  CHECK(power.returns_after_resume());
}

TEST_CASE("the sysfs backend checks the offered states and writes the mode to the state file it was given") {
  wol_test::TempDir dir;
  REQUIRE(dir.ok());
  const std::string state = dir.write("power/state", "freeze mem disk\n");
  dir.write("power/mem_sleep", "s2idle [deep]\n");
  REQUIRE(state != wol::SysfsPower::kSystemStatePath);

  wol::SysfsPower power(state);
  CHECK(power.can_sleep().is_ok());
  CHECK(power.mem_sleep() == "s2idle [deep]");
  CHECK(power.sleep().is_ok());
  CHECK(dir.read("power/state") == "mem");

  wol::SysfsPower standby(state, "standby");
  dir.write("power/state", "freeze mem\n");
  const base::Status refused = standby.can_sleep();
  CHECK(refused.code() == EOPNOTSUPP);
  CHECK(contains(refused.message(), "offers no \"standby\" sleep"));
}

TEST_CASE("the sysfs backend never creates a missing state file") {
  wol_test::TempDir dir;
  REQUIRE(dir.ok());
  wol::SysfsPower power(dir.file("no-such-state"));
  CHECK(power.can_sleep().code() == ENOENT);
  CHECK(power.sleep().code() == ENOENT);
  CHECK(power.mem_sleep().empty());
  CHECK_FALSE(std::filesystem::exists(dir.file("no-such-state")));
}

TEST_CASE("logind's CanSuspend answers become statuses that say what to do") {
  CHECK(wol::interpret_can_suspend("yes").is_ok());
  CHECK(wol::interpret_can_suspend("challenge").code() == EACCES);
  CHECK(contains(wol::interpret_can_suspend("challenge").message(), "polkit"));
  CHECK(wol::interpret_can_suspend("no").code() == EPERM);
  CHECK(wol::interpret_can_suspend("na").code() == EOPNOTSUPP);
  CHECK(wol::interpret_can_suspend("maybe").code() == EPROTO);
}
