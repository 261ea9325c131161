// SPDX-License-Identifier: MIT
// Little-endian encoding into and out of byte buffers, bounds-checked.
//
// ByteWriter appends to a caller-owned std::vector or writes into a fixed
// span; ByteReader reads from a span and turns every overrun into a sticky
// failure that the caller checks once at the end (ok()), so parsers stay flat.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace base {

using Bytes = std::vector<uint8_t>;
using ByteSpan = std::span<const uint8_t>;
using MutableByteSpan = std::span<uint8_t>;

inline void store_le16(uint8_t* p, uint16_t v) { p[0] = uint8_t(v); p[1] = uint8_t(v >> 8); }
inline void store_le32(uint8_t* p, uint32_t v) { for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i)); }
inline void store_le64(uint8_t* p, uint64_t v) { for (int i = 0; i < 8; ++i) p[i] = uint8_t(v >> (8 * i)); }
inline uint16_t load_le16(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }
inline uint32_t load_le32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
inline uint64_t load_le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Appends to `out`. Never fails.
class ByteWriter {
 public:
  explicit ByteWriter(Bytes& out) : out_(out) {}
  void u8(uint8_t v) { out_.push_back(v); }
  void u16(uint16_t v) { uint8_t b[2]; store_le16(b, v); raw(b, 2); }
  void u32(uint32_t v) { uint8_t b[4]; store_le32(b, v); raw(b, 4); }
  void u64(uint64_t v) { uint8_t b[8]; store_le64(b, v); raw(b, 8); }
  void raw(const void* p, size_t n) {
    auto* b = static_cast<const uint8_t*>(p);
    out_.insert(out_.end(), b, b + n);
  }
  void raw(ByteSpan s) { raw(s.data(), s.size()); }
  // u16 length then bytes; `s` must fit in 65535 bytes (asserted by caller).
  void str16(std::string_view s);

 private:
  Bytes& out_;
};

// Reads from a span; any overrun makes ok() false and later reads return 0.
class ByteReader {
 public:
  explicit ByteReader(ByteSpan in) : in_(in) {}
  uint8_t u8() { uint8_t v = 0; if (need(1)) v = in_[pos_++]; return v; }
  uint16_t u16() { uint16_t v = 0; if (need(2)) { v = load_le16(&in_[pos_]); pos_ += 2; } return v; }
  uint32_t u32() { uint32_t v = 0; if (need(4)) { v = load_le32(&in_[pos_]); pos_ += 4; } return v; }
  uint64_t u64() { uint64_t v = 0; if (need(8)) { v = load_le64(&in_[pos_]); pos_ += 8; } return v; }
  void raw(void* out, size_t n) {
    if (need(n)) { std::memcpy(out, &in_[pos_], n); pos_ += n; } else { std::memset(out, 0, n); }
  }
  ByteSpan span(size_t n) {
    if (!need(n)) return {};
    ByteSpan s = in_.subspan(pos_, n);
    pos_ += n;
    return s;
  }
  std::string str16();
  ByteSpan rest() { ByteSpan s = in_.subspan(pos_); pos_ = in_.size(); return s; }
  size_t remaining() const { return in_.size() - pos_; }
  size_t position() const { return pos_; }
  bool ok() const { return ok_; }
  // ok() and nothing left over: the whole message was consumed.
  bool done() const { return ok_ && pos_ == in_.size(); }

 private:
  bool need(size_t n) {
    if (!ok_ || in_.size() - pos_ < n) { ok_ = false; return false; }
    return true;
  }
  ByteSpan in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

std::string to_hex(ByteSpan bytes);
// Accepts lower or upper case; false on odd length or a non-hex character.
bool from_hex(std::string_view hex, Bytes& out);

}  // namespace base
