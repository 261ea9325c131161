// SPDX-License-Identifier: MIT
// Real frames between two network namespaces this test creates (needs root):
// the senders in A, an AF_PACKET receiver on B's veth, and arming on a veth.
// Traffic stays inside the namespaces; they are deleted on scope exit.
#include <doctest/doctest.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <linux/capability.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <thread>

#include "wol/arm.h"
#include "wol/fd.h"
#include "wol/magic.h"
#include "wol/power.h"
#include "test/support/netns.h"
#include "test/support/requires.h"
#include "wol/tests/test_support.h"

using namespace std::chrono_literals;
using wol_test::contains;
using test_support::NetnsPair;

namespace {

struct Frame {
  uint16_t ethertype = 0;
  int packet_type = 0;  // PACKET_HOST, PACKET_BROADCAST...
  wol::MacAddress dst;
  wol::MacAddress src;
  wol::MacAddress target;  // the magic packet's MAC
};

wol::MacAddress mac_at(const uint8_t* p) {
  wol::MacAddress mac;
  std::copy(p, p + wol::kMacBytes, mac.bytes.begin());
  return mac;
}

// Every frame on one interface (ETH_P_ALL), opened inside B's namespace.
class Receiver {
 public:
  // Call on a thread inside the namespace; "" or why it failed.
  std::string open(const std::string& interface) {
    fd_.reset(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(ETH_P_ALL)));
    if (!fd_.valid()) return std::string("cannot open an AF_PACKET socket: ") + std::strerror(errno);
    sockaddr_ll at{};
    at.sll_family = AF_PACKET;
    at.sll_protocol = htons(ETH_P_ALL);
    at.sll_ifindex = static_cast<int>(::if_nametoindex(interface.c_str()));
    if (at.sll_ifindex == 0 || ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&at), sizeof at) != 0)
      return "cannot bind the receiver to " + interface + ": " + std::strerror(errno);
    return "";
  }

  // Magic-carrying frames until `done` says enough or `limit` passes; each is
  // also given to `on_magic` as it arrives. Outgoing frames and noise skipped.
  std::vector<Frame> collect(std::chrono::milliseconds limit, const std::function<bool(const std::vector<Frame>&)>& done,
                             const std::function<void(const Frame&)>& on_magic = {}) {
    std::vector<Frame> frames;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done(frames)) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd ready{fd_.get(), POLLIN, 0};
      if (::poll(&ready, 1, static_cast<int>(left.count())) <= 0) continue;
      uint8_t buffer[2048];
      sockaddr_ll from{};
      socklen_t from_bytes = sizeof from;
      const ssize_t n = ::recvfrom(fd_.get(), buffer, sizeof buffer, 0, reinterpret_cast<sockaddr*>(&from), &from_bytes);
      if (n < 14 || from.sll_pkttype == PACKET_OUTGOING) continue;
      auto match = wol::find_magic_packet(base::ByteSpan(buffer + 14, static_cast<size_t>(n) - 14));
      if (!match) continue;
      Frame frame{static_cast<uint16_t>(buffer[12] << 8 | buffer[13]), from.sll_pkttype, mac_at(buffer),
                  mac_at(buffer + 6), match->target};
      frames.push_back(frame);
      if (on_magic) on_magic(frame);
    }
    return frames;
  }

 private:
  wol::Fd fd_;
};

size_t count_type(const std::vector<Frame>& frames, uint16_t ethertype) {
  return static_cast<size_t>(std::count_if(frames.begin(), frames.end(),
                                           [&](const Frame& f) { return f.ethertype == ethertype; }));
}

// Namespaces, B's receiver and both MACs: what every sending test starts from.
struct Setup {
  NetnsPair pair;
  Receiver receiver;
  wol::MacAddress mac_a;
  wol::MacAddress mac_b;
  std::string error;

