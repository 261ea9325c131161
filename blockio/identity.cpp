// SPDX-License-Identifier: MIT
// Disk identity: probing it and comparing it with the one recorded at pairing
// (invariant 1, "never the wrong disk").
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <cerrno>
#include <charconv>
#include <climits>
#include <vector>

#include "base/units.h"
#include "blockio/disk.h"
#include "blockio/file_device.h"
#include "blockio/sysfs.h"
#include "blockio/unique_fd.h"

namespace blockio {
namespace {

// A sysfs number: decimal digits only, the whole text.
bool parse_decimal(const std::string& text, uint64_t& out) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
  return !text.empty() && error == std::errc() && end == text.data() + text.size();
}

base::Result<std::string> canonical_path(const std::string& path) {
  char resolved[PATH_MAX];
  if (::realpath(path.c_str(), resolved) == nullptr)
    return base::Status::from_errno(errno, "cannot resolve the path " + path);
  return std::string(resolved);
}

// The first non-empty attribute among `names` under `dir`.
std::string first_attribute(const std::string& dir, const std::vector<const char*>& names) {
  for (const char* name : names) {
    std::string value = read_attribute(dir + "/" + name);
    if (!value.empty()) return value;
  }
  return "";
}

// Serial, WWN and model live on the whole disk (SCSI/ATA under device/, NVMe on
// the controller under device/, virtio on the disk itself). Loop devices have none.
void read_sysfs_identity(dev_t device, DiskIdentity& identity) {
  const std::string dir = sysfs_disk_dir_of(device);
  if (dir.empty()) return;
  identity.serial = first_attribute(dir, {"device/serial", "serial"});
  if (identity.serial.empty()) identity.serial = read_vpd_serial(dir + "/device/vpd_pg80");
  identity.wwn = first_attribute(dir, {"wwid", "device/wwid"});
  identity.model = first_attribute(dir, {"device/model", "model"});
  // A partition inherits its disk's serial: its number on the disk tells two
  // partitions of one size apart, and its start a table edited since.
  const std::string own = sysfs_dir_of(device);
  uint64_t number = 0;
  if (parse_decimal(read_attribute(own + "/partition"), number) && number <= UINT32_MAX)
    identity.partition = static_cast<uint32_t>(number);
  uint64_t start_sectors = 0;  // sysfs counts 512-byte sectors whatever the logical block
  if (identity.partition != 0 && parse_decimal(read_attribute(own + "/start"), start_sectors) &&
      start_sectors <= UINT64_MAX / 512)
    identity.partition_start_bytes = start_sectors * 512;
}

base::Status probe_block_geometry(const std::string& path, DiskIdentity& identity) {
  // Read-only and without O_EXCL: probing must work while the daemon holds the disk.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return base::Status::from_errno(errno, "cannot open " + path + " to read its identity");
  int logical_block_bytes = 0;
  if (::ioctl(fd.get(), BLKGETSIZE64, &identity.size_bytes) != 0 ||
      ::ioctl(fd.get(), BLKSSZGET, &logical_block_bytes) != 0 || logical_block_bytes <= 0) {
    return base::Status::from_errno(errno, "cannot read the size of " + path);
  }
  identity.logical_block_bytes = static_cast<uint32_t>(logical_block_bytes);
  return base::Status::ok();
}

std::string mismatch_text(const char* what, const std::string& recorded, const std::string& found) {
  return std::string("the ") + what + " differs (" + (recorded.empty() ? "none" : recorded) + " recorded, " +
         (found.empty() ? "none" : found) + " found)";
}

// A recorded path as the probe saw it: symlinks resolved (a by-id name, a
// directory reached through a link), so that the same file or node matches.
bool same_path(const std::string& recorded, const std::string& probed) {
  if (recorded == probed) return true;
  base::Result<std::string> resolved = canonical_path(recorded);
  return resolved && *resolved == probed;
}

// The first difference that makes `actual` another disk than `expected`; "" if none.
std::string first_difference(const DiskIdentity& expected, const DiskIdentity& actual) {
  if (expected.kind != actual.kind) return mismatch_text("kind", expected.kind, actual.kind);
  if (expected.size_bytes != actual.size_bytes) {
    return mismatch_text("size", std::to_string(expected.size_bytes) + " bytes",
                         std::to_string(actual.size_bytes) + " bytes");
  }
  if (expected.logical_block_bytes != 0 && actual.logical_block_bytes > expected.logical_block_bytes) {
    return mismatch_text("logical block", std::to_string(expected.logical_block_bytes) + " bytes",
                         std::to_string(actual.logical_block_bytes) + " bytes") +
           ": the original aligns its writes to the recorded one";
  }
  if (expected.kind == "file") {
    return same_path(expected.path, actual.path) ? "" : mismatch_text("path", expected.path, actual.path);
  }
  if (!expected.serial.empty() && expected.serial != actual.serial)
    return mismatch_text("serial", expected.serial, actual.serial);
  if (!expected.wwn.empty() && expected.wwn != actual.wwn) return mismatch_text("WWN", expected.wwn, actual.wwn);
  if (!expected.model.empty() && expected.model != actual.model)
    return mismatch_text("model", expected.model, actual.model);
  if (expected.partition != 0 && expected.partition != actual.partition) {
    return mismatch_text("partition number", std::to_string(expected.partition),
                         actual.partition == 0 ? "a whole disk" : std::to_string(actual.partition));
  }
  if (expected.partition != 0 && expected.partition_start_bytes != 0 &&
      expected.partition_start_bytes != actual.partition_start_bytes) {
    return mismatch_text("partition's start", "byte " + std::to_string(expected.partition_start_bytes),
                         "byte " + std::to_string(actual.partition_start_bytes)) +
           ": its disk's partition table was edited since pairing";
  }
  // Without a serial or WWN (loop devices, some virtual disks) nothing stable
  // tells two disks of one size apart, so the path has to match as well.
  if (expected.serial.empty() && expected.wwn.empty() && !same_path(expected.path, actual.path))
    return mismatch_text("path", expected.path, actual.path) + " and the disk has no serial or WWN to go by";
  return "";
}

}  // namespace

