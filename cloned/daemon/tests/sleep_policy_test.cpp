// SPDX-License-Identifier: MIT
// The sleep policy driven by a fake clock (plain numbers of milliseconds).
#include <doctest/doctest.h>

#include <string>

#include "cloned/daemon/sleep_policy.h"

using cloned::SleepInputs;
using cloned::SleepPolicy;
using cloned::SleepVerdict;

namespace {

constexpr uint64_t kIdleMs = 60'000;

SleepInputs idle_armed(uint64_t now_ms) {
  SleepInputs in;
  in.now_ms = now_ms;
  in.armed = true;
  return in;
}

}  // namespace

TEST_CASE("an idle, armed clone sleeps once the idle time has passed, not before") {
  SleepPolicy p(kIdleMs, 1000);
  CHECK(p.decide(idle_armed(1000)).verdict == SleepVerdict::not_idle_long);
  CHECK(p.decide(idle_armed(1000 + kIdleMs - 1)).verdict == SleepVerdict::not_idle_long);
  CHECK(p.decide(idle_armed(1000 + kIdleMs)).sleep());
}

TEST_CASE("idle_sleep 0 never sleeps on its own, but a sleep request does") {
  SleepPolicy p(0, 0);
  CHECK(p.decide(idle_armed(10'000'000)).verdict == SleepVerdict::disabled);
  SleepInputs in = idle_armed(10'000'001);
  in.sleep_requested = true;
  CHECK(p.decide(in).sleep());
}

TEST_CASE("never sleeps mid-epoch, mid-resync, mid-verify, with work pending or a session open") {
  struct Case {
    const char* name;
    void (*set)(SleepInputs&);
    SleepVerdict expected;
  };
  const Case cases[] = {
      {"mid-epoch", [](SleepInputs& i) { i.mid_epoch = true; }, SleepVerdict::mid_epoch},
      {"resync", [](SleepInputs& i) { i.resync_active = true; }, SleepVerdict::resync_active},
      {"verify", [](SleepInputs& i) { i.verify_active = true; }, SleepVerdict::verify_active},
      {"pending", [](SleepInputs& i) { i.work_pending = true; }, SleepVerdict::work_pending},
      {"session", [](SleepInputs& i) { i.session_open = true; }, SleepVerdict::session_open},
  };
  for (const Case& c : cases) {
    const std::string name = c.name;
    CAPTURE(name);
    SleepPolicy p(kIdleMs, 0);
    // Busy for a long time, far past the idle time: still awake.
    for (uint64_t t = 0; t <= 10 * kIdleMs; t += 1000) {
      SleepInputs in = idle_armed(t);
      c.set(in);
      REQUIRE(p.decide(in).verdict == c.expected);
    }
    // Once the condition clears, the idle time counts from the last time it
    // was seen (t = 10 x idle), not from the start.
    const uint64_t last_busy = 10 * kIdleMs;
    CHECK(p.decide(idle_armed(last_busy + 1000)).verdict == SleepVerdict::not_idle_long);
    CHECK(p.decide(idle_armed(last_busy + kIdleMs - 1)).verdict == SleepVerdict::not_idle_long);
    CHECK(p.decide(idle_armed(last_busy + kIdleMs)).sleep());
  }
}

TEST_CASE("a sleep request does not override mid-epoch, resync, verify or pending work") {
  for (int which = 0; which < 4; ++which) {
    CAPTURE(which);
    SleepPolicy p(kIdleMs, 0);
    SleepInputs in = idle_armed(5 * kIdleMs);
    in.sleep_requested = true;
    in.session_open = true;
    in.mid_epoch = which == 0;
    in.resync_active = which == 1;
    in.verify_active = which == 2;
    in.work_pending = which == 3;
    CHECK_FALSE(p.decide(in).sleep());
  }
  SleepPolicy p(kIdleMs, 0);
  SleepInputs in = idle_armed(1);  // not idle long, session open: the request still counts
  in.sleep_requested = true;
  in.session_open = true;
  CHECK(p.decide(in).sleep());
}

TEST_CASE("unarmed, the clone stays awake and reports it once, again after a restart") {
  SleepPolicy p(kIdleMs, 0);
  SleepInputs in = idle_armed(kIdleMs);
  in.armed = false;
  in.unarmed_reason = "veth cannot wake on a magic packet";
  cloned::SleepDecision d = p.decide(in);
  CHECK(d.verdict == SleepVerdict::unarmed);
  CHECK(d.report_unarmed);
  CHECK(d.why.find("veth cannot wake") != std::string::npos);
  for (uint64_t t = kIdleMs + 1; t < kIdleMs + 100; ++t) {
    in.now_ms = t;
    d = p.decide(in);
    REQUIRE(d.verdict == SleepVerdict::unarmed);
    REQUIRE_FALSE(d.report_unarmed);
  }
  p.restart_idle(2 * kIdleMs);
  in.now_ms = 3 * kIdleMs;
  CHECK(p.decide(in).report_unarmed);
  in.armed = true;
  CHECK(p.decide(in).sleep());
}