  bool start() {
    if (!pair.ready()) return false;
    std::string opened;
    bool ok = test_support::run_in_netns(pair.b(), [&] {
      opened = receiver.open(NetnsPair::kVethB);
      if (auto mac = wol::interface_mac(NetnsPair::kVethB)) mac_b = *mac;
    }, error);
    ok = ok && test_support::run_in_netns(pair.a(), [&] {
      if (auto mac = wol::interface_mac(NetnsPair::kVethA)) mac_a = *mac;
    }, error);
    if (error.empty()) error = opened;
    return ok && error.empty() && !mac_a.is_zero() && !mac_b.is_zero();
  }

  wol::SendReport send_from_a(wol::SendOptions options) {
    wol::SendReport report;
    if (!test_support::run_in_netns(pair.a(), [&] { report = wol::send_magic(options); }, error))
      report.notes.push_back(error);
    return report;
  }
};

// Drops CAP_NET_RAW from the calling thread's effective set. Capabilities
// are per thread, so only the namespace worker thread loses it.
bool drop_net_raw_in_this_thread() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (::syscall(SYS_capget, &header, data) != 0) return false;
  data[CAP_NET_RAW / 32].effective &= ~(1u << (CAP_NET_RAW % 32));
  return ::syscall(SYS_capset, &header, data) == 0;
}

}  // namespace

TEST_CASE("in namespaces: UDP broadcasts and a raw 0x0842 frame from A reach B's veth carrying B's MAC") {
  test_support::require({test_support::network_namespaces()});
  Setup setup;
  REQUIRE_MESSAGE(setup.pair.ready(), setup.pair.error());
  REQUIRE_MESSAGE(setup.start(), setup.error);
  wol::SendOptions options;
  options.target = setup.mac_b;
  options.interface = NetnsPair::kVethA;
  options.subnet_broadcast = NetnsPair::kSubnetBroadcast;
  const wol::SendReport report = setup.send_from_a(options);
  CHECK(report.udp_datagram_count == 2);
  CHECK(report.raw_sent);
  CHECK(report.notes.empty());
  for (const std::string& note : report.notes) MESSAGE(note);

  const auto frames = setup.receiver.collect(5s, [](const std::vector<Frame>& seen) {
    return count_type(seen, 0x0800) >= 2 && count_type(seen, wol::kEtherTypeWol) >= 1;
  });
  CHECK(count_type(frames, 0x0800) == 2);  // 255.255.255.255 and 10.213.0.255
  CHECK(count_type(frames, wol::kEtherTypeWol) == 1);
  for (const Frame& frame : frames) {
    CAPTURE(frame.ethertype);
    CHECK(frame.target == setup.mac_b);
    CHECK(frame.src == setup.mac_a);
    if (frame.ethertype == wol::kEtherTypeWol) {
      CHECK(frame.dst == setup.mac_b);  // raw frames go to the target itself
      CHECK(frame.packet_type == PACKET_HOST);
    } else {
      CHECK(frame.dst.is_broadcast());
      CHECK(frame.packet_type == PACKET_BROADCAST);
    }
  }
}

TEST_CASE("in namespaces: without CAP_NET_RAW the raw frame is skipped with a note and UDP still goes out") {
  test_support::require({test_support::network_namespaces()});
  Setup setup;
  REQUIRE_MESSAGE(setup.pair.ready(), setup.pair.error());
  REQUIRE_MESSAGE(setup.start(), setup.error);
  wol::SendReport report;
  bool dropped = false;
  REQUIRE_MESSAGE(test_support::run_in_netns(setup.pair.a(), [&] {
    dropped = drop_net_raw_in_this_thread();
    wol::SendOptions options;
    options.target = setup.mac_b;
    options.interface = NetnsPair::kVethA;
    report = wol::send_magic(options);
  }, setup.error), setup.error);
  REQUIRE(dropped);
  CHECK(report.udp_datagram_count == 1);
  CHECK_FALSE(report.raw_sent);
  REQUIRE(report.notes.size() == 1);
  CHECK(report.notes[0] == "raw send skipped: needs CAP_NET_RAW");
  const auto frames = setup.receiver.collect(700ms, [](const std::vector<Frame>&) { return false; });
  CHECK(count_type(frames, 0x0800) == 1);
  CHECK(count_type(frames, wol::kEtherTypeWol) == 0);
}

