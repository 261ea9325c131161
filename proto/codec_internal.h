// SPDX-License-Identifier: MIT
// Helpers shared by the message codecs (messages.cpp, records.cpp). Internal
// to proto: not part of its contract.
#pragma once

#include <cerrno>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/status.h"
#include "base/units.h"
#include "proto/messages.h"

namespace proto::codec {

using base::u64s;

// Decoder errors read "malformed <what>: <why>.": EPROTO for malformed input,
// EMSGSIZE for a length over a limit.
inline base::Status malformed(std::string_view what, const std::string& why) {
  return base::Status::error(EPROTO, "malformed " + std::string(what) + ": " + why + ".");
}

inline base::Status too_large(std::string_view what, const std::string& why) {
  return base::Status::error(EMSGSIZE, "malformed " + std::string(what) + ": " + why + ".");
}

// Every fixed-size decoder starts here: the type byte, then the exact size.
inline base::Status check_fixed(base::ByteSpan msg, MsgType type, size_t size, std::string_view what) {
  if (msg.empty() || msg[0] != static_cast<uint8_t>(type))
    return malformed(what, "the type byte is not " + std::to_string(static_cast<int>(type)));
  if (msg.size() != size)
    return malformed(what, u64s(msg.size()) + " bytes instead of " + u64s(size));
  return base::Status::ok();
}

}  // namespace proto::codec
