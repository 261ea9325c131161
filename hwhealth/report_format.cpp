// SPDX-License-Identifier: MIT
// Making reports from snapshots, and their text and JSON forms.
#include <cstdio>
#include <ctime>

#include "base/units.h"
#include "hwhealth/format.h"
#include "hwhealth/json_writer.h"
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

std::string format_report_json(const Report& r) {
  JsonWriter w;
  w.begin_object();
  w.field("kind", report_kind_name(r.kind));
  w.field("created_unix_ms", r.created_unix_ms);
  w.field("poll", r.poll_number);
  w.field("verdict", verdict_name(r.verdict));
  w.field("worst", severity_name(r.worst()));
  w.field("omitted", static_cast<uint64_t>(r.omitted_count));
  w.key("sources").begin_array();
  for (const Source& s : r.sources) {
    w.begin_object();
    w.field("name", s.name);
    w.field("availability", availability_name(s.availability));
    w.field("reason", s.reason);
    w.end_object();
  }
  w.end_array();
  w.key("findings").begin_array();
  for (const Finding& f : r.findings) write_finding(w, f);
  w.end_array();
  w.key("changes").begin_array();
  for (const Change& c : r.changes) write_change(w, c);
  w.end_array();
  w.end_object();
  return w.text();
}

}  // namespace hwhealth
