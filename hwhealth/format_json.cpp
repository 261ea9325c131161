// SPDX-License-Identifier: MIT
// The JSON form of a Snapshot and of its changes. Field names are stable:
// programs and the original's reports depend on them (docs/HEALTH.md).
#include "hwhealth/format.h"
#include "hwhealth/json.h"

namespace hwhealth {
namespace {

template <class T>
Json optional_number(const std::optional<T>& value) {
  return value ? Json(*value) : Json(nullptr);
}

Json source_json(const Source& s) {
  return Json{{"name", s.name}, {"availability", availability_name(s.availability)}, {"reason", s.reason}};
}

Json ata_json(const AtaHealth& ata) {
  Json attributes = Json::array();
  for (const AtaAttribute& a : ata.data.attributes) {
    attributes.push_back(Json{
        {"id", a.id},
        {"name", ata_attribute_name(a.id)},
        {"value", a.current},
        {"worst", a.worst},
        {"thresh", a.threshold_known ? Json(a.threshold) : Json(nullptr)},
        {"prefailure", a.prefailure()},
        {"when_failed", ata_when_failed(ata_attribute_state(a))},
        {"raw", ata_raw_value(a)},
    });
  }
  Json status = nullptr;
  if (ata.status) status = *ata.status == AtaDriveStatus::passed ? "passed" : "failing";
  return Json{
      {"status", status},
      {"status_problem", ata.status_problem},
      {"revision", ata.data.revision},
      {"thresholds_known", ata.data.thresholds_known},
      {"thresholds_problem", ata.thresholds_problem},
      {"attributes", attributes},
  };
}

Json nvme_json(const NvmeHealth& n) {
  return Json{
      {"critical_warning", n.critical_warning},
      {"temperature_kelvin", n.temperature_kelvin},
      {"available_spare", n.available_spare_percent},
      {"available_spare_threshold", n.spare_threshold_percent},
      {"percentage_used", n.percent_used},
      {"data_units_read", n.data_units_read},
      {"data_units_written", n.data_units_written},
      {"power_on_hours", n.power_on_hours},
      {"unsafe_shutdowns", n.unsafe_shutdowns},
      {"media_errors", n.media_errors},
      {"num_err_log_entries", n.error_log_entries},
      {"warning_temp_time_minutes", n.warning_temperature_minutes},
      {"critical_temp_time_minutes", n.critical_temperature_minutes},
  };
}

Json smart_json(const SmartReading& smart) {
  Json j = {{"device", smart.device}, {"disk", smart.disk.name}, {"kind", disk_kind_name(smart.disk.kind)}};
  if (smart.ata) j["ata"] = ata_json(*smart.ata);
  if (smart.nvme) j["nvme"] = nvme_json(*smart.nvme);
  return j;
}

Json temperatures_json(const std::vector<TemperatureSensor>& sensors) {
  Json out = Json::array();
  for (const TemperatureSensor& t : sensors) {
    out.push_back(Json{
        {"subject", t.subject()},
        {"chip", t.chip},
        {"label", t.label},
        {"input_millicelsius", t.input_millicelsius},
        {"max_millicelsius", optional_number(t.max_millicelsius)},
        {"crit_millicelsius", optional_number(t.crit_millicelsius)},
        {"max_alarm", t.max_alarm},
        {"crit_alarm", t.crit_alarm},
    });
  }
  return out;
}

Json memory_controllers_json(const Snapshot& s) {
  Json out = Json::array();
  for (const MemoryController& mc : s.memory_controllers)
    out.push_back(Json{{"name", mc.name}, {"model", mc.model}, {"ce_count", mc.corrected_count},
                       {"ue_count", mc.uncorrected_count}});
  return out;
}

Json batteries_json(const Snapshot& s) {
  Json out = Json::array();
  for (const Battery& b : s.batteries) {
    out.push_back(Json{
        {"name", b.name},
        {"status", b.status},
        {"health", b.health},
        {"capacity_percent", optional_number(b.capacity_percent)},
        {"full", optional_number(b.full)},
        {"full_design", optional_number(b.full_design)},
        {"unit", b.unit},
        {"full_of_design_percent", optional_number(b.full_of_design_percent())},
        {"cycle_count", optional_number(b.cycle_count)},
    });
  }
  return out;
}

Json disk_errors_json(const std::optional<DiskErrorCounters>& d) {
  if (!d) return nullptr;
  return Json{{"disk", d->disk},
              {"ioerr_cnt", d->io_errors},
              {"iodone_cnt", d->io_done},
              {"iorequest_cnt", d->io_requests},
              {"own_smart_errors", d->own_error_completions},
              {"state", d->state}};
}

}  // namespace

Json finding_json(const Finding& f) {
  Json figures = Json::object();
  for (const Figure& figure : f.figures) figures[figure.key] = figure.value;
  return Json{{"severity", severity_name(f.severity)}, {"code", f.code},   {"subject", f.subject},
              {"sentence", f.sentence},                {"event", f.event}, {"figures", figures}};
}

std::string format_json(const Snapshot& s) {
  Json sources = Json::array();
  for (const Source& source : s.sources) sources.push_back(source_json(source));
  Json findings = Json::array();
  for (const Finding& f : s.findings) findings.push_back(finding_json(f));
  const Json j = {
      {"poll", s.poll_number},
      {"taken_unix_ms", s.taken_unix_ms},
      {"verdict", verdict_name(verdict(s))},
      {"sources", sources},
      {"smart", smart_json(s.smart)},
      {"temperatures", temperatures_json(s.temperatures)},
      {"memory_controllers", memory_controllers_json(s)},
      {"batteries", batteries_json(s)},
      {"disk_errors", disk_errors_json(s.disk_errors)},
      {"findings", findings},
  };
  return dump_json(j);
}

Json change_json(const Change& c) {
  Json j = {{"kind", change_kind_name(c.kind)}, {"severity", severity_name(c.severity)}, {"key", c.key},
            {"sentence", c.sentence}};
  if (c.kind == Change::Kind::counter_rose) {
    j["before"] = c.before;
    j["after"] = c.after;
  }
  if (c.kind == Change::Kind::finding_new || c.kind == Change::Kind::finding_cleared) j["finding"] = finding_json(c.finding);
  if (c.kind == Change::Kind::source_changed) j["source"] = source_json(c.source);
  return j;
}

std::string format_changes_json(const std::vector<Change>& changes) {
  Json out = Json::array();
  for (const Change& c : changes) out.push_back(change_json(c));
  return dump_json(out);
}

}  // namespace hwhealth
