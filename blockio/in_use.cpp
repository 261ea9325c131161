// SPDX-License-Identifier: MIT
// Refusing a target that is in use: the disk we run from, or a mounted disk
// (invariant 1). O_EXCL at open catches swap, LVM and RAID holders as well.
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <vector>

#include "blockio/disk.h"
#include "blockio/mountinfo.h"
#include "blockio/sysfs.h"

namespace blockio {
namespace {

const char* const kWhatToDo = "point [target] path at the clone's internal disk";

// Whole disks that an entry names: its MAJ:MIN, and its source when that is
// a device node (the two differ for btrfs, whose MAJ:MIN is anonymous).
std::vector<dev_t> disks_of(const MountEntry& entry) {
  std::vector<dev_t> disks;
  if (major(entry.device) != 0) disks.push_back(whole_disk_of(entry.device));
  struct stat st {};
  if (entry.source.rfind("/dev/", 0) == 0 && ::stat(entry.source.c_str(), &st) == 0 && S_ISBLK(st.st_mode))
    disks.push_back(whole_disk_of(st.st_rdev));
  return disks;
}

base::Status root_disk_error(const std::string& path) {
  return base::Status::error(EBUSY, path + " is the disk that holds the running root filesystem (/); cloned "
                                           "never writes to the disk it runs from, so " + kWhatToDo);
}

base::Status check_not_root_disk(const std::string& path, dev_t disk) {
  struct stat root {};
  if (::stat("/", &root) != 0) return base::Status::from_errno(errno, "cannot stat / to check " + path);
  if (whole_disk_of(root.st_dev) == disk) return root_disk_error(path);
  return base::Status::ok();
}

base::Result<std::string> read_mountinfo(const std::string& mountinfo_path, const std::string& path) {
  std::string text;
  const int err = read_small_file(mountinfo_path, text);
  if (err != 0) {
    return base::Status::from_errno(err, "cannot read " + mountinfo_path + " to check that " + path +
                                             " is not mounted");
  }
  return text;
}

base::Status mounted_error(const std::string& path, dev_t target, const MountEntry& entry) {
  if (entry.mount_point == "/") return root_disk_error(path);
  const bool same = major(entry.device) != 0 && entry.device == target;
  const std::string what = same ? path : path + " (on the same disk as " + entry.source + ")";
  return base::Status::error(EBUSY, what + " is mounted at " + entry.mount_point + "; unmount it first, or " +
                                        kWhatToDo);
}

base::Status check_not_mounted(const std::string& path, dev_t target, dev_t disk, const std::string& mountinfo_path) {
  base::Result<std::string> text = read_mountinfo(mountinfo_path, path);
  if (!text) return text.status();
  for (const MountEntry& entry : parse_mountinfo(*text)) {
    for (dev_t mounted_disk : disks_of(entry)) {
      if (mounted_disk == disk) return mounted_error(path, target, entry);
    }
  }
  return base::Status::ok();
}

}  // namespace

base::Status check_not_in_use(const std::string& path, const std::string& mountinfo_path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return base::Status::from_errno(errno, "cannot check whether the target " + path + " is in use");
  // An image file is never the running system's disk; two writers are kept
  // apart by the flock taken at open.
  if (S_ISREG(st.st_mode)) return base::Status::ok();
  if (!S_ISBLK(st.st_mode)) {
    return base::Status::error(ENOTBLK, "the target " + path + " is neither a block device nor a regular file; " +
                                            kWhatToDo);
  }
  // Partitions count as their disk: writing the disk overwrites them all.
  const dev_t disk = whole_disk_of(st.st_rdev);
  BASE_TRY(check_not_root_disk(path, disk));
  return check_not_mounted(path, st.st_rdev, disk, mountinfo_path);
}

}  // namespace blockio
