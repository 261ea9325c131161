// SPDX-License-Identifier: MIT
// Watches one network interface through rtnetlink (libnl-route): whether it
// exists, its carrier (IFF_LOWER_UP) and operstate, and its addresses.
//
// It does no waiting of its own, so that it can live in the daemon's libuv
// loop: the loop adapter polls fd() for readability and calls on_readable(),
// which drains what the kernel queued (a bounded number of datagrams per
// call; the poll is level-triggered, so the rest comes on the next call) and
// reports changes through the callback. A kernel queue overrun (ENOBUFS: too
// many changes while we were not reading) is repaired by dumping the link and
// its addresses again and reporting the difference, so no change is lost
// even then, only intermediate states.
//
// Threading and ownership: one thread (the loop's) calls everything after
// open(). The monitor owns its two netlink sockets (events, and a blocking
// one for dumps); close the uv_poll on fd() before destroying the monitor.
// The sockets belong to the network namespace of the thread that called
// open(). The callback runs inside on_readable(), outside any libnl frame; it
// must not throw or destroy the monitor.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include "base/status.h"

namespace wol {

struct LinkState {
  bool present = false;        // the interface exists
  int ifindex = 0;             // 0 while absent
  bool carrier = false;        // IFF_LOWER_UP: admin up and a carrier
  uint8_t operstate = 0;       // IF_OPER_*: 6 up, 2 down, 3 lower-layer down, 0 unknown
  std::set<std::string> addresses;  // "10.213.0.2/24", "fe80::1/64"
  bool operator==(const LinkState&) const = default;
};

enum class LinkEventKind { appeared, vanished, carrier_up, carrier_down, address_added, address_removed };
const char* to_string(LinkEventKind kind);

struct LinkEvent {
  LinkEventKind kind;
  std::string interface;
  std::string address;  // for address events: "10.213.0.2/24"
};

struct LinkMonitorOptions {
  // Kernel receive buffer for change notifications (capped by net.core.rmem_max).
  int receive_buffer_bytes = 1 << 20;
};

class LinkMonitor {
 public:
  using Callback = std::function<void(const LinkEvent&)>;

  // Subscribes to link and address changes, then dumps the current state
  // (subscribing first, so nothing between the two is missed). The interface
  // need not exist yet: it is reported when it appears.
  static base::Result<std::unique_ptr<LinkMonitor>> open(const std::string& interface, Callback callback,
                                                         const LinkMonitorOptions& options = {});
  ~LinkMonitor();
  LinkMonitor(const LinkMonitor&) = delete;
  LinkMonitor& operator=(const LinkMonitor&) = delete;

  // The non-blocking event socket to poll for readability.
  int fd() const;
  // Call when fd() is readable. Never throws; failures are logged.
  void on_readable() noexcept;

  const LinkState& state() const;
  const std::string& interface() const;
  // How many times the kernel queue overran and the state was dumped again.
  uint64_t overrun_count() const;

 private:
  struct Impl;  // the libnl sockets and callbacks, in link_monitor.cpp
  explicit LinkMonitor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace wol
