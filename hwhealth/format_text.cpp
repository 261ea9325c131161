// SPDX-License-Identifier: MIT
// The text form of a Snapshot, for `clonectl health`.
#include <cstdio>
#include <ctime>

#include "hwhealth/format.h"
#include "hwhealth/format_details.h"

namespace hwhealth {
namespace {

std::string number(uint64_t value) { return std::to_string(value); }

std::string celsius(int64_t millicelsius) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f °C", static_cast<double>(millicelsius) / 1000.0);
  return text;
}

std::string upper(std::string text) {
  for (char& c : text) c = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : (c == '_' ? ' ' : c);
  return text;
}

std::string plural(size_t count, const std::string& word) {
  return std::to_string(count) + " " + word + (count == 1 ? "" : "s");
}

std::string local_time(int64_t unix_ms) {
  const auto seconds = static_cast<time_t>(unix_ms / 1000);
  struct tm parts {};
  char text[32] = "";
  if (localtime_r(&seconds, &parts) != nullptr) std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &parts);
  return text;
}

std::string verdict_line(const Snapshot& s) {
  size_t critical = 0, warning = 0;
  for (const Finding& f : s.findings) {
    critical += f.severity == Severity::critical ? 1 : 0;
    warning += f.severity == Severity::warning ? 1 : 0;
  }
  const Verdict v = verdict(s);
  std::string line = "Clone hardware health: " + upper(verdict_name(v));
  if (v == Verdict::critical) line += " (" + plural(critical, "critical finding") + ", " + plural(warning, "warning") + ")";
  if (v == Verdict::warning) line += " (" + plural(warning, "warning") + ")";
  if (v == Verdict::ok) line += " (no problem found)";
  if (v == Verdict::unknown) line += " (nothing wrong found, but the disk's SMART could not be read)";
  line += ", poll " + number(s.poll_number);
  if (s.taken_unix_ms > 0) line += " at " + local_time(s.taken_unix_ms);
  return line;
}

std::string ata_summary(const SmartReading& smart, const AtaHealth& ata) {
  std::string text = !ata.status ? "drive status unknown"
                     : *ata.status == AtaDriveStatus::passed ? "the drive says PASSED"
                                                             : "the drive says FAILING";
  text += ", " + plural(ata.data.attributes.size(), "attribute");
  const AtaAttribute* temperature = find_ata_attribute(ata.data, kAtaTemperature);
  if (temperature) text += ", " + number(ata_raw_value(*temperature)) + " °C";
  return smart.device + " (" + smart.disk.name + ", SATA): " + text;
}

std::string nvme_summary(const SmartReading& smart, const NvmeHealth& n) {
  std::string text = n.critical_warning == 0 ? "no critical warning" : "CRITICAL WARNING " + number(n.critical_warning);
  text += ", spare " + number(n.available_spare_percent) + "% (threshold " + number(n.spare_threshold_percent) +
          "%), " + number(n.percent_used) + "% used, " + number(n.media_errors) + " media errors";
  if (n.temperature_kelvin != 0) text += ", " + std::to_string(nvme_celsius(n.temperature_kelvin)) + " °C";
  return smart.device + " (" + smart.disk.name + ", NVMe): " + text;
}

std::string available_summary(const Snapshot& s, const Source& source) {
  if (source.name == kSourceSmart && s.smart.ata) return ata_summary(s.smart, *s.smart.ata);
  if (source.name == kSourceSmart && s.smart.nvme) return nvme_summary(s.smart, *s.smart.nvme);
  if (source.name == kSourceTemperatures && !s.temperatures.empty()) {
    const TemperatureSensor* hottest = &s.temperatures.front();
    for (const TemperatureSensor& t : s.temperatures)
      if (t.input_millicelsius > hottest->input_millicelsius) hottest = &t;
    return plural(s.temperatures.size(), "sensor") + ", hottest " + celsius(hottest->input_millicelsius) + " at " +
           hottest->subject();
  }
  std::string text;
  auto add = [&text](const std::string& part) { text += (text.empty() ? "" : "; ") + part; };
  if (source.name == kSourceMemoryEcc) {
    for (const MemoryController& mc : s.memory_controllers)
      add(mc.name + ": " + number(mc.corrected_count) + " corrected, " + number(mc.uncorrected_count) + " uncorrected");
  }
  if (source.name == kSourceBattery) {
    for (const Battery& b : s.batteries) {
      std::string part = b.name + ":";
      if (b.capacity_percent) part += " " + std::to_string(*b.capacity_percent) + "%,";
      part += " " + (b.status.empty() ? std::string("status unknown") : b.status);
      if (b.full_of_design_percent()) part += ", holds " + number(*b.full_of_design_percent()) + "% of its design capacity";
      if (b.cycle_count) part += ", " + number(*b.cycle_count) + " cycles";
      if (!b.health.empty()) part += ", health " + b.health;
      add(part);
    }
  }
  if (source.name == kSourceDiskErrors && s.disk_errors) {
    const DiskErrorCounters& d = *s.disk_errors;
    add(d.disk + ": " + plural(d.io_errors, "failed command") + " since the disk was found (" +
        number(d.io_errors - d.foreign_io_errors()) + " of them SMART queries of ours)" +
        (d.state.empty() ? "" : ", state " + d.state));
  }
  return text.empty() ? "available" : text;
}

}  // namespace

std::string format_text(const Snapshot& s, const TextOptions& options) {
  std::string out = verdict_line(s) + "\n";
  for (const Source& source : s.sources) {
    char name[32];
    std::snprintf(name, sizeof name, "  %-14s", source.name.c_str());
    out += name;
    if (source.supported()) out += available_summary(s, source) + "\n";
    else out += upper(availability_name(source.availability)) + ": " + source.reason + "\n";
  }
  if (options.details) append_text_details(s, out);
  if (s.findings.empty()) return out + "Findings: none\n";
  out += "Findings:\n";
  for (const Finding& f : s.findings)
    out += "  " + upper(severity_name(f.severity)) + " " + f.code + ": " + f.sentence + "\n";
  return out;
}

std::string format_change_text(const Change& change) {
  return upper(severity_name(change.severity)) + " " + change.key + ": " + change.sentence;
}

}  // namespace hwhealth
