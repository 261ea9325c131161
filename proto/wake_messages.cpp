// SPDX-License-Identifier: MIT
#include "proto/wake_messages.h"

#include <string_view>

#include "proto/codec_internal.h"

namespace proto {
namespace {

using codec::check_fixed;
using codec::malformed;
using codec::too_large;
using codec::u64s;

inline constexpr size_t kWakeInfoFixedBytes = 1 + 1 + 1 + 1 + 6 + 4;
inline constexpr size_t kGoingToSleepFixedBytes = 1 + 8 + 8;
inline constexpr size_t kSleepRequestBytes = 1 + 4;
static_assert(kWakeInfoFixedBytes == 14);

std::string_view clip(std::string_view s, size_t max) { return s.size() <= max ? s : s.substr(0, max); }

// A str16 field of at most `max` bytes.
base::Status read_text(base::ByteReader& r, std::string_view what, std::string_view field, size_t max,
                       std::string& out) {
  const uint16_t n = r.u16();
  if (!r.ok()) return malformed(what, "it ends before the length of " + std::string(field));
  if (n > max) return too_large(what, std::string(field) + " of " + u64s(n) + " bytes is over the limit of " + u64s(max));
  base::ByteSpan s = r.span(n);
  if (!r.ok()) return malformed(what, std::string(field) + " is cut short");
  out.assign(s.begin(), s.end());
  return base::Status::ok();
}

}  // namespace

const char* wake_arm_name(WakeArm a) {
  switch (a) {
    case WakeArm::armed: return "armed";
    case WakeArm::disarmed: return "disarmed";
    case WakeArm::unsupported: return "unsupported";
    case WakeArm::no_permission: return "no_permission";
    case WakeArm::error: return "error";
    case WakeArm::not_configured: return "not_configured";
  }
  return "unknown";
}

void encode_wake_info(const WakeInfo& m, base::Bytes& out) {
  base::ByteWriter w(out);
  w.u8(static_cast<uint8_t>(MsgType::wake_info));
  w.u8(static_cast<uint8_t>(m.arm));
  w.u8(m.flags);
  w.u8(0);
  w.raw(m.mac.data(), m.mac.size());
  w.u32(m.idle_sleep_s);
  w.str16(clip(m.interface, kWakeTextBytesMax));
  w.str16(clip(m.broadcast, kWakeTextBytesMax));
  w.str16(clip(m.reason, kMaxMessageTextBytes));
}

void encode_going_to_sleep(const GoingToSleep& m, base::Bytes& out) {
  base::ByteWriter w(out);
  w.u8(static_cast<uint8_t>(MsgType::going_to_sleep));
  w.u64(m.applied_seq);
  w.u64(m.committed_seq);
  w.str16(clip(m.reason, kMaxMessageTextBytes));
}

void encode_sleep_request(base::Bytes& out) {
  base::ByteWriter w(out);
  w.u8(static_cast<uint8_t>(MsgType::sleep_request));
  w.u32(0);
}

base::Status decode_wake_info(base::ByteSpan msg, WakeInfo& out) {
  constexpr std::string_view what = "wake_info";
  if (msg.empty() || msg[0] != static_cast<uint8_t>(MsgType::wake_info))
    return malformed(what, "the type byte is not 40");
  base::ByteReader r(msg);
  r.u8();
  WakeInfo m;
  const uint8_t arm = r.u8();
  m.flags = r.u8();
  r.u8();  // reserved
  r.raw(m.mac.data(), m.mac.size());
  m.idle_sleep_s = r.u32();
  if (!r.ok()) return malformed(what, u64s(msg.size()) + " bytes is shorter than its " + u64s(kWakeInfoFixedBytes) + "-byte header");
  if (arm > static_cast<uint8_t>(WakeArm::not_configured))
    return malformed(what, "arm state " + u64s(arm) + " is outside 0..5");
  m.arm = static_cast<WakeArm>(arm);
  BASE_TRY(read_text(r, what, "the interface", kWakeTextBytesMax, m.interface));
  BASE_TRY(read_text(r, what, "the broadcast address", kWakeTextBytesMax, m.broadcast));
  BASE_TRY(read_text(r, what, "the reason", kMaxMessageTextBytes, m.reason));
  if (!r.done()) return malformed(what, u64s(r.remaining()) + " bytes follow the last field");
  out = std::move(m);
  return base::Status::ok();
}

base::Status decode_going_to_sleep(base::ByteSpan msg, GoingToSleep& out) {
  constexpr std::string_view what = "going_to_sleep";
  if (msg.empty() || msg[0] != static_cast<uint8_t>(MsgType::going_to_sleep))
    return malformed(what, "the type byte is not 41");
  base::ByteReader r(msg);
  r.u8();
  GoingToSleep m;
  m.applied_seq = r.u64();
  m.committed_seq = r.u64();
  if (!r.ok()) return malformed(what, u64s(msg.size()) + " bytes is shorter than its " + u64s(kGoingToSleepFixedBytes) + "-byte header");
  BASE_TRY(read_text(r, what, "the reason", kMaxMessageTextBytes, m.reason));
  if (!r.done()) return malformed(what, u64s(r.remaining()) + " bytes follow the last field");
  out = std::move(m);
  return base::Status::ok();
}

base::Status decode_sleep_request(base::ByteSpan msg) {
  return check_fixed(msg, MsgType::sleep_request, kSleepRequestBytes, "sleep_request");
}

}  // namespace proto
