// SPDX-License-Identifier: MIT
// The real HealthSource: the target's SMART through ioctls, the rest from sysfs.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "hwhealth/ata_sgio.h"
#include "hwhealth/collect.h"

namespace hwhealth {
namespace {

template <class T>
Reading<T> from_result(std::string_view name, base::Result<T> result) {
  if (!result) return Reading<T>{source_from_status(name, result.status()), T{}};
  return Reading<T>{available_source(name), std::move(result.value())};
}

// Distinct per instance, so a restarted daemon's own-error count is never
// compared with its predecessor's (DiskErrorCounters::own_count_id).
uint64_t new_instance_id() {
  static uint64_t counter = 0;
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(now).count()) + ++counter;
}

class SystemHealthSource final : public HealthSource {
 public:
  SystemHealthSource(std::string target_path, std::string sysfs_root)
      : target_path_(std::move(target_path)), sysfs_root_(std::move(sysfs_root)), instance_id_(new_instance_id()) {}

  Reading<SmartReading> read_smart() override {
    SmartReading smart;
    smart.device = target_path_;
    base::Status status = read_smart_into(smart);
    if (!status) return {source_from_status(kSourceSmart, status), SmartReading{target_path_, smart.disk, {}, {}}};
    return {available_source(kSourceSmart), std::move(smart)};
  }
  Reading<std::vector<TemperatureSensor>> read_temperatures() override {
    return from_result(kSourceTemperatures, hwhealth::read_temperatures(sysfs_root_));
  }
  Reading<std::vector<MemoryController>> read_memory_ecc() override {
    return from_result(kSourceMemoryEcc, hwhealth::read_memory_ecc(sysfs_root_));
  }
  Reading<std::vector<Battery>> read_batteries() override {
    return from_result(kSourceBattery, hwhealth::read_batteries(sysfs_root_));
  }
  Reading<std::optional<DiskErrorCounters>> read_disk_errors() override;

 private:
  base::Result<DiskInfo> target_disk() const;
  base::Status read_smart_into(SmartReading& smart);

  std::string target_path_;
  std::string sysfs_root_;
  uint64_t instance_id_;
  uint64_t own_error_completions_ = 0;
};

// The disk behind the target, or why it cannot have SMART or error counters.
base::Result<DiskInfo> SystemHealthSource::target_disk() const {
  struct stat st {};
  if (::stat(target_path_.c_str(), &st) != 0)
    return base::Status::from_errno(errno, "cannot find the target " + target_path_);
  if (S_ISREG(st.st_mode)) {
    return base::Status::error(EOPNOTSUPP, "the target " + target_path_ +
                                               " is a file, not a disk: it has no SMART or disk error counters");
  }
  if (!S_ISBLK(st.st_mode))
    return base::Status::error(EOPNOTSUPP, "the target " + target_path_ + " is not a block device: it has no SMART");
  return describe_disk(sysfs_root_, st.st_rdev);
}

base::Status SystemHealthSource::read_smart_into(SmartReading& smart) {
  base::Result<DiskInfo> disk = target_disk();
  if (!disk) return disk.status();
  smart.disk = *disk;
  const std::string name = disk->name.empty() ? target_path_ : target_path_ + " (" + disk->name + ")";
  if (disk->kind == DiskKind::virtual_disk) {
    return base::Status::error(EOPNOTSUPP, "SMART is unsupported: " + name +
                                               " is a virtual block device (loop, device-mapper, md, zram) "
                                               "with no drive behind it to ask");
  }
  if (disk->kind == DiskKind::other) {
    return base::Status::error(EOPNOTSUPP, "SMART is unsupported: " + name + " is a " + disk->subsystem +
                                               " device; only SATA and NVMe disks are asked for SMART");
  }
  const int fd = ::open(target_path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == EPERM || err == EACCES) {
      return base::Status::error(err, "no permission to open " + name + " to read SMART (" + std::strerror(err) +
                                          "): run cloned as root, and allow the device in the unit's DeviceAllow=");
    }
    return base::Status::from_errno(err, "cannot open " + name + " to read SMART");
  }
  if (disk->kind == DiskKind::nvme) {
    base::Result<NvmeHealth> nvme = read_nvme_smart(fd, name);
    ::close(fd);
    if (!nvme) return nvme.status();
    smart.nvme = *nvme;
    return base::Status::ok();
  }
  // ata, or unknown (no sysfs): SG_IO answers for itself, classified.
  base::Result<AtaHealth> ata = read_ata_smart(fd, name, own_error_completions_);
  ::close(fd);
  if (!ata) return ata.status();
  smart.ata = std::move(*ata);
  return base::Status::ok();
}

Reading<std::optional<DiskErrorCounters>> SystemHealthSource::read_disk_errors() {
  base::Result<DiskInfo> disk = target_disk();
  if (!disk) return {source_from_status(kSourceDiskErrors, disk.status()), std::nullopt};
  if (disk->name.empty()) {
    return {source_from_status(kSourceDiskErrors,
                               base::Status::error(EOPNOTSUPP, "sysfs does not know the disk of " + target_path_)),
            std::nullopt};
  }
  base::Result<DiskErrorCounters> counters = hwhealth::read_disk_errors(sysfs_root_, disk->name);
  if (!counters) return {source_from_status(kSourceDiskErrors, counters.status()), std::nullopt};
  counters->own_error_completions = own_error_completions_;
  counters->own_count_id = instance_id_;
  return {available_source(kSourceDiskErrors), std::move(*counters)};
}

}  // namespace

std::unique_ptr<HealthSource> make_system_health_source(std::string target_path, std::string sysfs_root) {
  return std::make_unique<SystemHealthSource>(std::move(target_path), std::move(sysfs_root));
}

}  // namespace hwhealth
