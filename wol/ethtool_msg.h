// SPDX-License-Identifier: MIT
// Internal: the ethtool generic-netlink WoL messages, built and parsed apart
// from any socket so that a test can check their bytes (the "family id" is
// whatever the caller resolved; tests pass any number).
#pragma once

#include <netlink/msg.h>

#include <memory>
#include <string>

#include "wol/arm.h"

namespace wol::detail {

struct NlMsgFree {
  void operator()(nl_msg* msg) const { nlmsg_free(msg); }
};
using NlMsgPtr = std::unique_ptr<nl_msg, NlMsgFree>;

// ETHTOOL_MSG_WOL_SET touching only WAKE_MAGIC: header {DEV_NAME}, modes as a
// compact bitset {SIZE = 8, VALUE = enable ? WAKE_MAGIC : 0, MASK = WAKE_MAGIC}
// (value/mask means "change the masked bits, keep the rest"). Flags
// NLM_F_REQUEST | NLM_F_ACK. nullptr if the name is too long or the message
// cannot be allocated.
NlMsgPtr build_wol_set(int family_id, const std::string& interface, bool enable_magic);

// ETHTOOL_MSG_WOL_GET with header {DEV_NAME, FLAGS = COMPACT_BITSETS}, so the
// reply's modes come as VALUE (enabled) and MASK (supported).
NlMsgPtr build_wol_get(int family_id, const std::string& interface);

// Reads a WOL_GET_REPLY. False if it is not one or its modes are not a
// compact bitset with both VALUE and MASK (untrusted input: no asserts).
bool parse_wol_reply(nlmsghdr* header, WakeModes& out);

}  // namespace wol::detail
