// SPDX-License-Identifier: MIT
// Rules on the target disk's SMART: the drive's own verdict, attributes
// against thresholds (ATA), the critical warning byte and wear (NVMe).
#include <string>

#include "hwhealth/assess.h"

namespace hwhealth {
namespace {

std::string number(uint64_t value) { return std::to_string(value); }

Finding make(Severity severity, std::string code, std::string subject, std::string sentence,
             std::vector<Figure> figures = {}) {
  return Finding{severity, std::move(code), std::move(subject), std::move(sentence), std::move(figures), false};
}

std::string attribute_subject(const AtaAttribute& a) {
  return "attribute " + number(a.id) + " " + ata_attribute_name(a.id);
}

std::vector<Figure> attribute_figures(const AtaAttribute& a) {
  return {{"id", number(a.id)},        {"name", ata_attribute_name(a.id)}, {"value", number(a.current)},
          {"worst", number(a.worst)},  {"threshold", number(a.threshold)}, {"raw", number(ata_raw_value(a))},
          {"type", a.prefailure() ? "prefail" : "old_age"}};
}

void assess_attribute(const std::string& device, const AtaAttribute& a, std::vector<Finding>& out) {
  const AtaAttributeState state = ata_attribute_state(a);
  if (state != AtaAttributeState::failed_now && state != AtaAttributeState::failed_past) return;
  const bool now = state == AtaAttributeState::failed_now;
  const std::string kind = a.prefailure() ? "Pre-failure attribute " : "Usage attribute ";
  const std::string values = now ? "(value " + number(a.current) + ", threshold " + number(a.threshold) + ")"
                                 : "(worst " + number(a.worst) + ", threshold " + number(a.threshold) + ")";
  std::string sentence = device + ": " + kind + number(a.id) + " " + ata_attribute_name(a.id) + " ";
  if (now && a.prefailure()) {
    sentence += "is at or below its threshold " + values + ": the drive predicts its own failure; back up, "
                "replace the clone's disk soon and resync";
    out.push_back(make(Severity::critical, "ata.prefail_now", attribute_subject(a), sentence, attribute_figures(a)));
  } else if (now) {
    sentence += "is at or below its threshold " + values + ": the drive is past its rated life in this respect; "
                "plan to replace it";
    out.push_back(make(Severity::warning, "ata.usage_now", attribute_subject(a), sentence, attribute_figures(a)));
  } else {
    sentence += "was at or below its threshold once " + values + " and is above it now; keep an eye on it";
    out.push_back(make(a.prefailure() ? Severity::warning : Severity::info,
                       a.prefailure() ? "ata.prefail_past" : "ata.usage_past", attribute_subject(a), sentence,
                       attribute_figures(a)));
  }
}

// Levels of the counts smartd watches with -C 197 -U 198, and reallocations.
void assess_ata_counts(const std::string& device, const AtaSmartData& data, std::vector<Finding>& out) {
  if (const AtaAttribute* a = find_ata_attribute(data, kAtaPendingSectors); a && ata_raw_value(*a) > 0) {
    out.push_back(make(Severity::warning, "ata.pending", device,
                       device + " has " + number(ata_raw_value(*a)) + " sectors it could not read, pending "
                       "reallocation: data written there may be lost; a verify of the clone will show which",
                       {{"raw", number(ata_raw_value(*a))}}));
  }
  if (const AtaAttribute* a = find_ata_attribute(data, kAtaOfflineUncorrectable); a && ata_raw_value(*a) > 0) {
    out.push_back(make(Severity::warning, "ata.offline_uncorrectable", device,
                       device + " found " + number(ata_raw_value(*a)) + " uncorrectable sectors in its offline "
                       "scan: its surface is failing in places; watch whether the count grows",
                       {{"raw", number(ata_raw_value(*a))}}));
  }
  if (const AtaAttribute* a = find_ata_attribute(data, kAtaReallocatedSectors); a && ata_raw_value(*a) > 0) {
    out.push_back(make(Severity::info, "ata.reallocated", device,
                       device + " has reallocated " + number(ata_raw_value(*a)) + " sectors to spares; a few are "
                       "normal, a growing number is not",
                       {{"raw", number(ata_raw_value(*a))}}));
  }
}

void assess_ata(const std::string& device, const AtaHealth& ata, std::vector<Finding>& out) {
  if (ata.status == AtaDriveStatus::failing) {
    out.push_back(make(Severity::critical, "ata.failing", device,
                       device + " says it is FAILING (SMART RETURN STATUS: threshold exceeded): back up, replace "
                       "the clone's disk and resync"));
  }
  if (!ata.status) {
    out.push_back(make(Severity::info, "ata.status_unknown", device,
                       device + ": the drive's own verdict could not be read (" + ata.status_problem +
                       "); its attributes are still checked"));
  }
  if (!ata.data.thresholds_known) {
    out.push_back(make(Severity::info, "ata.thresholds_unknown", device,
                       device + ": the attribute thresholds could not be read (" + ata.thresholds_problem +
                       "), so no attribute can be judged against them"));
  }
  for (const AtaAttribute& attribute : ata.data.attributes) assess_attribute(device, attribute, out);
  assess_ata_counts(device, ata.data, out);
}

struct CriticalBitRule {
  Severity severity;
  const char* meaning;
};

CriticalBitRule critical_bit_rule(unsigned bit) {
  switch (bit) {
    case 0: return {Severity::critical, "its available spare fell below the threshold: replace it soon"};
    case 1: return {Severity::warning, "a temperature is beyond a threshold: check the cooling"};
    case 2: return {Severity::critical, "its reliability is degraded by media or internal errors: replace it"};
    case 3: return {Severity::critical, "it put its media in read-only mode: the clone can no longer be written; "
                                        "replace the disk"};
    case 4: return {Severity::critical, "its volatile memory backup failed: a power cut may lose written data"};
    case 5: return {Severity::warning, "its persistent memory region became read-only"};
    default: return {Severity::warning, "it set a critical warning bit this program does not know"};
  }
}

void assess_nvme(const std::string& device, const NvmeHealth& nvme, std::vector<Finding>& out) {
  for (unsigned bit = 0; bit < 8; ++bit) {
    if ((nvme.critical_warning & (1u << bit)) == 0) continue;
    const CriticalBitRule rule = critical_bit_rule(bit);
    out.push_back(make(rule.severity, "nvme.critical_warning." + nvme_critical_warning_name(bit), device,
                       device + " raises a critical warning: " + rule.meaning,
                       {{"critical_warning", number(nvme.critical_warning)}, {"bit", number(bit)}}));
  }
  const std::vector<Figure> spare = {{"available_spare", number(nvme.available_spare_percent)},
                                     {"spare_threshold", number(nvme.spare_threshold_percent)}};
  // The controller sets bit 0 for the same fact; one finding is enough.
  if ((nvme.critical_warning & kNvmeWarnSpare) == 0 && nvme.available_spare_percent < nvme.spare_threshold_percent) {
    out.push_back(make(Severity::critical, "nvme.spare_low", device,
                       device + " has " + number(nvme.available_spare_percent) + "% spare left, below its threshold of " +
                       number(nvme.spare_threshold_percent) + "%: replace it soon", spare));
  }
  const std::vector<Figure> used = {{"percent_used", number(nvme.percent_used)}};
  if (nvme.percent_used >= 100) {
    out.push_back(make(Severity::warning, "nvme.endurance_used_up", device,
                       device + " has used " + number(nvme.percent_used) + "% of its rated write endurance: it may "
                       "keep working, but plan to replace it", used));
  } else if (nvme.percent_used >= 90) {
    out.push_back(make(Severity::info, "nvme.endurance_nearly_used", device,
                       device + " has used " + number(nvme.percent_used) + "% of its rated write endurance", used));
  }
  if (nvme.media_errors > 0) {
    out.push_back(make(Severity::warning, "nvme.media_errors", device,
                       device + " counted " + number(nvme.media_errors) + " unrecovered media errors: data may have "
                       "been lost there; a verify of the clone will show where", {{"media_errors", number(nvme.media_errors)}}));
  }
}

}  // namespace

void assess_smart(const SmartReading& smart, std::vector<Finding>& out) {
  if (smart.ata) assess_ata(smart.device, *smart.ata, out);
  if (smart.nvme) assess_nvme(smart.device, *smart.nvme, out);
}

}  // namespace hwhealth
