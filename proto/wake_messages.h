// SPDX-License-Identifier: MIT
// The wake messages (MsgType 40..47): how the original can wake the clone.
// Byte layouts: docs/PROTOCOL.md, "Waking the clone". Decoders take untrusted
// bytes and never assert.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "base/bytes.h"
#include "base/status.h"
#include "proto/messages.h"

namespace proto {

inline constexpr size_t kWakeTextBytesMax = 64;  // interface names and addresses

// The clone's arming as told to the original (mirrors wol::ArmState, plus
// not_configured when the clone has no [wake] interface).
enum class WakeArm : uint8_t {
  armed = 0,
  disarmed = 1,
  unsupported = 2,
  no_permission = 3,
  error = 4,
  not_configured = 5,
};
const char* wake_arm_name(WakeArm a);

inline constexpr uint8_t kWakeFlagTestDouble = 1u << 0;  // "armed" only by the test double knob
inline constexpr uint8_t kWakeFlagSleepsWhenIdle = 1u << 1;

struct WakeInfo {
  WakeArm arm = WakeArm::not_configured;
  uint8_t flags = 0;
  std::array<uint8_t, 6> mac{};
  uint32_t idle_sleep_s = 0;   // 0: never sleeps on its own
  std::string interface;       // the clone's NIC, e.g. "enp0s31f6"
  std::string broadcast;       // its IPv4 subnet broadcast, e.g. "192.168.1.255"; "" unknown
  std::string reason;          // a sentence: why armed or not
  bool armed() const { return arm == WakeArm::armed; }
};

struct GoingToSleep {
  uint64_t applied_seq = 0;    // durable on the disk
  uint64_t committed_seq = 0;  // in the state store (equal to applied_seq: it sleeps only then)
  std::string reason;
};

void encode_wake_info(const WakeInfo& m, base::Bytes& out);
void encode_going_to_sleep(const GoingToSleep& m, base::Bytes& out);
void encode_sleep_request(base::Bytes& out);

base::Status decode_wake_info(base::ByteSpan msg, WakeInfo& out);
base::Status decode_going_to_sleep(base::ByteSpan msg, GoingToSleep& out);
base::Status decode_sleep_request(base::ByteSpan msg);

}  // namespace proto
