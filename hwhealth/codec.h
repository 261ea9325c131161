// SPDX-License-Identifier: MIT
// The byte forms of a Source and a Finding, shared by the two codecs that
// carry them: reports (report.cpp, over the link) and baselines
// (baseline.cpp, in the state store). Internal to hwhealth.
//
//   source  := name:str availability:u8 reason:str
//   finding := severity:u8 code:str subject:str sentence:str event:u8
//              figure_count:u8 (key:str value:str)*
//   str     := length:u16 bytes (UTF-8)
//
// Writers cut strings to their limit (at a UTF-8 boundary); readers refuse
// a string over its limit, an enum out of range or a count over its bound
// by clearing `ok`, and leave overruns to the ByteReader's sticky state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "hwhealth/finding.h"
#include "hwhealth/source.h"

namespace hwhealth::codec {

inline constexpr size_t kFiguresMax = 32;
inline constexpr size_t kTextBytesMax = 1024;  // sentences, reasons
inline constexpr size_t kNameBytesMax = 256;   // codes, subjects, keys, figure keys and values

void put_str(base::ByteWriter& w, std::string_view s, size_t max_bytes);
void put_source(base::ByteWriter& w, const Source& s);
void put_finding(base::ByteWriter& w, const Finding& f);

std::string get_str(base::ByteReader& r, size_t max_bytes, bool& ok);
// A u8 that must be at most `last`.
uint8_t get_u8_upto(base::ByteReader& r, uint8_t last, bool& ok);
template <class Enum>
Enum get_enum(base::ByteReader& r, Enum last, bool& ok) {
  return static_cast<Enum>(get_u8_upto(r, static_cast<uint8_t>(last), ok));
}
Source get_source(base::ByteReader& r, bool& ok);
Finding get_finding(base::ByteReader& r, bool& ok);

}  // namespace hwhealth::codec
