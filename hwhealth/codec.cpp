// SPDX-License-Identifier: MIT
#include "hwhealth/codec.h"

#include <algorithm>

namespace hwhealth::codec {
namespace {

std::string cut(std::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return std::string(s);
  size_t n = max_bytes;
  while (n > 0 && (static_cast<uint8_t>(s[n]) & 0xc0) == 0x80) --n;
  return std::string(s.substr(0, n));
}

}  // namespace

void put_str(base::ByteWriter& w, std::string_view s, size_t max_bytes) { w.str16(cut(s, max_bytes)); }

void put_source(base::ByteWriter& w, const Source& s) {
  put_str(w, s.name, kNameBytesMax);
  w.u8(static_cast<uint8_t>(s.availability));
  put_str(w, s.reason, kTextBytesMax);
}

void put_finding(base::ByteWriter& w, const Finding& f) {
  w.u8(static_cast<uint8_t>(f.severity));
  put_str(w, f.code, kNameBytesMax);
  put_str(w, f.subject, kNameBytesMax);
  put_str(w, f.sentence, kTextBytesMax);
  w.u8(f.event ? 1 : 0);
  const size_t figures = std::min(f.figures.size(), kFiguresMax);
  w.u8(static_cast<uint8_t>(figures));
  for (size_t i = 0; i < figures; ++i) {
    put_str(w, f.figures[i].key, kNameBytesMax);
    put_str(w, f.figures[i].value, kNameBytesMax);
  }
}

std::string get_str(base::ByteReader& r, size_t max_bytes, bool& ok) {
  const uint16_t n = r.u16();
  if (n > max_bytes) ok = false;
  if (!ok || !r.ok()) return {};
  base::ByteSpan s = r.span(n);
  return std::string(s.begin(), s.end());
}

uint8_t get_u8_upto(base::ByteReader& r, uint8_t last, bool& ok) {
  const uint8_t v = r.u8();
  if (v > last) ok = false;
  return v;
}

Source get_source(base::ByteReader& r, bool& ok) {
  Source s;
  s.name = get_str(r, kNameBytesMax, ok);
  s.availability = get_enum(r, Availability::failed, ok);
  s.reason = get_str(r, kTextBytesMax, ok);
  return s;
}

Finding get_finding(base::ByteReader& r, bool& ok) {
  Finding f;
  f.severity = get_enum(r, Severity::critical, ok);
  f.code = get_str(r, kNameBytesMax, ok);
  f.subject = get_str(r, kNameBytesMax, ok);
  f.sentence = get_str(r, kTextBytesMax, ok);
  f.event = get_u8_upto(r, 1, ok) == 1;
  const uint8_t figures = get_u8_upto(r, static_cast<uint8_t>(kFiguresMax), ok);
  for (uint8_t i = 0; ok && r.ok() && i < figures; ++i) {
    Figure fig;
    fig.key = get_str(r, kNameBytesMax, ok);
    fig.value = get_str(r, kNameBytesMax, ok);
    f.figures.push_back(std::move(fig));
  }
  return f;
}

}  // namespace hwhealth::codec
