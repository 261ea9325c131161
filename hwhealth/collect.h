// SPDX-License-Identifier: MIT
// Gathering a Snapshot: the HealthSource boundary (the machine, or a fake)
// and the Collector that polls it and judges what it read.
//
// Threads: SMART commands block for up to seconds, so a HealthSource and its
// Collector belong to one monitoring thread; the Snapshot they produce is a
// plain value to hand over to the event loop. Neither is thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hwhealth/baseline.h"
#include "hwhealth/snapshot.h"

namespace hwhealth {

// One source's answer: whether it could be read, and what it read (empty or
// default when not available).
template <class T>
struct Reading {
  Source source;
  T value{};
};

// Every OS boundary of this module. Each call reads its source now.
class HealthSource {
 public:
  virtual ~HealthSource() = default;
  virtual Reading<SmartReading> read_smart() = 0;
  virtual Reading<std::vector<TemperatureSensor>> read_temperatures() = 0;
  virtual Reading<std::vector<MemoryController>> read_memory_ecc() = 0;
  virtual Reading<std::vector<Battery>> read_batteries() = 0;
  virtual Reading<std::optional<DiskErrorCounters>> read_disk_errors() = 0;
};

// The real machine: the target disk at `target_path` (a block device, or a
// regular file, which has no SMART) and sysfs under `sysfs_root`.
//
// It opens the target read-only, without O_EXCL (so it works while the
// daemon holds the disk), only to send the SMART commands: SG_IO for a disk
// behind the SCSI layer (SATA), NVME_IOCTL_ADMIN_CMD for NVMe. It reads and
// writes no data. Devices that sysfs shows to have no drive behind them
// (loop, device-mapper, md, zram) are not sent any command.
std::unique_ptr<HealthSource> make_system_health_source(std::string target_path, std::string sysfs_root = "/sys");

// A HealthSource for tests, set field by field. Every source starts
// unsupported with the reason "not set in the fake"; the set_* helpers make
// one available with a value, fail() makes one unavailable.
class FakeHealthSource final : public HealthSource {
 public:
  FakeHealthSource();

  void set_ata(const std::string& device, AtaHealth ata);
  void set_nvme(const std::string& device, NvmeHealth nvme);
  void set_temperatures(std::vector<TemperatureSensor> sensors);
  void set_memory_ecc(std::vector<MemoryController> controllers);
  void set_batteries(std::vector<Battery> batteries);
  void set_disk_errors(DiskErrorCounters counters);
  // Makes source `name` (a kSource* name) unavailable with `reason`.
  void fail(std::string_view name, Availability availability, const std::string& reason);

  Reading<SmartReading> read_smart() override;
  Reading<std::vector<TemperatureSensor>> read_temperatures() override;
  Reading<std::vector<MemoryController>> read_memory_ecc() override;
  Reading<std::vector<Battery>> read_batteries() override;
  Reading<std::optional<DiskErrorCounters>> read_disk_errors() override;

  // Public for direct edits between polls (a counter that rises).
  Reading<SmartReading> smart;
  Reading<std::vector<TemperatureSensor>> temperatures;
  Reading<std::vector<MemoryController>> memory_ecc;
  Reading<std::vector<Battery>> batteries;
  Reading<std::optional<DiskErrorCounters>> disk_errors;
  uint64_t smart_read_count = 0;  // how many times read_smart() was called
};

// Polls a HealthSource and keeps the last poll's Baseline, so that each poll
// is judged against the one before (counters that rose).
class Collector {
 public:
  explicit Collector(std::unique_ptr<HealthSource> source);

  // Reads all five sources, numbers the snapshot (the last one's + 1, from
  // 1), stamps it with `now_unix_ms`, and fills its findings with
  // assess(current, last) and `added` (the caller's own, first: the daemon's
  // I/O errors and its lasting "the disk failed"). Its Baseline becomes the
  // new last one, so a lasting finding of the caller's is news only once.
  Snapshot poll(int64_t now_unix_ms, std::vector<Finding> added = {});

  // The last poll's Baseline, or nullptr before the first poll.
  const Baseline* last() const;

  // Makes `baseline` the last one, e.g. the one stored before a restart, so
  // that the next poll measures rises from it and continues its numbering.
  void restore(Baseline baseline);

  HealthSource& source() { return *source_; }

 private:
  std::unique_ptr<HealthSource> source_;
  std::optional<Baseline> last_;
};

}  // namespace hwhealth
