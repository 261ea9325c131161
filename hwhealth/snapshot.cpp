// SPDX-License-Identifier: MIT
#include "hwhealth/snapshot.h"

#include <algorithm>
#include <cassert>

namespace hwhealth {
namespace {

// The ATA attributes that count errors, and the counter each becomes.
struct AtaCounterSpec {
  uint8_t id;
  const char* family;
  const char* label;
};
constexpr AtaCounterSpec kAtaCounters[] = {
    {kAtaReallocatedSectors, "ata.reallocated_sectors", "reallocated sectors"},
    {kAtaEndToEndErrors, "ata.end_to_end_errors", "end-to-end errors"},
    {kAtaReportedUncorrectable, "ata.reported_uncorrectable", "reported uncorrectable errors"},
    {kAtaCommandTimeouts, "ata.command_timeouts", "command timeouts"},
    {kAtaPendingSectors, "ata.pending_sectors", "pending sectors"},
    {kAtaOfflineUncorrectable, "ata.offline_uncorrectable", "offline uncorrectable sectors"},
    {kAtaCrcErrors, "ata.crc_errors", "interface CRC errors"},
};

bool available(const Snapshot& snapshot, std::string_view name) {
  const Source* source = snapshot.source(name);
  return source != nullptr && source->supported();
}

void add_disk_counters(const Snapshot& snapshot, std::vector<Counter>& out) {
  const std::string& device = snapshot.smart.device;
  if (available(snapshot, kSourceSmart) && snapshot.smart.ata) {
    for (const AtaCounterSpec& spec : kAtaCounters) {
      if (const AtaAttribute* attribute = find_ata_attribute(snapshot.smart.ata->data, spec.id))
        out.push_back(Counter{spec.family, spec.family, device, spec.label, ata_raw_value(*attribute)});
    }
  }
  if (available(snapshot, kSourceSmart) && snapshot.smart.nvme) {
    const NvmeHealth& nvme = *snapshot.smart.nvme;
    out.push_back(Counter{"nvme.media_errors", "nvme.media_errors", device, "media errors", nvme.media_errors});
    out.push_back(Counter{"nvme.error_log_entries", "nvme.error_log_entries", device, "error log entries",
                          nvme.error_log_entries});
  }
  if (available(snapshot, kSourceDiskErrors) && snapshot.disk_errors) {
    out.push_back(Counter{"disk_errors.io_errors", "disk_errors.io_errors", snapshot.disk_errors->disk,
                          "failed disk commands", snapshot.disk_errors->foreign_io_errors(),
                          snapshot.disk_errors->own_count_id});
  }
}

void add_memory_counters(const Snapshot& snapshot, std::vector<Counter>& out) {
  if (!available(snapshot, kSourceMemoryEcc)) return;
  for (const MemoryController& mc : snapshot.memory_controllers) {
    out.push_back(Counter{"memory_ecc.corrected", "memory_ecc." + mc.name + ".corrected", mc.name,
                          "corrected memory errors", mc.corrected_count});
    out.push_back(Counter{"memory_ecc.uncorrected", "memory_ecc." + mc.name + ".uncorrected", mc.name,
                          "uncorrected memory errors", mc.uncorrected_count});
  }
}

}  // namespace

const Source* Snapshot::source(std::string_view name) const { return find_source(sources, name); }

std::string_view source_of(std::string_view code) {
  struct Prefix {
    std::string_view prefix;
    std::string_view source;
  };
  static constexpr Prefix kPrefixes[] = {
      {"ata.", kSourceSmart},          {"nvme.", kSourceSmart},       {"temp.", kSourceTemperatures},
      {"memory_ecc.", kSourceMemoryEcc}, {"battery.", kSourceBattery}, {"disk_errors.", kSourceDiskErrors},
      {"disk.", kSourceDiskErrors},
  };
  for (const Prefix& p : kPrefixes) {
    if (code.starts_with(p.prefix)) return p.source;
  }
  return {};
}

bool source_unanswered(const Snapshot& snapshot, std::string_view source) {
  const Source* s = source.empty() ? nullptr : snapshot.source(source);
  return s != nullptr && (s->availability == Availability::failed || s->availability == Availability::no_permission);
}

Verdict verdict(const Snapshot& snapshot) {
  Verdict result = Verdict::ok;
  for (const Finding& finding : snapshot.findings) {
    if (finding.severity == Severity::critical) return Verdict::critical;
    if (finding.severity == Severity::warning) result = Verdict::warning;
  }
  if (result == Verdict::ok && !available(snapshot, kSourceSmart)) return Verdict::unknown;
  return result;
}

const char* verdict_name(Verdict verdict) {
  switch (verdict) {
    case Verdict::ok: return "ok";
    case Verdict::unknown: return "unknown";
    case Verdict::warning: return "warning";
    case Verdict::critical: return "critical";
  }
  return "unknown";
}

std::vector<Counter> error_counters(const Snapshot& snapshot) {
  std::vector<Counter> counters;
  add_disk_counters(snapshot, counters);
  add_memory_counters(snapshot, counters);
  std::sort(counters.begin(), counters.end(), [](const Counter& a, const Counter& b) { return a.key < b.key; });
  return counters;
}

const char* change_kind_name(Change::Kind kind) {
  switch (kind) {
    case Change::Kind::counter_rose: return "counter_rose";
    case Change::Kind::finding_new: return "finding_new";
    case Change::Kind::finding_cleared: return "finding_cleared";
    case Change::Kind::source_changed: return "source_changed";
  }
  return "counter_rose";
}

}  // namespace hwhealth
