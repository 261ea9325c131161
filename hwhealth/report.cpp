// SPDX-License-Identifier: MIT
// The byte form of a Report. Layout (all integers little-endian):
//
//   report  := version:u8 (=1) kind:u8 created_unix_ms:i64 poll_number:u64
//              verdict:u8 omitted_count:u32
//              source_count:u8 source*  finding_count:u16 finding*
//              change_count:u16 change*
//   source, finding: see codec.h
//   change  := kind:u8 severity:u8 key:str sentence:str before:u64 after:u64
//              has_finding:u8 finding? has_source:u8 source?
//   str     := length:u16 bytes (UTF-8; each field has its limit in report.h)
#include "hwhealth/report.h"

#include <algorithm>
#include <cerrno>

#include "hwhealth/codec.h"

namespace hwhealth {
namespace {

using codec::get_enum;
using codec::get_finding;
using codec::get_source;
using codec::get_str;
using codec::put_finding;
using codec::put_source;
using codec::put_str;

bool has_finding(Change::Kind kind) {
  return kind == Change::Kind::finding_new || kind == Change::Kind::finding_cleared;
}

void put_change(base::ByteWriter& w, const Change& c) {
  w.u8(static_cast<uint8_t>(c.kind));
  w.u8(static_cast<uint8_t>(c.severity));
  put_str(w, c.key, kReportNameBytesMax);
  put_str(w, c.sentence, kReportTextBytesMax);
  w.u64(c.before);
  w.u64(c.after);
  w.u8(has_finding(c.kind) ? 1 : 0);
  if (has_finding(c.kind)) put_finding(w, c.finding);
  w.u8(c.kind == Change::Kind::source_changed ? 1 : 0);
  if (c.kind == Change::Kind::source_changed) put_source(w, c.source);
}

base::Bytes encode_all(const Report& r) {
  base::Bytes out;
  base::ByteWriter w(out);
  w.u8(kReportVersion);
  w.u8(static_cast<uint8_t>(r.kind));
  w.u64(static_cast<uint64_t>(r.created_unix_ms));
  w.u64(r.poll_number);
  w.u8(static_cast<uint8_t>(r.verdict));
  w.u32(r.omitted_count);
  const size_t sources = std::min(r.sources.size(), kReportSourcesMax);
  w.u8(static_cast<uint8_t>(sources));
  for (size_t i = 0; i < sources; ++i) put_source(w, r.sources[i]);
  w.u16(static_cast<uint16_t>(r.findings.size()));
  for (const Finding& f : r.findings) put_finding(w, f);
  w.u16(static_cast<uint16_t>(r.changes.size()));
  for (const Change& c : r.changes) put_change(w, c);
  return out;
}

Change get_change(base::ByteReader& r, bool& ok) {
  Change c;
  c.kind = get_enum(r, Change::Kind::source_changed, ok);
  c.severity = get_enum(r, Severity::critical, ok);
  c.key = get_str(r, kReportNameBytesMax, ok);
  c.sentence = get_str(r, kReportTextBytesMax, ok);
  c.before = r.u64();
  c.after = r.u64();
  const uint8_t with_finding = r.u8();
  if (with_finding != (has_finding(c.kind) ? 1 : 0)) ok = false;
  if (ok && with_finding == 1) c.finding = get_finding(r, ok);
  const uint8_t with_source = r.u8();
  if (with_source != (c.kind == Change::Kind::source_changed ? 1 : 0)) ok = false;
  if (ok && with_source == 1) c.source = get_source(r, ok);
  return c;
}

base::Status malformed(const std::string& why) {
  return base::Status::error(EBADMSG, "malformed health report: " + why);
}

}  // namespace

const char* report_kind_name(ReportKind kind) { return kind == ReportKind::summary ? "summary" : "changes"; }

Severity Report::worst() const {
  Severity worst = Severity::info;
  for (const Finding& f : findings) worst = std::max(worst, f.severity);
  for (const Change& c : changes) worst = std::max(worst, c.severity);
  return worst;
}

base::Bytes encode_report(const Report& report) {
  Report r = report;
  r.findings.resize(std::min(r.findings.size(), kFindingsMax));
  r.changes.resize(std::min(r.changes.size(), kChangesMax));
  base::Bytes out = encode_all(r);
  if (out.size() <= kReportBytesMax) return out;
  // The least severe go first when the budget is short.
  auto by_severity = [](const auto& a, const auto& b) { return a.severity > b.severity; };
  std::stable_sort(r.findings.begin(), r.findings.end(), by_severity);
  std::stable_sort(r.changes.begin(), r.changes.end(), by_severity);
  while (out.size() > kReportBytesMax && (!r.findings.empty() || !r.changes.empty())) {
    const size_t drop = std::max<size_t>(1, (r.findings.size() + r.changes.size()) / 8);
    for (size_t i = 0; i < drop; ++i) {
      if (!r.changes.empty()) r.changes.pop_back();
      else if (!r.findings.empty()) r.findings.pop_back();
      else break;
      ++r.omitted_count;
    }
    out = encode_all(r);
  }
  return out;
}

base::Result<Report> decode_report(base::ByteSpan bytes) {
  if (bytes.size() > kReportBytesMax)
    return malformed(std::to_string(bytes.size()) + " bytes is over the limit of " + std::to_string(kReportBytesMax));
  base::ByteReader r(bytes);
  const uint8_t version = r.u8();
  if (!r.ok()) return malformed("empty");
  if (version != kReportVersion)
    return malformed("version " + std::to_string(version) + " is not " + std::to_string(kReportVersion));
  bool ok = true;
  Report out;
  out.kind = static_cast<ReportKind>(r.u8());
  if (out.kind != ReportKind::changes && out.kind != ReportKind::summary) ok = false;
  out.created_unix_ms = static_cast<int64_t>(r.u64());
  out.poll_number = r.u64();
  out.verdict = get_enum(r, Verdict::critical, ok);
  out.omitted_count = r.u32();
  const uint8_t sources = r.u8();
  if (sources > kReportSourcesMax) return malformed(std::to_string(sources) + " sources");
  for (uint8_t i = 0; ok && r.ok() && i < sources; ++i) out.sources.push_back(get_source(r, ok));
  const uint16_t findings = r.u16();
  if (findings > kFindingsMax) return malformed(std::to_string(findings) + " findings");
  for (uint16_t i = 0; ok && r.ok() && i < findings; ++i) out.findings.push_back(get_finding(r, ok));
  const uint16_t changes = r.u16();
  if (changes > kChangesMax) return malformed(std::to_string(changes) + " changes");
  for (uint16_t i = 0; ok && r.ok() && i < changes; ++i) out.changes.push_back(get_change(r, ok));
  if (!ok) return malformed("a field is out of range or a string over its limit");
  if (!r.ok()) return malformed("truncated after " + std::to_string(r.position()) + " bytes");
  if (!r.done()) return malformed(std::to_string(r.remaining()) + " bytes follow its end");
  return out;
}

}  // namespace hwhealth