std::string DiskIdentity::describe() const {
  std::string details;
  auto add = [&details](const std::string& part) { details += (details.empty() ? "" : ", ") + part; };
  if (!model.empty()) add(model);
  if (!serial.empty()) add("serial " + serial);
  if (serial.empty() && !wwn.empty()) add("wwn " + wwn);
  if (partition != 0) add("partition " + std::to_string(partition));
  add(base::format_bytes(size_bytes));
  return kind + " " + path + " (" + details + ")";
}

base::Result<DiskIdentity> probe_identity(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return base::Status::from_errno(errno, "cannot probe the target " + path);
  base::Result<std::string> canonical = canonical_path(path);
  if (!canonical) return canonical.status();
  DiskIdentity identity;
  identity.path = *canonical;
  if (S_ISREG(st.st_mode)) {
    identity.kind = "file";
    identity.size_bytes = static_cast<uint64_t>(st.st_size);
    identity.logical_block_bytes = file_logical_block_bytes(identity.path);
    return identity;
  }
  if (!S_ISBLK(st.st_mode)) {
    return base::Status::error(ENOTBLK, "the target " + path +
                                            " is neither a block device nor a regular file; "
                                            "point [target] path at the clone's internal disk");
  }
  identity.kind = "block";
  BASE_TRY(probe_block_geometry(identity.path, identity));
  read_sysfs_identity(st.st_rdev, identity);
  return identity;
}

base::Status check_identity(const DiskIdentity& expected, const DiskIdentity& actual) {
  const std::string difference = first_difference(expected, actual);
  if (difference.empty()) return base::Status::ok();
  return base::Status::error(ENODEV, "the target " + actual.describe() + " is not the paired disk " +
                                         expected.describe() + ": " + difference +
                                         ". Re-pair with clonectl pair, or point [target] path at the paired disk.");
}

}  // namespace blockio
