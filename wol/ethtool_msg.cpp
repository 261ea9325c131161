// SPDX-License-Identifier: MIT
#include "wol/ethtool_msg.h"

#include <linux/ethtool.h>
#include <linux/ethtool_netlink.h>
#include <net/if.h>
#include <netlink/attr.h>
#include <netlink/genl/genl.h>

#include <cstring>

namespace wol::detail {
namespace {

static_assert(kWakeMagic == WAKE_MAGIC && kWakePhy == WAKE_PHY && kWakeFilter == WAKE_FILTER);
static_assert(kWakeModeCount == WOL_MODE_COUNT);

// A new request with the genetlink header; nullptr when out of memory.
NlMsgPtr start_request(int family_id, uint8_t command) {
  NlMsgPtr msg(nlmsg_alloc());
  if (!msg) return nullptr;
  if (genlmsg_put(msg.get(), NL_AUTO_PORT, NL_AUTO_SEQ, family_id, 0, NLM_F_REQUEST | NLM_F_ACK, command,
                  ETHTOOL_GENL_VERSION) == nullptr)
    return nullptr;
  return msg;
}

// The request header nest: the device by name, and flags only when asked
// (never set flags we do not understand).
bool put_header(nl_msg* msg, const std::string& interface, uint32_t flags) {
  if (interface.empty() || interface.size() >= IFNAMSIZ) return false;
  nlattr* header = nla_nest_start(msg, ETHTOOL_A_WOL_HEADER);
  if (header == nullptr) return false;
  if (nla_put_string(msg, ETHTOOL_A_HEADER_DEV_NAME, interface.c_str()) < 0) return false;
  if (flags != 0 && nla_put_u32(msg, ETHTOOL_A_HEADER_FLAGS, flags) < 0) return false;
  return nla_nest_end(msg, header) == 0;
}

// The first 32-bit word of a compact bitset's VALUE or MASK (WoL has 8 bits).
bool first_word(nlattr* attribute, uint32_t& out) {
  if (attribute == nullptr || nla_len(attribute) < static_cast<int>(sizeof out)) return false;
  std::memcpy(&out, nla_data(attribute), sizeof out);  // host byte order, per the uAPI
  return true;
}

}  // namespace

NlMsgPtr build_wol_set(int family_id, const std::string& interface, bool enable_magic) {
  NlMsgPtr msg = start_request(family_id, ETHTOOL_MSG_WOL_SET);
  if (!msg || !put_header(msg.get(), interface, 0)) return nullptr;
  nlattr* modes = nla_nest_start(msg.get(), ETHTOOL_A_WOL_MODES);
  if (modes == nullptr) return nullptr;
  const uint32_t value = enable_magic ? WAKE_MAGIC : 0;
  const uint32_t mask = WAKE_MAGIC;  // touch the magic bit only
  if (nla_put_u32(msg.get(), ETHTOOL_A_BITSET_SIZE, WOL_MODE_COUNT) < 0 ||
      nla_put(msg.get(), ETHTOOL_A_BITSET_VALUE, sizeof value, &value) < 0 ||
      nla_put(msg.get(), ETHTOOL_A_BITSET_MASK, sizeof mask, &mask) < 0)
    return nullptr;
  if (nla_nest_end(msg.get(), modes) != 0) return nullptr;
  return msg;
}

NlMsgPtr build_wol_get(int family_id, const std::string& interface) {
  NlMsgPtr msg = start_request(family_id, ETHTOOL_MSG_WOL_GET);
  if (!msg || !put_header(msg.get(), interface, ETHTOOL_FLAG_COMPACT_BITSETS)) return nullptr;
  return msg;
}

bool parse_wol_reply(nlmsghdr* header, WakeModes& out) {
  if (header == nullptr || !genlmsg_valid_hdr(header, 0)) return false;
  if (genlmsg_hdr(header)->cmd != ETHTOOL_MSG_WOL_GET_REPLY) return false;
  nlattr* top[ETHTOOL_A_WOL_MAX + 1] = {};
  if (genlmsg_parse(header, 0, top, ETHTOOL_A_WOL_MAX, nullptr) < 0) return false;
  if (top[ETHTOOL_A_WOL_MODES] == nullptr) return false;
  nlattr* bitset[ETHTOOL_A_BITSET_MAX + 1] = {};
  if (nla_parse_nested(bitset, ETHTOOL_A_BITSET_MAX, top[ETHTOOL_A_WOL_MODES], nullptr) < 0) return false;
  WakeModes modes;
  if (bitset[ETHTOOL_A_BITSET_NOMASK] != nullptr) return false;  // a list form: we asked for compact
  if (!first_word(bitset[ETHTOOL_A_BITSET_VALUE], modes.enabled)) return false;
  if (!first_word(bitset[ETHTOOL_A_BITSET_MASK], modes.supported)) return false;
  out = modes;
  return true;
}

}  // namespace wol::detail
