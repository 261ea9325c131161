// SPDX-License-Identifier: MIT
// Wake-on-LAN magic packets: building, finding, parsing and sending them.
//
// A magic packet's payload is a sync stream of six 0xFF bytes followed by the
// target MAC sixteen times (102 bytes), optionally followed by a 4- or 6-byte
// SecureOn password. A NIC armed for magic wake matches the pattern anywhere
// in a frame, so the same payload works inside a UDP datagram and inside a
// raw EtherType 0x0842 frame; we send both (docs/WAKE.md).
//
// Everything here is thread-compatible: no shared state. The senders open,
// use and close their own sockets within the call; sockets belong to the
// network namespace of the calling thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"

namespace wol {

constexpr size_t kMacBytes = 6;
constexpr size_t kSyncBytes = 6;
constexpr size_t kMacRepeatCount = 16;
constexpr size_t kMagicPayloadBytes = kSyncBytes + kMacRepeatCount * kMacBytes;
constexpr size_t kPasswordBytesShort = 4;
constexpr size_t kPasswordBytesLong = 6;
constexpr uint16_t kEtherTypeWol = 0x0842;
constexpr uint16_t kDefaultUdpPort = 9;  // discard; wakeonlan(1)'s default
static_assert(kMagicPayloadBytes == 102);

struct MacAddress {
  std::array<uint8_t, kMacBytes> bytes{};
  bool operator==(const MacAddress&) const = default;
  bool is_broadcast() const;
  bool is_multicast() const { return (bytes[0] & 0x01) != 0; }
  bool is_zero() const;
};

// A SecureOn password: empty (none), 4 or 6 bytes.
using Password = std::vector<uint8_t>;

// "aa:bb:cc:dd:ee:ff" or with '-' separators, either case; exactly six pairs
// of hex digits. The error reads as a sentence naming the text.
base::Result<MacAddress> parse_mac(std::string_view text);
// Lower-case, colon-separated: "aa:bb:cc:dd:ee:ff".
std::string format_mac(const MacAddress& mac);

// A password as six hex pairs ("aa:bb:cc:dd:ee:ff"), four hex pairs, or four
// decimal bytes as an IPv4 dotted quad ("192.168.1.10"), as etherwake takes it.
base::Result<Password> parse_password(std::string_view text);

// The payload: sync stream, 16 x MAC, then the password if any. The password
// must be empty, 4 or 6 bytes (asserted: a caller bug otherwise).
base::Bytes build_magic_payload(const MacAddress& target, const Password& password = {});

// A full Ethernet frame for AF_PACKET: dst, src, EtherType 0x0842, payload.
base::Bytes build_magic_frame(const MacAddress& dst, const MacAddress& src,
                              const MacAddress& target, const Password& password = {});

struct MagicMatch {
  MacAddress target;
  size_t offset_bytes = 0;     // where the sync stream starts in the scanned bytes
  size_t trailing_bytes = 0;   // bytes after the 16th MAC (password, padding, FCS...)
};

// Finds the first magic packet anywhere in `bytes` (a whole frame or a UDP
// payload), as a NIC would: six 0xFF then one MAC repeated 16 times. A
// broken repetition, a truncated packet or an all-0xFF "MAC" does not count.
// Untrusted input: never asserts.
std::optional<MagicMatch> find_magic_packet(base::ByteSpan bytes);

struct MagicPayload {
  MacAddress target;
  Password password;  // empty, 4 or 6 bytes
};

// Strict parse of exactly one payload: 102, 106 or 108 bytes, nothing else.
// The error says what is wrong (length, sync stream, repetition number).
base::Result<MagicPayload> parse_magic_payload(base::ByteSpan payload);

// The MAC of a local interface (SIOCGIFHWADDR), in the calling thread's
// network namespace. sysfs is not used on purpose: it shows the namespace of
// whoever mounted it, not ours.
base::Result<MacAddress> interface_mac(const std::string& interface);

struct SendOptions {
  MacAddress target;
  Password password;            // empty, 4 or 6 bytes
  std::string interface;        // egress NIC; "" lets routing choose (UDP only)
  std::string subnet_broadcast; // e.g. "192.168.1.255"; "" = only 255.255.255.255
  uint16_t udp_port = kDefaultUdpPort;
  bool raw_to_broadcast = false;  // raw frame to ff:ff:..:ff instead of the target MAC
};

// UDP datagrams to 255.255.255.255 and, when given, the subnet broadcast,
// with SO_BROADCAST, and SO_BINDTODEVICE when an interface is named. Ok only
// if every datagram went out; the error names each destination that failed.
base::Status send_udp(const SendOptions& options);

// One raw 0x0842 frame on `options.interface` (required) through AF_PACKET,
// src = the interface's MAC. Without CAP_NET_RAW the error is EPERM with the
// message "raw send skipped: needs CAP_NET_RAW".
base::Status send_raw(const SendOptions& options);

struct SendReport {
  int udp_datagram_count = 0;  // datagrams that went out
  bool raw_sent = false;
  std::vector<std::string> notes;  // one sentence per path that failed or was skipped
  bool any_sent() const { return udp_datagram_count > 0 || raw_sent; }
};

// Both senders: UDP always, raw when an interface is named. A missing
// CAP_NET_RAW is a note, not a failure, as long as UDP went out.
SendReport send_magic(const SendOptions& options);

}  // namespace wol
