// SPDX-License-Identifier: MIT
// The target disk in sysfs: what kind of device it is, and its error counters.
#include <sys/sysmacros.h>

#include <cerrno>
#include <filesystem>

#include "hwhealth/sysfs.h"
#include "hwhealth/sysfs_files.h"

namespace hwhealth {
namespace {

bool starts_with_any(const std::string& name, std::initializer_list<std::string_view> prefixes) {
  for (std::string_view prefix : prefixes) {
    if (std::string_view(name).starts_with(prefix)) return true;
  }
  return false;
}

std::optional<uint64_t> read_hex(const std::string& path) {
  const std::optional<int64_t> value = sysfs_files::read_integer(path, 16);
  if (!value || *value < 0) return std::nullopt;
  return static_cast<uint64_t>(*value);
}

DiskKind kind_of(const std::string& name, const std::string& subsystem, bool has_device) {
  if (name.starts_with("nvme") || subsystem.starts_with("nvme")) return DiskKind::nvme;
  if (subsystem == "scsi") return DiskKind::ata;
  if (!has_device) return DiskKind::virtual_disk;
  return DiskKind::other;
}

}  // namespace

uint64_t DiskErrorCounters::foreign_io_errors() const {
  return io_errors > own_error_completions ? io_errors - own_error_completions : 0;
}

const char* disk_kind_name(DiskKind kind) {
  switch (kind) {
    case DiskKind::unknown: return "unknown";
    case DiskKind::ata: return "ata";
    case DiskKind::nvme: return "nvme";
    case DiskKind::virtual_disk: return "virtual";
    case DiskKind::other: return "other";
  }
  return "unknown";
}

base::Result<DiskErrorCounters> read_disk_errors(const std::string& sysfs_root, const std::string& disk_name) {
  const std::string device = sysfs_root + "/block/" + disk_name + "/device";
  std::string text;
  const int err = sysfs_files::read_attribute(device + "/ioerr_cnt", text);
  if (err == EACCES || err == EPERM) return base::Status::error(EACCES, "no permission to read " + device + "/ioerr_cnt");
  const std::optional<int64_t> io_errors = sysfs_files::parse_integer(text, 16);
  if (err != 0 || !io_errors || *io_errors < 0) {
    const std::string why = starts_with_any(disk_name, {"nvme"})
                                ? "NVMe disks count media errors in SMART instead"
                                : "only SCSI, SATA and USB disks have them";
    return base::Status::error(EOPNOTSUPP, "n/a: " + disk_name + " has no I/O error counters in sysfs (" + why + ")");
  }
  DiskErrorCounters counters;
  counters.disk = disk_name;
  counters.io_errors = static_cast<uint64_t>(*io_errors);
  counters.io_done = read_hex(device + "/iodone_cnt").value_or(0);
  counters.io_requests = read_hex(device + "/iorequest_cnt").value_or(0);
  counters.state = sysfs_files::attribute_or_empty(device + "/state");
  return counters;
}

DiskInfo describe_disk(const std::string& sysfs_root, dev_t device) {
  const std::string link =
      sysfs_root + "/dev/block/" + std::to_string(major(device)) + ":" + std::to_string(minor(device));
  std::error_code error;
  std::filesystem::path dir = std::filesystem::canonical(link, error);
  if (error) return DiskInfo{};
  // A partition's directory sits inside its disk's directory.
  if (sysfs_files::exists(dir.string() + "/partition")) dir = dir.parent_path();
  DiskInfo info;
  info.name = dir.filename().string();
  const bool has_device = sysfs_files::exists(dir.string() + "/device");
  info.subsystem = has_device ? sysfs_files::resolved_name(dir.string() + "/device/subsystem") : "";
  info.kind = kind_of(info.name, info.subsystem, has_device);
  return info;
}

}  // namespace hwhealth
