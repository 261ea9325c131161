// SPDX-License-Identifier: MIT
// Making reports from snapshots, and their text and JSON forms.
#include <cstdio>
#include <ctime>

#include "base/units.h"
#include "hwhealth/format.h"
#include "hwhealth/json.h"
#include "hwhealth/report.h"

namespace hwhealth {
namespace {

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c);
  return s;
}

}  // namespace

Report make_changes_report(const Snapshot& snapshot, std::vector<Change> changes) {
  Report r;
  r.kind = ReportKind::changes;
  r.created_unix_ms = snapshot.taken_unix_ms;
  r.poll_number = snapshot.poll_number;
  r.verdict = verdict(snapshot);
  r.sources = snapshot.sources;
  r.changes = std::move(changes);
  return r;
}

Report make_summary_report(const Snapshot& snapshot) {
  Report r;
  r.kind = ReportKind::summary;
  r.created_unix_ms = snapshot.taken_unix_ms;
  r.poll_number = snapshot.poll_number;
  r.verdict = verdict(snapshot);
  r.sources = snapshot.sources;
  for (const Finding& f : snapshot.findings)
    if (!f.event) r.findings.push_back(f);
  return r;
}

std::string format_report_text(const Report& r) {
  std::string out = base::format_utc_time(r.created_unix_ms) + "  " + report_kind_name(r.kind) + " (poll " +
                    std::to_string(r.poll_number) + "), verdict " + upper(verdict_name(r.verdict)) + "\n";
  // Sources are listed in summaries; a change of one is among the changes.
  for (const Source& s : r.sources) {
    if (s.supported() || r.kind != ReportKind::summary) continue;
    out += "  source " + s.name + ": " + upper(availability_name(s.availability)) + ": " + s.reason + "\n";
  }
  for (const Finding& f : r.findings) {
    out += "  " + upper(severity_name(f.severity)) + " " + f.code + ": " + f.sentence + "\n";
  }
  for (const Change& c : r.changes) out += "  " + format_change_text(c) + "\n";
  if (r.omitted_count > 0) out += "  (" + std::to_string(r.omitted_count) + " more left out of this report)\n";
  return out;
}

Json report_json(const Report& r) {
  Json sources = Json::array();
  for (const Source& s : r.sources)
    sources.push_back(
        Json{{"name", s.name}, {"availability", availability_name(s.availability)}, {"reason", s.reason}});
  Json findings = Json::array();
  for (const Finding& f : r.findings) findings.push_back(finding_json(f));
  Json changes = Json::array();
  for (const Change& c : r.changes) changes.push_back(change_json(c));
  return Json{
      {"kind", report_kind_name(r.kind)},
      {"created_unix_ms", r.created_unix_ms},
      {"poll", r.poll_number},
      {"verdict", verdict_name(r.verdict)},
      {"worst", severity_name(r.worst())},
      {"omitted", r.omitted_count},
      {"sources", sources},
      {"findings", findings},
      {"changes", changes},
  };
}

std::string format_report_json(const Report& r) { return dump_json(report_json(r)); }

}  // namespace hwhealth
