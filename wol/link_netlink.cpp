// SPDX-License-Identifier: MIT
#include "wol/link_netlink.h"

#include <arpa/inet.h>
#include <linux/if.h>
#include <linux/rtnetlink.h>
#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>

#include <cerrno>
#include <cstring>

namespace wol::detail {
namespace {

// libnl objects share a common header; a route/link object *is* an rtnl_link.
rtnl_link* as_link(nl_object* object) { return reinterpret_cast<rtnl_link*>(object); }
rtnl_addr* as_addr(nl_object* object) { return reinterpret_cast<rtnl_addr*>(object); }

bool is_type(nl_object* object, const char* type) { return std::strcmp(nl_object_get_type(object), type) == 0; }

void apply_link(rtnl_link* link, int message_type, const std::string& interface, LinkState& state) {
  if (rtnl_link_get_family(link) != AF_UNSPEC) return;
  const int ifindex = rtnl_link_get_ifindex(link);
  const char* name = rtnl_link_get_name(link);
  const bool ours_by_index = state.present && ifindex == state.ifindex;
  const bool ours_by_name = name != nullptr && interface == name;
  if (!ours_by_index && !ours_by_name) return;
  if (message_type == RTM_DELLINK || (ours_by_index && !ours_by_name)) {
    state = LinkState{};  // deleted, or renamed away: our interface is gone
    return;
  }
  if (state.present && ifindex != state.ifindex) state.addresses.clear();  // a new link of that name
  state.present = true;
  state.ifindex = ifindex;
  state.carrier = (rtnl_link_get_flags(link) & IFF_LOWER_UP) != 0;
  state.operstate = rtnl_link_get_operstate(link);
}

void apply_address(nl_object* object, int message_type, LinkState& state) {
  if (!state.present || rtnl_addr_get_ifindex(as_addr(object)) != state.ifindex) return;
  const std::string text = address_text(object);
  if (text.empty()) return;
  if (message_type == RTM_DELADDR)
    state.addresses.erase(text);
  else
    state.addresses.insert(text);
}

struct AddressCollector {
  LinkState* state;
};

void collect_address(nl_object* object, void* arg) {
  apply_address(object, RTM_NEWADDR, *static_cast<AddressCollector*>(arg)->state);
}

}  // namespace

std::string address_text(nl_object* object) {
  rtnl_addr* address = as_addr(object);
  nl_addr* local = rtnl_addr_get_local(address);
  if (local == nullptr) return "";
  const int family = nl_addr_get_family(local);
  const unsigned length = nl_addr_get_len(local);
  if (!((family == AF_INET && length == 4) || (family == AF_INET6 && length == 16))) return "";
  char text[INET6_ADDRSTRLEN] = {};
  if (::inet_ntop(family, nl_addr_get_binary_addr(local), text, sizeof text) == nullptr) return "";
  return std::string(text) + "/" + std::to_string(rtnl_addr_get_prefixlen(address));
}

void apply_object(nl_object* object, int message_type, const std::string& interface, LinkState& state) {
  if (is_type(object, "route/link"))
    apply_link(as_link(object), message_type, interface, state);
  else if (is_type(object, "route/addr"))
    apply_address(object, message_type, state);
}

base::Result<LinkState> dump_state(nl_sock* sock, const std::string& interface) {
  LinkState state;
  rtnl_link* link = nullptr;
  const int got = rtnl_link_get_kernel(sock, 0, interface.c_str(), &link);
  if (got == -NLE_NODEV || got == -NLE_OBJ_NOTFOUND) return state;  // absent is a state, not an error
  if (got < 0)
    return base::Status::error(EIO, "cannot read the state of " + interface + ": " + nl_geterror(got));
  apply_link(link, RTM_NEWLINK, interface, state);
  rtnl_link_put(link);
  if (!state.present) return state;

  nl_cache* addresses = nullptr;
  if (const int rc = rtnl_addr_alloc_cache(sock, &addresses); rc < 0)
    return base::Status::error(EIO, "cannot read the addresses of " + interface + ": " + nl_geterror(rc));
  AddressCollector collector{&state};
  nl_cache_foreach(addresses, collect_address, &collector);
  nl_cache_free(addresses);
  return state;
}

}  // namespace wol::detail
