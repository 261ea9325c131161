// SPDX-License-Identifier: MIT
#include "base/bytes.h"

#include <cassert>

namespace base {

void ByteWriter::str16(std::string_view s) {
  assert(s.size() <= 0xffff);
  u16(static_cast<uint16_t>(s.size()));
  raw(s.data(), s.size());
}

std::string ByteReader::str16() {
  uint16_t n = u16();
  ByteSpan s = span(n);
  return std::string(s.begin(), s.end());
}

std::string to_hex(ByteSpan bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 15]);
  }
  return out;
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool from_hex(std::string_view hex, Bytes& out) {
  if (hex.size() % 2 != 0) return false;
  out.clear();
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = hex_value(hex[i]), lo = hex_value(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out.push_back(static_cast<uint8_t>(hi << 4 | lo));
  }
  return true;
}

}  // namespace base
