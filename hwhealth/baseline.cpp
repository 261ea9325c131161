// SPDX-License-Identifier: MIT
// The byte form of a Baseline. Layout (all integers little-endian):
//
//   baseline := version:u8 (=1) poll_number:u64 taken_unix_ms:i64
//               source_count:u8 source* counter_count:u16 counter*
//               finding_count:u16 finding*
//   counter  := family:str key:str subject:str label:str value:u64 instance:u64
//   source, finding, str: see codec.h
#include "hwhealth/baseline.h"

#include <algorithm>
#include <cerrno>
#include <string>

#include "hwhealth/codec.h"

namespace hwhealth {
namespace {

using codec::get_str;
using codec::kNameBytesMax;
using codec::put_str;

void put_counter(base::ByteWriter& w, const Counter& c) {
  put_str(w, c.family, kNameBytesMax);
  put_str(w, c.key, kNameBytesMax);
  put_str(w, c.subject, kNameBytesMax);
  put_str(w, c.label, kNameBytesMax);
  w.u64(c.value);
  w.u64(c.instance);
}

Counter get_counter(base::ByteReader& r, bool& ok) {
  Counter c;
  c.family = get_str(r, kNameBytesMax, ok);
  c.key = get_str(r, kNameBytesMax, ok);
  c.subject = get_str(r, kNameBytesMax, ok);
  c.label = get_str(r, kNameBytesMax, ok);
  c.value = r.u64();
  c.instance = r.u64();
  return c;
}

base::Status malformed(const std::string& why) {
  return base::Status::error(EBADMSG, "malformed health baseline: " + why);
}

}  // namespace

const Source* Baseline::source(std::string_view name) const { return find_source(sources, name); }

Baseline baseline_of(const Snapshot& snapshot, const Baseline* previous) {
  Baseline b;
  b.poll_number = snapshot.poll_number;
  b.taken_unix_ms = snapshot.taken_unix_ms;
  b.sources = snapshot.sources;
  b.counters = error_counters(snapshot);
  for (const Finding& f : snapshot.findings) {
    if (!f.event) b.findings.push_back(f);
  }
  if (previous == nullptr) return b;
  for (const Counter& c : previous->counters) {
    if (!source_unanswered(snapshot, source_of(c.family))) continue;
    if (std::none_of(b.counters.begin(), b.counters.end(), [&](const Counter& n) { return n.key == c.key; }))
      b.counters.push_back(c);
  }
  std::sort(b.counters.begin(), b.counters.end(), [](const Counter& x, const Counter& y) { return x.key < y.key; });
  for (Finding& f : carried_findings(*previous, snapshot)) b.findings.push_back(std::move(f));
  return b;
}

std::vector<Finding> carried_findings(const Baseline& previous, const Snapshot& snapshot) {
  std::vector<Finding> carried;
  for (const Finding& f : previous.findings) {
    if (!source_unanswered(snapshot, source_of(f.code))) continue;
    if (std::any_of(snapshot.findings.begin(), snapshot.findings.end(),
                    [&](const Finding& n) { return n.identity() == f.identity(); }))
      continue;
    carried.push_back(f);
    if (figure(f, "as_of_poll").empty())
      carried.back().figures.push_back({"as_of_poll", std::to_string(previous.poll_number)});
  }
  return carried;
}

base::Bytes encode_baseline(const Baseline& b) {
  base::Bytes out;
  base::ByteWriter w(out);
  w.u8(kBaselineVersion);
  w.u64(b.poll_number);
  w.u64(static_cast<uint64_t>(b.taken_unix_ms));
  const size_t sources = std::min(b.sources.size(), kBaselineSourcesMax);
  w.u8(static_cast<uint8_t>(sources));
  for (size_t i = 0; i < sources; ++i) codec::put_source(w, b.sources[i]);
  const size_t counters = std::min(b.counters.size(), kBaselineCountersMax);
  w.u16(static_cast<uint16_t>(counters));
  for (size_t i = 0; i < counters; ++i) put_counter(w, b.counters[i]);
  const size_t findings = std::min(b.findings.size(), kFindingsMax);
  w.u16(static_cast<uint16_t>(findings));
  for (size_t i = 0; i < findings; ++i) codec::put_finding(w, b.findings[i]);
  return out;
}

base::Result<Baseline> decode_baseline(base::ByteSpan bytes) {
  base::ByteReader r(bytes);
  const uint8_t version = r.u8();
  if (!r.ok()) return malformed("empty");
  if (version != kBaselineVersion)
    return malformed("version " + std::to_string(version) + " is not " + std::to_string(kBaselineVersion));
  bool ok = true;
  Baseline b;
  b.poll_number = r.u64();
  b.taken_unix_ms = static_cast<int64_t>(r.u64());
  const uint8_t sources = r.u8();
  if (sources > kBaselineSourcesMax) return malformed(std::to_string(sources) + " sources");
  for (uint8_t i = 0; ok && r.ok() && i < sources; ++i) b.sources.push_back(codec::get_source(r, ok));
  const uint16_t counters = r.u16();
  if (counters > kBaselineCountersMax) return malformed(std::to_string(counters) + " counters");
  for (uint16_t i = 0; ok && r.ok() && i < counters; ++i) b.counters.push_back(get_counter(r, ok));
  const uint16_t findings = r.u16();
  if (findings > kFindingsMax) return malformed(std::to_string(findings) + " findings");
  for (uint16_t i = 0; ok && r.ok() && i < findings; ++i) b.findings.push_back(codec::get_finding(r, ok));
  if (!ok) return malformed("a field is out of range or a string over its limit");
  if (!r.ok()) return malformed("truncated after " + std::to_string(r.position()) + " bytes");
  if (!r.done()) return malformed(std::to_string(r.remaining()) + " bytes follow its end");
  return b;
}

}  // namespace hwhealth
