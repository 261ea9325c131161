// SPDX-License-Identifier: MIT
// The JSON form of a Snapshot and of its changes. Field names are stable:
// programs and the original's reports depend on them (docs/HEALTH.md).
#include "hwhealth/format.h"
#include "hwhealth/json_writer.h"

#include <type_traits>

namespace hwhealth {
namespace {

template <class T>
void optional_number(JsonWriter& w, std::string_view name, const std::optional<T>& value) {
  w.key(name);
  if (!value) return w.null();
  if constexpr (std::is_signed_v<T>) w.number(static_cast<int64_t>(*value));
  else w.number(static_cast<uint64_t>(*value));
}

void write_source(JsonWriter& w, const Source& s) {
  w.begin_object();
  w.field("name", s.name);
  w.field("availability", availability_name(s.availability));
  w.field("reason", s.reason);
  w.end_object();
}

void write_ata(JsonWriter& w, const AtaHealth& ata) {
  w.key("ata").begin_object();
  w.key("status");
  if (ata.status) w.string(*ata.status == AtaDriveStatus::passed ? "passed" : "failing");
  else w.null();
  w.field("status_problem", ata.status_problem);
  w.field("revision", static_cast<uint64_t>(ata.data.revision));
  w.field("thresholds_known", ata.data.thresholds_known);
  w.field("thresholds_problem", ata.thresholds_problem);
  w.key("attributes").begin_array();
  for (const AtaAttribute& a : ata.data.attributes) {
    w.begin_object();
    w.field("id", static_cast<uint64_t>(a.id));
    w.field("name", ata_attribute_name(a.id));
    w.field("value", static_cast<uint64_t>(a.current));
    w.field("worst", static_cast<uint64_t>(a.worst));
    optional_number(w, "thresh", a.threshold_known ? std::optional<uint64_t>(a.threshold) : std::nullopt);
    w.field("prefailure", a.prefailure());
    w.field("when_failed", ata_when_failed(ata_attribute_state(a)));
    w.field("raw", ata_raw_value(a));
    w.end_object();
  }
  w.end_array();
  w.end_object();
}

void write_nvme(JsonWriter& w, const NvmeHealth& n) {
  w.key("nvme").begin_object();
  w.field("critical_warning", static_cast<uint64_t>(n.critical_warning));
  w.field("temperature_kelvin", static_cast<uint64_t>(n.temperature_kelvin));
  w.field("available_spare", static_cast<uint64_t>(n.available_spare_percent));
  w.field("available_spare_threshold", static_cast<uint64_t>(n.spare_threshold_percent));
  w.field("percentage_used", static_cast<uint64_t>(n.percent_used));
  w.field("data_units_read", n.data_units_read);
  w.field("data_units_written", n.data_units_written);
  w.field("power_on_hours", n.power_on_hours);
  w.field("unsafe_shutdowns", n.unsafe_shutdowns);
  w.field("media_errors", n.media_errors);
  w.field("num_err_log_entries", n.error_log_entries);
  w.field("warning_temp_time_minutes", static_cast<uint64_t>(n.warning_temperature_minutes));
  w.field("critical_temp_time_minutes", static_cast<uint64_t>(n.critical_temperature_minutes));
  w.end_object();
}

void write_smart(JsonWriter& w, const SmartReading& smart) {
  w.key("smart").begin_object();
  w.field("device", smart.device);
  w.field("disk", smart.disk.name);
  w.field("kind", disk_kind_name(smart.disk.kind));
  if (smart.ata) write_ata(w, *smart.ata);
  if (smart.nvme) write_nvme(w, *smart.nvme);
  w.end_object();
}

void write_temperatures(JsonWriter& w, const std::vector<TemperatureSensor>& sensors) {
  w.key("temperatures").begin_array();
  for (const TemperatureSensor& t : sensors) {
    w.begin_object();
    w.field("subject", t.subject());
    w.field("chip", t.chip);
    w.field("label", t.label);
    w.field("input_millicelsius", t.input_millicelsius);
    optional_number(w, "max_millicelsius", t.max_millicelsius);
    optional_number(w, "crit_millicelsius", t.crit_millicelsius);
    w.field("max_alarm", t.max_alarm);
    w.field("crit_alarm", t.crit_alarm);
    w.end_object();
  }
  w.end_array();
}

void write_machine(JsonWriter& w, const Snapshot& s) {
  w.key("memory_controllers").begin_array();
  for (const MemoryController& mc : s.memory_controllers) {
    w.begin_object();
    w.field("name", mc.name);
    w.field("model", mc.model);
    w.field("ce_count", mc.corrected_count);
    w.field("ue_count", mc.uncorrected_count);
    w.end_object();
  }
  w.end_array();
  w.key("batteries").begin_array();
  for (const Battery& b : s.batteries) {
    w.begin_object();
    w.field("name", b.name);
    w.field("status", b.status);
    w.field("health", b.health);
    optional_number(w, "capacity_percent", b.capacity_percent);
    optional_number(w, "full", b.full);
    optional_number(w, "full_design", b.full_design);
    w.field("unit", b.unit);
    optional_number(w, "full_of_design_percent", b.full_of_design_percent());
    optional_number(w, "cycle_count", b.cycle_count);
    w.end_object();
  }
  w.end_array();
}

void write_disk_errors(JsonWriter& w, const std::optional<DiskErrorCounters>& d) {
  w.key("disk_errors");
  if (!d) return w.null();
  w.begin_object();
  w.field("disk", d->disk);
  w.field("ioerr_cnt", d->io_errors);
  w.field("iodone_cnt", d->io_done);
  w.field("iorequest_cnt", d->io_requests);
  w.field("own_smart_errors", d->own_error_completions);
  w.field("state", d->state);
  w.end_object();
}


}  // namespace

void write_finding(JsonWriter& w, const Finding& f) {
  w.begin_object();
  w.field("severity", severity_name(f.severity));
  w.field("code", f.code);
  w.field("subject", f.subject);
  w.field("sentence", f.sentence);
  w.field("event", f.event);
  w.key("figures").begin_object();
  for (const Figure& figure : f.figures) w.field(figure.key, figure.value);
  w.end_object();
  w.end_object();
}

std::string format_json(const Snapshot& s) {
  JsonWriter w;
  w.begin_object();
  w.field("poll", s.poll_number);
  w.field("taken_unix_ms", s.taken_unix_ms);
  w.field("verdict", verdict_name(verdict(s)));
  w.key("sources").begin_array();
  for (const Source& source : s.sources) write_source(w, source);
  w.end_array();
  write_smart(w, s.smart);
  write_temperatures(w, s.temperatures);
  write_machine(w, s);
  write_disk_errors(w, s.disk_errors);
  w.key("findings").begin_array();
  for (const Finding& f : s.findings) write_finding(w, f);
  w.end_array();
  w.end_object();
  return w.text();
}

void write_change(JsonWriter& w, const Change& c) {
  w.begin_object();
  w.field("kind", change_kind_name(c.kind));
  w.field("severity", severity_name(c.severity));
  w.field("key", c.key);
  w.field("sentence", c.sentence);
  if (c.kind == Change::Kind::counter_rose) {
    w.field("before", c.before);
    w.field("after", c.after);
  }
  if (c.kind == Change::Kind::finding_new || c.kind == Change::Kind::finding_cleared) write_finding(w.key("finding"), c.finding);
  if (c.kind == Change::Kind::source_changed) write_source(w.key("source"), c.source);
  w.end_object();
}

std::string format_changes_json(const std::vector<Change>& changes) {
  JsonWriter w;
  w.begin_array();
  for (const Change& c : changes) write_change(w, c);
  w.end_array();
  return w.text();
}

}  // namespace hwhealth
