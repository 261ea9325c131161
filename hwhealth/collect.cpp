// SPDX-License-Identifier: MIT
#include "hwhealth/collect.h"

#include <algorithm>
#include <cassert>

#include "hwhealth/assess.h"

namespace hwhealth {

Collector::Collector(std::unique_ptr<HealthSource> source) : source_(std::move(source)) { assert(source_); }

Snapshot Collector::poll(int64_t now_unix_ms, std::vector<Finding> added) {
  Snapshot snapshot;
  snapshot.poll_number = last_ ? last_->poll_number + 1 : 1;
  snapshot.taken_unix_ms = now_unix_ms;

  // Disk error counters before SMART: our own SMART commands of this poll
  // then count at the next one, where own_error_completions accounts for them.
  Reading<std::optional<DiskErrorCounters>> disk_errors = source_->read_disk_errors();
  Reading<SmartReading> smart = source_->read_smart();
  Reading<std::vector<TemperatureSensor>> temperatures = source_->read_temperatures();
  Reading<std::vector<MemoryController>> memory = source_->read_memory_ecc();
  Reading<std::vector<Battery>> batteries = source_->read_batteries();

  snapshot.sources = {smart.source, temperatures.source, memory.source, batteries.source, disk_errors.source};
  snapshot.smart = std::move(smart.value);
  snapshot.temperatures = std::move(temperatures.value);
  snapshot.memory_controllers = std::move(memory.value);
  snapshot.batteries = std::move(batteries.value);
  snapshot.disk_errors = std::move(disk_errors.value);
  snapshot.findings = assess(snapshot, last_ ? &*last_ : nullptr);
  if (last_) {
    for (Finding& f : carried_findings(*last_, snapshot)) snapshot.findings.push_back(std::move(f));
  }
  // The caller's first among equals; the most severe first, as assess() sorts
  // (a bound cuts the least severe).
  snapshot.findings.insert(snapshot.findings.begin(), std::make_move_iterator(added.begin()),
                           std::make_move_iterator(added.end()));
  std::stable_sort(snapshot.findings.begin(), snapshot.findings.end(),
                   [](const Finding& a, const Finding& b) { return a.severity > b.severity; });
  if (snapshot.findings.size() > kFindingsMax) snapshot.findings.resize(kFindingsMax);
  last_ = baseline_of(snapshot, last_ ? &*last_ : nullptr);
  return snapshot;
}

const Baseline* Collector::last() const { return last_ ? &*last_ : nullptr; }

void Collector::restore(Baseline baseline) { last_ = std::move(baseline); }

FakeHealthSource::FakeHealthSource() {
  const std::string reason = "not set in the fake";
  smart.source = Source{std::string(kSourceSmart), Availability::unsupported, reason};
  temperatures.source = Source{std::string(kSourceTemperatures), Availability::unsupported, reason};
  memory_ecc.source = Source{std::string(kSourceMemoryEcc), Availability::unsupported, reason};
  batteries.source = Source{std::string(kSourceBattery), Availability::unsupported, reason};
  disk_errors.source = Source{std::string(kSourceDiskErrors), Availability::unsupported, reason};
}

void FakeHealthSource::set_ata(const std::string& device, AtaHealth ata) {
  smart.source = available_source(kSourceSmart);
  smart.value.device = device;
  smart.value.disk = DiskInfo{"sda", DiskKind::ata, "scsi"};
  smart.value.ata = std::move(ata);
  smart.value.nvme.reset();
}

void FakeHealthSource::set_nvme(const std::string& device, NvmeHealth nvme) {
  smart.source = available_source(kSourceSmart);
  smart.value.device = device;
  smart.value.disk = DiskInfo{"nvme0n1", DiskKind::nvme, "nvme"};
  smart.value.nvme = nvme;
  smart.value.ata.reset();
}

void FakeHealthSource::set_temperatures(std::vector<TemperatureSensor> sensors) {
  temperatures = {available_source(kSourceTemperatures), std::move(sensors)};
}

void FakeHealthSource::set_memory_ecc(std::vector<MemoryController> controllers) {
  memory_ecc = {available_source(kSourceMemoryEcc), std::move(controllers)};
}

void FakeHealthSource::set_batteries(std::vector<Battery> list) {
  batteries = {available_source(kSourceBattery), std::move(list)};
}

void FakeHealthSource::set_disk_errors(DiskErrorCounters counters) {
  disk_errors = {available_source(kSourceDiskErrors), std::move(counters)};
}

void FakeHealthSource::fail(std::string_view name, Availability availability, const std::string& reason) {
  assert(availability != Availability::available);
  const Source source{std::string(name), availability, reason};
  if (name == kSourceSmart) smart = {source, SmartReading{smart.value.device, {}, {}, {}}};
  else if (name == kSourceTemperatures) temperatures = {source, {}};
  else if (name == kSourceMemoryEcc) memory_ecc = {source, {}};
  else if (name == kSourceBattery) batteries = {source, {}};
  else if (name == kSourceDiskErrors) disk_errors = {source, std::nullopt};
  else assert(false && "unknown source name");
}

Reading<SmartReading> FakeHealthSource::read_smart() {
  ++smart_read_count;
  return smart;
}
Reading<std::vector<TemperatureSensor>> FakeHealthSource::read_temperatures() { return temperatures; }
Reading<std::vector<MemoryController>> FakeHealthSource::read_memory_ecc() { return memory_ecc; }
Reading<std::vector<Battery>> FakeHealthSource::read_batteries() { return batteries; }
Reading<std::optional<DiskErrorCounters>> FakeHealthSource::read_disk_errors() { return disk_errors; }

}  // namespace hwhealth
