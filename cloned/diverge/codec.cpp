// SPDX-License-Identifier: MIT
// Byte layout (little-endian), version 1:
//   "CDFP" u8 version=1  u64 disk_bytes  u16 region_count (<= kRegionsMax)
//   region_count x { u8 kind (1..kRegionKindMax)  str name  str where
//                    u64 offset_bytes  u64 length_bytes  32 bytes digest
//                    u8 fact_count (<= kFactsMax)  fact_count x { str name  str value } }
//   where str = u16 length (bounded per field) + that many printable ASCII bytes.
// Nothing may follow. Names are unique; every region lies inside the disk.
#include <cassert>
#include <cerrno>
#include <cstring>
#include <set>

#include "cloned/diverge/fingerprint.h"

namespace diverge {
namespace {

constexpr uint8_t kMagic[4] = {'C', 'D', 'F', 'P'};
constexpr uint8_t kVersion = 1;
constexpr uint32_t kRegionsMax = 256;
constexpr uint32_t kFactsMax = 16;
constexpr uint32_t kNameBytesMax = 128;
constexpr uint32_t kFactNameBytesMax = 64;
constexpr uint32_t kFactValueBytesMax = 128;

// Strings in a fingerprint end up in sentences on a terminal: printable ASCII only.
bool printable(std::string_view s) {
  for (char c : s) {
    if (c < 0x20 || c > 0x7E) return false;
  }
  return true;
}

void put_string(base::ByteWriter& w, const std::string& s, uint32_t max_bytes) {
  assert(s.size() <= max_bytes && printable(s));
  w.u16(static_cast<uint16_t>(s.size()));
  w.raw(s.data(), s.size());
}

base::Status refuse(const std::string& what, size_t position) {
  return base::Status::error(EINVAL, "the stored disk fingerprint is damaged: " + what + " (at byte " +
                                         std::to_string(position) + "); take a new one");
}

// Reads a bounded string; false (with `error` set) when it is not acceptable.
bool get_string(base::ByteReader& r, const char* field, uint32_t max_bytes, std::string& out, base::Status& error) {
  const size_t at = r.position();
  const uint16_t length = r.u16();
  if (!r.ok()) {
    error = refuse(std::string("it ends inside a ") + field, at);
    return false;
  }
  if (length > max_bytes) {
    error = refuse(std::string("a ") + field + " of " + std::to_string(length) + " bytes (at most " +
                       std::to_string(max_bytes) + ")", at);
    return false;
  }
  base::ByteSpan bytes = r.span(length);
  if (!r.ok()) {
    error = refuse(std::string("it ends inside a ") + field, at);
    return false;
  }
  out.assign(bytes.begin(), bytes.end());
  if (!printable(out)) {
    error = refuse(std::string("a ") + field + " with a byte that is not printable text", at);
    return false;
  }
  return true;
}

base::Status decode_region(base::ByteReader& r, uint64_t disk_bytes, Region& out) {
  const size_t at = r.position();
  const uint8_t kind = r.u8();
  if (!r.ok()) return refuse("it ends inside a region", at);
  if (kind == 0 || kind > kRegionKindMax) return refuse("unknown region kind " + std::to_string(kind), at);
  out.kind = static_cast<RegionKind>(kind);
  base::Status error;
  if (!get_string(r, "region name", kNameBytesMax, out.name, error)) return error;
  if (out.name.empty()) return refuse("a region without a name", at);
  if (!get_string(r, "region place", kNameBytesMax, out.where, error)) return error;
  out.offset_bytes = r.u64();
  out.length_bytes = r.u64();
  r.raw(out.digest.data(), out.digest.size());
  const uint8_t fact_count = r.u8();
  if (!r.ok()) return refuse("it ends inside region '" + out.name + "'", at);
  if (out.offset_bytes > disk_bytes || out.length_bytes > disk_bytes - out.offset_bytes) {
    return refuse("region '" + out.name + "' lies outside the disk", at);
  }
  if (fact_count > kFactsMax) return refuse(std::to_string(fact_count) + " facts in one region", at);
  out.facts.resize(fact_count);
  for (Fact& f : out.facts) {
    if (!get_string(r, "fact name", kFactNameBytesMax, f.name, error)) return error;
    if (!get_string(r, "fact value", kFactValueBytesMax, f.value, error)) return error;
  }
  return base::Status::ok();
}

}  // namespace

base::Bytes encode(const Fingerprint& fp) {
  assert(fp.regions.size() <= kRegionsMax);
  base::Bytes out;
  base::ByteWriter w(out);
  w.raw(kMagic, sizeof kMagic);
  w.u8(kVersion);
  w.u64(fp.disk_bytes);
  w.u16(static_cast<uint16_t>(fp.regions.size()));
  for (const Region& r : fp.regions) {
    w.u8(static_cast<uint8_t>(r.kind));
    put_string(w, r.name, kNameBytesMax);
    put_string(w, r.where, kNameBytesMax);
    w.u64(r.offset_bytes);
    w.u64(r.length_bytes);
    w.raw(r.digest.data(), r.digest.size());
    assert(r.facts.size() <= kFactsMax);
    w.u8(static_cast<uint8_t>(r.facts.size()));
    for (const Fact& f : r.facts) {
      put_string(w, f.name, kFactNameBytesMax);
      put_string(w, f.value, kFactValueBytesMax);
    }
  }
  return out;
}

base::Status decode(base::ByteSpan bytes, Fingerprint& out) {
  base::ByteReader r(bytes);
  uint8_t magic[4] = {};
  r.raw(magic, sizeof magic);
  if (!r.ok() || std::memcmp(magic, kMagic, sizeof magic) != 0) {
    return refuse("it does not start with the fingerprint magic 'CDFP'", 0);
  }
  const uint8_t version = r.u8();
  if (!r.ok()) return refuse("it ends before its version", 4);
  if (version != kVersion) {
    return refuse("version " + std::to_string(version) + ", this build reads version " + std::to_string(kVersion),
                  4);
  }
  Fingerprint fp;
  fp.disk_bytes = r.u64();
  const uint16_t count = r.u16();
  if (!r.ok()) return refuse("it ends inside its header", r.position());
  if (count > kRegionsMax) {
    return refuse(std::to_string(count) + " regions (at most " + std::to_string(kRegionsMax) + ")", 13);
  }
  std::set<std::string> names;
  fp.regions.resize(count);
  for (Region& region : fp.regions) {
    const size_t at = r.position();
    BASE_TRY(decode_region(r, fp.disk_bytes, region));
    if (!names.insert(region.name).second) return refuse("region '" + region.name + "' appears twice", at);
  }
  if (!r.done()) return refuse(std::to_string(r.remaining()) + " bytes after the last region", r.position());
  out = std::move(fp);
  return base::Status::ok();
}

}  // namespace diverge
