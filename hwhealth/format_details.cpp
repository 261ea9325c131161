// SPDX-License-Identifier: MIT
#include "hwhealth/format_details.h"

#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <string>

namespace hwhealth {
namespace {

void appendf(std::string& out, const char* format, ...) __attribute__((format(printf, 2, 3)));
void appendf(std::string& out, const char* format, ...) {
  char line[512];
  va_list args;
  va_start(args, format);
  std::vsnprintf(line, sizeof line, format, args);
  va_end(args);
  out += line;
}

double celsius(int64_t millicelsius) { return static_cast<double>(millicelsius) / 1000.0; }

void append_ata(const SmartReading& smart, const AtaHealth& ata, std::string& out) {
  appendf(out, "ATA SMART attributes of %s (revision %u):\n", smart.device.c_str(), ata.data.revision);
  appendf(out, "  %3s %-24s %5s %5s %6s %-8s %-6s %s\n", "ID", "NAME", "VALUE", "WORST", "THRESH", "TYPE", "FAILED",
          "RAW");
  for (const AtaAttribute& a : ata.data.attributes) {
    const std::string threshold = a.threshold_known ? std::to_string(a.threshold) : "?";
    const char* failed = ata_when_failed(ata_attribute_state(a));
    appendf(out, "  %3u %-24s %5u %5u %6s %-8s %-6s %" PRIu64 "\n", a.id, ata_attribute_name(a.id), a.current,
            a.worst, threshold.c_str(), a.prefailure() ? "prefail" : "old_age",
            failed[0] == '\0' ? "-" : failed, ata_raw_value(a));
  }
}

void append_nvme(const SmartReading& smart, const NvmeHealth& n, std::string& out) {
  appendf(out, "NVMe SMART / Health log of %s:\n", smart.device.c_str());
  // A drive that reports no temperature says 0 K: no figure, not -273 °C.
  const std::string temperature =
      n.temperature_kelvin == 0 ? "not reported" : std::to_string(nvme_celsius(n.temperature_kelvin)) + " °C";
  appendf(out, "  critical warning 0x%02x, temperature %s, available spare %u%% (threshold %u%%), %u%% used\n",
          n.critical_warning, temperature.c_str(), n.available_spare_percent, n.spare_threshold_percent,
          n.percent_used);
  appendf(out, "  %" PRIu64 " power-on hours, %" PRIu64 " unsafe shutdowns, %" PRIu64 " media errors, %" PRIu64
          " error log entries\n", n.power_on_hours, n.unsafe_shutdowns, n.media_errors, n.error_log_entries);
  appendf(out, "  %" PRIu64 " data units read, %" PRIu64 " written (units of 512,000 bytes)\n", n.data_units_read,
          n.data_units_written);
  appendf(out, "  %u minutes over the warning temperature, %u over the critical one\n",
          n.warning_temperature_minutes, n.critical_temperature_minutes);
}

void append_sensor(const TemperatureSensor& t, std::string& out) {
  appendf(out, "  %-48s %6.1f °C", t.subject().c_str(), celsius(t.input_millicelsius));
  if (t.max_millicelsius) appendf(out, " (max %.1f °C)", celsius(*t.max_millicelsius));
  if (t.crit_millicelsius) appendf(out, " (crit %.1f °C)", celsius(*t.crit_millicelsius));
  if (t.max_alarm || t.crit_alarm) out += t.crit_alarm ? " CRITICAL ALARM" : " ALARM";
  out += "\n";
}

}  // namespace

void append_text_details(const Snapshot& s, std::string& out) {
  if (s.smart.ata) append_ata(s.smart, *s.smart.ata, out);
  if (s.smart.nvme) append_nvme(s.smart, *s.smart.nvme, out);
  if (s.temperatures.empty()) return;
  out += "Temperature sensors:\n";
  for (const TemperatureSensor& t : s.temperatures) append_sensor(t, out);
}

}  // namespace hwhealth