TEST_CASE("in namespaces: a simulated sleep ends when B's receiver sees a magic packet for its MAC") {
  test_support::require({test_support::network_namespaces()});
  Setup setup;
  REQUIRE_MESSAGE(setup.pair.ready(), setup.pair.error());
  REQUIRE_MESSAGE(setup.start(), setup.error);
  wol::FakePower power(10s);
  base::Status slept = base::Status::error(EINTR, "did not sleep");
  std::jthread sleeper([&] { slept = power.sleep(); });  // joined on every exit; sleep is bounded
  REQUIRE(power.wait_until_asleep(5s));

  wol::SendOptions options;
  options.target = setup.mac_b;
  options.interface = NetnsPair::kVethA;
  options.raw_to_broadcast = true;
  const wol::SendReport report = setup.send_from_a(options);
  CHECK(report.any_sent());
  const auto frames = setup.receiver.collect(
      5s, [&](const std::vector<Frame>&) { return !power.asleep(); },
      [&](const Frame& frame) {
        if (frame.target == setup.mac_b) power.wake(frame.ethertype == wol::kEtherTypeWol ? "raw" : "udp");
      });
  sleeper.join();
  CHECK(slept.is_ok());
  CHECK(power.calls().size() == 2);  // sleep, one wake: later packets find it awake
  REQUIRE_FALSE(frames.empty());
  CHECK(power.last_wake_reason() == (frames[0].ethertype == wol::kEtherTypeWol ? "raw" : "udp"));
  for (const Frame& frame : frames)
    if (frame.ethertype == wol::kEtherTypeWol) CHECK(frame.dst.is_broadcast());
}

TEST_CASE("in namespaces: arming a veth reports unsupported over netlink and the ioctl, cleanly") {
  test_support::require({test_support::network_namespaces()});
  NetnsPair pair;
  REQUIRE_MESSAGE(pair.ready(), pair.error());
  wol_test::TempDir sysfs;  // the real /sys shows the host's namespace, not A's
  REQUIRE(sysfs.ok());
  wol::ArmOptions netlink{wol::ArmOptions::Method::netlink, sysfs.path()};
  wol::ArmOptions ioctl{wol::ArmOptions::Method::ioctl, sysfs.path()};
  wol::ArmStatus by_netlink, by_ioctl, queried, missing, missing_ioctl;
  base::Status lo_mac;
  std::string error;
  REQUIRE_MESSAGE(test_support::run_in_netns(pair.a(), [&] {
    by_netlink = wol::arm_magic_wake(NetnsPair::kVethA, netlink);
    by_ioctl = wol::arm_magic_wake(NetnsPair::kVethA, ioctl);
    queried = wol::query_magic_wake(NetnsPair::kVethA, {wol::ArmOptions::Method::automatic, sysfs.path()});
    missing = wol::arm_magic_wake("nosuch0", netlink);
    missing_ioctl = wol::arm_magic_wake("nosuch0", ioctl);
    auto mac = wol::interface_mac("lo");
    lo_mac = mac ? base::Status::ok() : mac.status();
  }, error), error);

  CHECK(by_netlink.state == wol::ArmState::unsupported);
  CHECK(by_netlink.method == "ethtool netlink");
  CHECK(contains(by_netlink.reason, "no Wake-on-LAN support"));
  CHECK(by_netlink.power_wakeup.empty());
  CHECK(by_ioctl.state == wol::ArmState::unsupported);
  CHECK(by_ioctl.method == "SIOCETHTOOL ioctl");
  CHECK(queried.state == wol::ArmState::unsupported);
  CHECK(missing.state == wol::ArmState::error);
  CHECK(contains(missing.reason, "no network interface named nosuch0"));
  CHECK(missing_ioctl.state == wol::ArmState::error);
  CHECK(lo_mac.code() == EAFNOSUPPORT);  // loopback: no Ethernet MAC to wake
}
