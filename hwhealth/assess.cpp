// SPDX-License-Identifier: MIT
// The rules on counters that rose since the previous poll, and assess().
#include "hwhealth/assess.h"

#include <algorithm>
#include <string_view>

namespace hwhealth {
namespace {

struct RiseRule {
  std::string_view family;  // Counter::family
  const char* code;
  Severity severity;
  const char* advice;
};

// smartd reports 197/198 on increase (-C 197+ -U 198+) and error-log growth;
// the others follow the same idea for the counters this module sees.
constexpr RiseRule kRiseRules[] = {
    {"ata.reallocated_sectors", "ata.reallocated_rose", Severity::warning,
     "the surface is wearing; if it keeps rising, replace the clone's disk"},
    {"ata.pending_sectors", "ata.pending_rose", Severity::warning,
     "more sectors could not be read; data there may be lost, a verify of the clone will show which"},
    {"ata.offline_uncorrectable", "ata.offline_uncorrectable_rose", Severity::warning,
     "the drive's own scan found more bad sectors; back up and consider replacing the disk"},
    {"ata.reported_uncorrectable", "ata.reported_uncorrectable_rose", Severity::warning,
     "the drive failed to correct read errors; a verify of the clone will show where"},
    {"ata.end_to_end_errors", "ata.end_to_end_rose", Severity::warning,
     "data was corrupted inside the drive on its way; the drive is unreliable"},
    {"ata.command_timeouts", "ata.command_timeouts_rose", Severity::info,
     "commands timed out; a rising count points at the drive, its power or its connection"},
    {"ata.crc_errors", "ata.crc_errors_rose", Severity::info,
     "transfers failed their checksum between disk and machine: the cable or connector, not the media"},
    {"nvme.media_errors", "nvme.media_errors_rose", Severity::warning,
     "the drive could not recover data; a verify of the clone will show where"},
    {"nvme.error_log_entries", "nvme.error_log_rose", Severity::info,
     "the controller logged more errors; often harmless, worth a look with nvme error-log"},
    {"memory_ecc.corrected", "memory_ecc.corrected_rose", Severity::warning,
     "RAM errors were corrected; a module is starting to fail, test the memory"},
    {"memory_ecc.uncorrected", "memory_ecc.uncorrected_rose", Severity::critical,
     "RAM errors could not be corrected; data in memory was corrupted, replace the failing module"},
    {"disk_errors.io_errors", "disk.io_errors_rose", Severity::warning,
     "commands to the clone's disk failed; see the kernel log (journalctl -k) for I/O errors"},
};

const RiseRule* rise_rule(std::string_view family) {
  for (const RiseRule& rule : kRiseRules) {
    if (rule.family == family) return &rule;
  }
  return nullptr;
}

bool more_severe(const Finding& a, const Finding& b) { return a.severity > b.severity; }

}  // namespace

void assess_counters(const Snapshot& current, const Baseline& previous, std::vector<Finding>& out) {
  const std::vector<Counter>& before = previous.counters;
  for (const Counter& now : error_counters(current)) {
    const auto was = std::find_if(before.begin(), before.end(), [&](const Counter& c) { return c.comparable(now); });
    const RiseRule* rule = rise_rule(now.family);
    if (was == before.end() || rule == nullptr || now.value <= was->value) continue;
    const std::string numbers = std::to_string(was->value) + " to " + std::to_string(now.value);
    out.push_back(Finding{rule->severity, rule->code, now.subject,
                          now.subject + ": " + now.label + " rose from " + numbers + " since the last check; " +
                              rule->advice,
                          {{"counter", now.key}, {"before", std::to_string(was->value)},
                           {"after", std::to_string(now.value)}},
                          /*event=*/true});
  }
}

std::vector<Finding> assess(const Snapshot& current, const Baseline* previous) {
  std::vector<Finding> findings;
  auto available = [&current](std::string_view name) {
    const Source* source = current.source(name);
    return source != nullptr && source->supported();
  };
  if (available(kSourceSmart)) assess_smart(current.smart, findings);
  if (available(kSourceTemperatures)) assess_temperatures(current.temperatures, findings);
  if (available(kSourceMemoryEcc)) assess_memory_ecc(current.memory_controllers, findings);
  if (available(kSourceBattery)) assess_batteries(current.batteries, findings);
  if (previous != nullptr) assess_counters(current, *previous, findings);
  std::stable_sort(findings.begin(), findings.end(), more_severe);
  if (findings.size() > kFindingsMax) findings.resize(kFindingsMax);
  return findings;
}

}  // namespace hwhealth
