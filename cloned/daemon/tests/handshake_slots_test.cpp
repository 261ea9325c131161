// SPDX-License-Identifier: MIT
// Handshake slots and the notice limit (issue 14, findings 1 and 3).
#include <doctest/doctest.h>

#include "cloned/daemon/handshake_slots.h"

using cloned::handshake_to_evict;
using cloned::HelloRateLimit;
using cloned::LogRateLimit;
using cloned::PendingHandshake;

TEST_CASE("a newcomer takes a free slot without ending anyone") {
  CHECK(handshake_to_evict({}, "10.0.0.2", 4) == 0);
  CHECK(handshake_to_evict({{1, "10.0.0.9"}, {2, "10.0.0.8"}}, "10.0.0.2", 4) == 0);
}

TEST_CASE("when the slots are full, the oldest handshake of the address holding the most goes") {
  const std::vector<PendingHandshake> full = {{1, "10.0.0.2"}, {2, "10.0.0.9"}, {3, "10.0.0.9"}, {4, "10.0.0.7"}};
  CHECK(handshake_to_evict(full, "10.0.0.1", 4) == 2);  // not 1: the original holds one slot
}

TEST_CASE("an address holding its share (half the slots) makes room from its own") {
  const std::vector<PendingHandshake> two = {{5, "10.0.0.9"}, {6, "10.0.0.9"}};
  CHECK(handshake_to_evict(two, "10.0.0.9", 4) == 5);
  CHECK(handshake_to_evict(two, "10.0.0.2", 4) == 0);  // another address still has room
  CHECK(handshake_to_evict({{7, "a"}}, "a", 1) == 7);  // one slot: share of one
}

TEST_CASE("a stranger reopening connections from one address never pushes out the original") {
  std::vector<PendingHandshake> pending = {{1, "original"}};
  uint64_t next = 2;
  for (int round = 0; round < 1000; ++round) {
    const uint64_t victim = handshake_to_evict(pending, "stranger", 4);
    CHECK(victim != 1);
    std::erase_if(pending, [&](const PendingHandshake& p) { return p.id == victim; });
    pending.push_back({next++, "stranger"});
    CHECK(pending.size() <= 4);
  }
  CHECK(pending.front().id == 1);
}

// Found in review: strangers on three addresses, each holding one slot and
// reconnecting without a word, pushed out the original in turn.
TEST_CASE("strangers on several addresses that never speak do not push out an original that spoke") {
  std::vector<PendingHandshake> pending = {{1, "s1"}, {2, "s2"}, {3, "s3"}, {4, "original", true}};
  uint64_t next = 5;
  for (int round = 0; round < 1000; ++round) {
    const std::string from = "s" + std::to_string(1 + round % 3);
    const uint64_t victim = handshake_to_evict(pending, from, 4);
    REQUIRE(victim != 0);
    CHECK(victim != 4);
    std::erase_if(pending, [&](const PendingHandshake& p) { return p.id == victim; });
    pending.push_back({next++, from});
    CHECK(pending.size() <= 4);
  }
  // Between two that spoke, or two silent ones, the oldest still goes.
  CHECK(handshake_to_evict({{1, "a", true}, {2, "b", true}, {3, "c"}, {4, "d", true}}, "e", 4) == 3);
  CHECK(handshake_to_evict({{1, "a", true}, {2, "b", true}, {3, "c", true}, {4, "d", true}}, "e", 4) == 1);
  CHECK(handshake_to_evict({{1, "a"}, {2, "a", true}, {3, "b", true}, {4, "b"}}, "a", 4) == 1);  // its own share
}

TEST_CASE("notices: a burst per window, then counted, and the count told later") {
  LogRateLimit limit(5, 10'000);
  uint64_t held = 99;
  int admitted = 0;
  for (int i = 0; i < 1000; ++i) admitted += limit.admit(1000 + static_cast<uint64_t>(i), held) ? 1 : 0;
  CHECK(admitted == 5);
  CHECK(limit.take_held(5000) == 0);  // the window is not over yet
  CHECK(limit.take_held(11'000) == 995);
  CHECK(limit.take_held(30'000) == 0);
  REQUIRE(limit.admit(30'001, held));
  CHECK(held == 0);
  for (int i = 0; i < 7; ++i) (void)limit.admit(30'002, held);  // 4 admitted, 3 held
  REQUIRE(limit.admit(40'002, held));                           // the next window's first line tells them
  CHECK(held == 3);
}

TEST_CASE("hellos: a burst per address, then a few a second; other addresses keep theirs; the table is bounded") {
  HelloRateLimit limit(32, 4, 3);
  int admitted = 0;
  for (int i = 0; i < 1000; ++i) admitted += limit.admit("flood", 1000) ? 1 : 0;
  CHECK(admitted == 32);
  CHECK(limit.admit("original", 1000));  // another address is not held up by it
  // 4 a second after that, however fast it asks.
  admitted = 0;
  for (uint64_t ms = 1001; ms <= 11'000; ++ms) admitted += limit.admit("flood", ms) ? 1 : 0;
  CHECK(admitted == 40);
  // A quiet address fills up to the burst again, not past it.
  admitted = 0;
  for (int i = 0; i < 100; ++i) admitted += limit.admit("original", 60'000) ? 1 : 0;
  CHECK(admitted == 32);

  // At 3 addresses, a full bucket goes first; none full, a new address
  // shares the overflow bucket (as deep as one address's).
  HelloRateLimit table(4, 1, 3);
  for (int i = 0; i < 10; ++i) (void)table.admit("flood", 0);
  CHECK(table.admit("quiet", 0));
  for (int i = 0; i < 3; ++i) CHECK(table.admit("busy", 0));
  for (int i = 0; i < 4; ++i) CHECK(table.admit("cycled-" + std::to_string(i), 100));  // the overflow's 4
  CHECK_FALSE(table.admit("cycled-4", 100));
  CHECK(table.hosts() == 3);
  CHECK_FALSE(table.admit("flood", 100));  // its empty bucket was kept
  CHECK(table.admit("busy", 100));         // its last token, kept too
  CHECK_FALSE(table.admit("busy", 100));
  CHECK(table.admit("later", 4000));  // all three full again by then: dropped
  CHECK(table.hosts() == 1);
  // An IPv6 address counts by its /64.
  CHECK(HelloRateLimit::key_of("2001:db8::1") == "2001:db8::/64");
  CHECK(HelloRateLimit::key_of("2001:db8:0:0:1:2:3:4") == "2001:db8::/64");
  CHECK(HelloRateLimit::key_of("::ffff:10.0.0.1") == "::ffff:10.0.0.1");
  CHECK(HelloRateLimit::key_of("10.0.0.1") == "10.0.0.1");
  HelloRateLimit six(2, 1, 8);
  CHECK(six.admit("2001:db8::1", 0));
  CHECK(six.admit("2001:db8::2", 0));
  CHECK_FALSE(six.admit("2001:db8::3", 0));
  CHECK(six.admit("2001:db8:1::1", 0));
}
