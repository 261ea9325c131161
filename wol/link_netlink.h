// SPDX-License-Identifier: MIT
// Internal to the link monitor: reading libnl-route objects into a LinkState,
// and dumping the current state over a blocking rtnetlink socket.
#pragma once

#include <netlink/netlink.h>
#include <netlink/object.h>

#include <memory>
#include <string>

#include "base/status.h"
#include "wol/link_monitor.h"

namespace wol::detail {

struct NlSockFree {
  void operator()(nl_sock* sock) const { nl_socket_free(sock); }
};
using NlSockPtr = std::unique_ptr<nl_sock, NlSockFree>;

// Applies one parsed rtnetlink object (route/link or route/addr) carried by a
// message of type `message_type` (RTM_NEWLINK...) to `state` if it concerns
// `interface`. Links of another family than AF_UNSPEC (the per-protocol
// AF_INET6 link records) are ignored: their flags do not describe the carrier.
void apply_object(nl_object* object, int message_type, const std::string& interface, LinkState& state);

// The link and its addresses as the kernel has them now; absent if there is
// no such interface. `sock` is a connected NETLINK_ROUTE socket.
base::Result<LinkState> dump_state(nl_sock* sock, const std::string& interface);

// "10.213.0.2/24" from a route/addr object; "" if it has no local address.
std::string address_text(nl_object* address);

}  // namespace wol::detail
