// SPDX-License-Identifier: MIT
// The link monitor against a real veth in namespaces this test creates
// (needs root): carrier down/up, addresses, and a forced queue overrun.
#include <doctest/doctest.h>
#include <poll.h>

#include <algorithm>
#include <chrono>

#include "wol/link_monitor.h"
#include "test/support/netns.h"
#include "test/support/requires.h"
#include "wol/tests/test_support.h"

using namespace std::chrono_literals;
using test_support::NetnsPair;

namespace {

// A monitor opened inside B's namespace, and what it reported.
struct Watch {
  std::unique_ptr<wol::LinkMonitor> monitor;
  std::vector<wol::LinkEvent> events;

  std::string open(const NetnsPair& pair, const wol::LinkMonitorOptions& options = {}) {
    std::string error;
    test_support::run_in_netns(pair.b(), [&] {
      auto opened = wol::LinkMonitor::open(NetnsPair::kVethB, [this](const wol::LinkEvent& e) { events.push_back(e); },
                                           options);
      if (opened) monitor = std::move(opened.value());
      else error = opened.status().message();
    }, error);
    return error;
  }

  // Polls and dispatches, as the daemon's loop would, until an event of
  // `kind` (with `address`, if given) was reported or `limit` passed.
  bool wait_for(wol::LinkEventKind kind, const std::string& address = "", std::chrono::milliseconds limit = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      for (const wol::LinkEvent& event : events)
        if (event.kind == kind && (address.empty() || event.address == address)) return true;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd ready{monitor->fd(), POLLIN, 0};
      if (::poll(&ready, 1, static_cast<int>(left.count())) > 0) monitor->on_readable();
    }
  }

  // Reads until nothing more arrives for `quiet`.
  void drain(std::chrono::milliseconds quiet = 300ms) {
    pollfd ready{monitor->fd(), POLLIN, 0};
    while (::poll(&ready, 1, static_cast<int>(quiet.count())) > 0) monitor->on_readable();
  }
};

}  // namespace

TEST_CASE("in namespaces: the link monitor reports carrier down and up, and addresses added and removed") {
  test_support::require({test_support::network_namespaces()});
  NetnsPair pair;
  REQUIRE_MESSAGE(pair.ready(), pair.error());
  Watch watch;
  const std::string error = watch.open(pair);
  REQUIRE_MESSAGE(watch.monitor, error);
  CHECK(watch.monitor->state().present);
  CHECK(watch.monitor->state().ifindex > 0);
  CHECK(watch.monitor->state().addresses.count("10.213.0.2/24") == 1);
  // The pair was just brought up: the carrier may still be on its way.
  if (!watch.monitor->state().carrier) CHECK(watch.wait_for(wol::LinkEventKind::carrier_up));
  REQUIRE(watch.monitor->state().carrier);
  watch.events.clear();

  REQUIRE(pair.ip(pair.a(), std::string("link set ") + NetnsPair::kVethA + " down"));  // the peer: no carrier
  CHECK(watch.wait_for(wol::LinkEventKind::carrier_down));
  CHECK_FALSE(watch.monitor->state().carrier);
  REQUIRE(pair.ip(pair.a(), std::string("link set ") + NetnsPair::kVethA + " up"));
  CHECK(watch.wait_for(wol::LinkEventKind::carrier_up));
  CHECK(watch.monitor->state().carrier);
  CHECK(watch.monitor->state().operstate == 6);  // IF_OPER_UP

  watch.events.clear();
  REQUIRE(pair.ip(pair.b(), std::string("link set ") + NetnsPair::kVethB + " down"));  // itself
  CHECK(watch.wait_for(wol::LinkEventKind::carrier_down));
  REQUIRE(pair.ip(pair.b(), std::string("link set ") + NetnsPair::kVethB + " up"));
  CHECK(watch.wait_for(wol::LinkEventKind::carrier_up));

  REQUIRE(pair.ip(pair.b(), std::string("addr add 10.213.0.22/24 dev ") + NetnsPair::kVethB));
  CHECK(watch.wait_for(wol::LinkEventKind::address_added, "10.213.0.22/24"));
  CHECK(watch.monitor->state().addresses.count("10.213.0.22/24") == 1);
  REQUIRE(pair.ip(pair.b(), std::string("addr del 10.213.0.22/24 dev ") + NetnsPair::kVethB));
  CHECK(watch.wait_for(wol::LinkEventKind::address_removed, "10.213.0.22/24"));
  for (const wol::LinkEvent& event : watch.events) CHECK(event.interface == NetnsPair::kVethB);
  CHECK(watch.monitor->overrun_count() == 0);
}

TEST_CASE("in namespaces: after a notification overrun the monitor dumps again and misses no address") {
  test_support::require({test_support::network_namespaces()});
  NetnsPair pair;
  REQUIRE_MESSAGE(pair.ready(), pair.error());
  wol_test::TempDir dir;
  REQUIRE(dir.ok());
  Watch watch;
  wol::LinkMonitorOptions tiny;
  tiny.receive_buffer_bytes = 1024;  // the kernel's minimum: a few notifications fit
  const std::string error = watch.open(pair, tiny);
  REQUIRE_MESSAGE(watch.monitor, error);

  // 64 addresses in one ip -batch run while the monitor is not reading.
  std::string batch;
  for (int i = 1; i <= 64; ++i)
    batch += "addr add 10.213.1." + std::to_string(i) + "/24 dev " + NetnsPair::kVethB + "\n";
  const std::string batch_file = dir.write("addresses.batch", batch);
  REQUIRE(pair.ip(pair.b(), "-batch " + batch_file));

  watch.drain();
  CHECK(watch.monitor->overrun_count() >= 1);
  for (int i = 1; i <= 64; ++i) {
    const std::string address = "10.213.1." + std::to_string(i) + "/24";
    CAPTURE(address);
    CHECK(watch.monitor->state().addresses.count(address) == 1);
    CHECK(std::count_if(watch.events.begin(), watch.events.end(), [&](const wol::LinkEvent& e) {
            return e.kind == wol::LinkEventKind::address_added && e.address == address;
          }) == 1);
  }
}
