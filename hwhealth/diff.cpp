// SPDX-License-Identifier: MIT
// diff(previous, current): the changes the daemon reports to the original.
#include <algorithm>

#include "hwhealth/baseline.h"
#include "hwhealth/snapshot.h"

namespace hwhealth {
namespace {

void push(std::vector<Change>& changes, Change change) {
  if (changes.size() < kChangesMax) changes.push_back(std::move(change));
}

void counter_changes(const Baseline& previous, const Snapshot& current, std::vector<Change>& changes) {
  const std::vector<Counter>& before = previous.counters;
  for (const Counter& now : error_counters(current)) {
    const auto was = std::find_if(before.begin(), before.end(), [&](const Counter& c) { return c.comparable(now); });
    if (was == before.end() || now.value <= was->value) continue;
    Change change;
    change.kind = Change::Kind::counter_rose;
    change.key = now.key;
    change.before = was->value;
    change.after = now.value;
    change.sentence = now.subject + ": " + now.label + " rose from " + std::to_string(was->value) + " to " +
                      std::to_string(now.value) + ".";
    push(changes, std::move(change));
  }
}

// A source missing from `previous` (the first poll, with an empty baseline) counts as changed only
// when it is not available: "SMART is unsupported" is news, "available" is not.
void source_changes(const Baseline& previous, const Snapshot& current, std::vector<Change>& changes) {
  for (const Source& now : current.sources) {
    const Source* was = previous.source(now.name);
    if (was != nullptr ? was->availability == now.availability : now.supported()) continue;
    Change change;
    change.kind = Change::Kind::source_changed;
    // A source that was read and now fails may be the device failing.
    if (was != nullptr && was->supported() && now.availability == Availability::failed)
      change.severity = Severity::warning;
    change.key = now.name;
    change.source = now;
    change.sentence = now.supported() ? now.name + " can be read again."
                                      : now.name + " is " + availability_name(now.availability) + ": " + now.reason;
    push(changes, std::move(change));
  }
}

bool has_identity(const std::vector<Finding>& findings, const std::string& identity) {
  return std::any_of(findings.begin(), findings.end(), [&](const Finding& f) { return f.identity() == identity; });
}

Change finding_change(Change::Kind kind, const Finding& finding) {
  Change change;
  change.kind = kind;
  change.severity = finding.severity;
  change.key = finding.identity();
  change.finding = finding;
  change.sentence = kind == Change::Kind::finding_cleared
                        ? "Cleared (" + finding.code + ", " + finding.subject + "); it was: " + finding.sentence
                        : finding.sentence;
  return change;
}

void finding_changes(const Baseline& previous, const Snapshot& current, std::vector<Change>& changes) {
  for (const Finding& finding : current.findings) {
    if (finding.event || !has_identity(previous.findings, finding.identity()))
      push(changes, finding_change(Change::Kind::finding_new, finding));
  }
  for (const Finding& finding : previous.findings) {
    if (finding.event || has_identity(current.findings, finding.identity())) continue;
    // A source that did not answer this poll says nothing of its findings:
    // a failing disk whose SMART stops answering is not "cleared".
    if (source_unanswered(current, source_of(finding.code))) continue;
    push(changes, finding_change(Change::Kind::finding_cleared, finding));
  }
}

}  // namespace

std::vector<Change> diff(const Baseline& previous, const Snapshot& current) {
  std::vector<Change> changes;
  counter_changes(previous, current, changes);
  source_changes(previous, current, changes);
  finding_changes(previous, current, changes);
  return changes;
}

}  // namespace hwhealth
