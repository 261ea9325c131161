// SPDX-License-Identifier: MIT
// Everything known about the clone's hardware at one poll, and what changed
// since the poll before.
//
// A Snapshot is a plain value: the Collector (collect.h) makes one per poll,
// keeps what the next poll compares against (its Baseline, baseline.h; the
// daemon stores it, so that a restart still compares against it), the daemon
// formats it for `clonectl health` (format.h) and sends diff(previous,
// current) to the original as reports. Bounded: every list in
// it has a k*Max limit (sysfs.h, ata.h, kFindingsMax).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hwhealth/ata.h"
#include "hwhealth/finding.h"
#include "hwhealth/nvme.h"
#include "hwhealth/source.h"
#include "hwhealth/sysfs.h"

namespace hwhealth {

struct Baseline;  // baseline.h

inline constexpr size_t kFindingsMax = 256;
inline constexpr size_t kChangesMax = 512;

// SMART of the target disk. At most one of ata/nvme is set, and only when
// the smart source is available.
struct SmartReading {
  std::string device;  // the target's path as configured
  DiskInfo disk;       // what sysfs says the disk is
  std::optional<AtaHealth> ata;
  std::optional<NvmeHealth> nvme;
  bool operator==(const SmartReading&) const = default;
};

struct Snapshot {
  uint64_t poll_number = 0;  // 1, 2, 3, ... within one Collector; never reused
  int64_t taken_unix_ms = 0;
  // All five sources, in this order: smart, temperatures, memory_ecc,
  // battery, disk_errors; each available or saying why not.
  std::vector<Source> sources;
  SmartReading smart;
  std::vector<TemperatureSensor> temperatures;
  std::vector<MemoryController> memory_controllers;
  std::vector<Battery> batteries;
  std::optional<DiskErrorCounters> disk_errors;
  std::vector<Finding> findings;  // assess(): critical first, then warning, then info

  // The source named `name`, or nullptr.
  const Source* source(std::string_view name) const;
  bool operator==(const Snapshot&) const = default;
};

// One line of `clonectl health`'s answer to "is its hardware healthy":
// critical or warning when a finding says so; unknown when nothing is wrong
// as far as it can tell but the disk's SMART could not be read (an absent
// source is never counted as healthy); ok otherwise.
enum class Verdict { ok, unknown, warning, critical };
Verdict verdict(const Snapshot& snapshot);
const char* verdict_name(Verdict verdict);  // "ok", "unknown", "warning", "critical"

// The source a finding's code or a counter's family comes from ("ata.pending"
// and "nvme.media_errors": smart; "temp.": temperatures; "memory_ecc.";
// "battery."; "disk_errors." and "disk.": disk_errors), or "" for none.
std::string_view source_of(std::string_view code);
// Whether `source` should have answered in this snapshot and did not: it
// failed, or we may no longer ask. What it said before then stands (not
// when it is unsupported: the device or battery is gone). False for "", the
// source of no finding of a source (the daemon's own).
bool source_unanswered(const Snapshot& snapshot, std::string_view source);

// An error counter: a number that a healthy machine does not raise.
struct Counter {
  std::string family;   // "ata.pending_sectors", "memory_ecc.corrected", ... (the rule that watches it)
  std::string key;      // unique in a snapshot: the family, plus ".mc0" for memory controllers
  std::string subject;  // the device or controller it belongs to
  std::string label;    // "pending sectors"
  uint64_t value = 0;
  // Values compare only between counters of equal key and instance (see
  // DiskErrorCounters::own_count_id); 0 for every counter but that one.
  uint64_t instance = 0;

  bool comparable(const Counter& other) const { return key == other.key && instance == other.instance; }
  bool operator==(const Counter&) const = default;
};
// The error counters of the available sources, sorted by key.
std::vector<Counter> error_counters(const Snapshot& snapshot);

struct Change {
  enum class Kind {
    counter_rose,     // an error counter is higher than at the previous poll
    finding_new,      // a finding appeared (events: every time they happen)
    finding_cleared,  // a lasting finding is gone
    source_changed,   // a source became available, unsupported, no_permission or failed
  };
  Kind kind = Kind::counter_rose;
  Severity severity = Severity::info;  // the finding's; info for counters and sources
  std::string key;                     // the counter key, finding identity or source name
  std::string sentence;                // ready to show or to send
  uint64_t before = 0;                 // counter_rose only
  uint64_t after = 0;
  Finding finding;                     // finding_new and finding_cleared only
  Source source;                       // source_changed only: the source now
  bool operator==(const Change&) const = default;
};
const char* change_kind_name(Change::Kind kind);  // "counter_rose", "finding_new", ...

// What changed from `previous` (baseline_of() the poll before; an empty
// Baseline on the very first poll) to `current`: counters, then sources,
// then findings, at most kChangesMax entries. Counters that fell (a reset, a
// new disk) are not changes; the findings decide what that means.
std::vector<Change> diff(const Baseline& previous, const Snapshot& current);

}  // namespace hwhealth
