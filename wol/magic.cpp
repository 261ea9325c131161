// SPDX-License-Identifier: MIT
#include "wol/magic.h"

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>

namespace wol {
namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Parses `count` hex pairs separated by one of `separators`; false on any
// deviation (so "aa:bb-cc" mixes are accepted, which is harmless).
bool parse_hex_pairs(std::string_view text, size_t count, std::string_view separators,
                     std::vector<uint8_t>& out) {
  if (text.size() != count * 3 - 1) return false;
  out.clear();
  for (size_t i = 0; i < count; ++i) {
    const size_t at = i * 3;
    const int high = hex_digit(text[at]);
    const int low = hex_digit(text[at + 1]);
    if (high < 0 || low < 0) return false;
    if (i + 1 < count && separators.find(text[at + 2]) == std::string_view::npos) return false;
    out.push_back(static_cast<uint8_t>(high * 16 + low));
  }
  return true;
}

// "a.b.c.d" with each part 0..255 in decimal.
bool parse_dotted_quad(std::string_view text, std::vector<uint8_t>& out) {
  out.clear();
  size_t at = 0;
  for (int part = 0; part < 4; ++part) {
    if (part > 0) {
      if (at >= text.size() || text[at] != '.') return false;
      ++at;
    }
    int value = 0;
    size_t digits = 0;
    while (at < text.size() && text[at] >= '0' && text[at] <= '9' && digits < 3) {
      value = value * 10 + (text[at] - '0');
      ++at;
      ++digits;
    }
    if (digits == 0 || value > 255) return false;
    out.push_back(static_cast<uint8_t>(value));
  }
  return at == text.size();
}

bool is_sync_at(base::ByteSpan bytes, size_t at) {
  for (size_t i = 0; i < kSyncBytes; ++i)
    if (bytes[at + i] != 0xFF) return false;
  return true;
}

// 0 if the 16 repetitions after the sync stream at `at` are all equal,
// else the 1-based number of the first repetition that differs.
size_t first_bad_repetition(base::ByteSpan bytes, size_t at) {
  const uint8_t* first = &bytes[at + kSyncBytes];
  for (size_t r = 1; r < kMacRepeatCount; ++r)
    if (std::memcmp(first, first + r * kMacBytes, kMacBytes) != 0) return r + 1;
  return 0;
}

MacAddress mac_at(base::ByteSpan bytes, size_t at) {
  MacAddress mac;
  std::memcpy(mac.bytes.data(), &bytes[at], kMacBytes);
  return mac;
}

}  // namespace

bool MacAddress::is_broadcast() const {
  return std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0xFF; });
}

bool MacAddress::is_zero() const {
  return std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0; });
}

base::Result<MacAddress> parse_mac(std::string_view text) {
  std::vector<uint8_t> out;
  if (!parse_hex_pairs(text, kMacBytes, ":-", out))
    return base::Status::error(EINVAL, "\"" + std::string(text) +
                                           "\" is not a MAC address; write it as aa:bb:cc:dd:ee:ff");
  MacAddress mac;
  std::copy(out.begin(), out.end(), mac.bytes.begin());
  return mac;
}

std::string format_mac(const MacAddress& mac) {
  static const char kHex[] = "0123456789abcdef";
  std::string text;
  for (size_t i = 0; i < kMacBytes; ++i) {
    if (i > 0) text += ':';
    text += kHex[mac.bytes[i] >> 4];
    text += kHex[mac.bytes[i] & 0x0F];
  }
  return text;
}

base::Result<Password> parse_password(std::string_view text) {
  Password out;
  if (parse_hex_pairs(text, kPasswordBytesLong, ":-", out)) return out;
  if (parse_hex_pairs(text, kPasswordBytesShort, ":-", out)) return out;
  if (parse_dotted_quad(text, out)) return out;
  return base::Status::error(EINVAL, "\"" + std::string(text) +
                                         "\" is not a SecureOn password; write six bytes as "
                                         "aa:bb:cc:dd:ee:ff or four as a.b.c.d");
}

base::Bytes build_magic_payload(const MacAddress& target, const Password& password) {
  assert(password.empty() || password.size() == kPasswordBytesShort ||
         password.size() == kPasswordBytesLong);
  base::Bytes out(kSyncBytes, 0xFF);
  out.reserve(kMagicPayloadBytes + password.size());
  for (size_t r = 0; r < kMacRepeatCount; ++r) out.insert(out.end(), target.bytes.begin(), target.bytes.end());
  out.insert(out.end(), password.begin(), password.end());
  assert(out.size() == kMagicPayloadBytes + password.size());
  return out;
}

base::Bytes build_magic_frame(const MacAddress& dst, const MacAddress& src, const MacAddress& target,
                              const Password& password) {
  base::Bytes frame(dst.bytes.begin(), dst.bytes.end());
  frame.insert(frame.end(), src.bytes.begin(), src.bytes.end());
  frame.push_back(static_cast<uint8_t>(kEtherTypeWol >> 8));  // network byte order
  frame.push_back(static_cast<uint8_t>(kEtherTypeWol & 0xFF));
  const base::Bytes payload = build_magic_payload(target, password);
  frame.insert(frame.end(), payload.begin(), payload.end());
  return frame;
}

std::optional<MagicMatch> find_magic_packet(base::ByteSpan bytes) {
  if (bytes.size() < kMagicPayloadBytes) return std::nullopt;
  for (size_t at = 0; at + kMagicPayloadBytes <= bytes.size(); ++at) {
    if (!is_sync_at(bytes, at)) continue;
    const MacAddress target = mac_at(bytes, at + kSyncBytes);
    // A run of 0xFF longer than the sync stream would otherwise "match" the
    // broadcast address; no NIC has that MAC, so keep scanning.
    if (target.is_broadcast() || first_bad_repetition(bytes, at) != 0) continue;
    return MagicMatch{target, at, bytes.size() - at - kMagicPayloadBytes};
  }
  return std::nullopt;
}

base::Result<MagicPayload> parse_magic_payload(base::ByteSpan payload) {
  const size_t n = payload.size();
  if (n != kMagicPayloadBytes && n != kMagicPayloadBytes + kPasswordBytesShort &&
      n != kMagicPayloadBytes + kPasswordBytesLong)
    return base::Status::error(EBADMSG, "a magic packet is 102 bytes, or 106 or 108 with a password; got " +
                                            std::to_string(n) + " bytes");
  if (!is_sync_at(payload, 0))
    return base::Status::error(EBADMSG, "the magic packet does not start with six 0xFF bytes");
  if (const size_t bad = first_bad_repetition(payload, 0); bad != 0)
    return base::Status::error(EBADMSG, "repetition " + std::to_string(bad) +
                                            " of the MAC in the magic packet differs from the first");
  MagicPayload out{mac_at(payload, kSyncBytes), Password(payload.begin() + kMagicPayloadBytes, payload.end())};
  if (out.target.is_broadcast())
    return base::Status::error(EBADMSG, "the magic packet names the broadcast address as its target");
  return out;
}

}  // namespace wol
