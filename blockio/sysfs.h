// SPDX-License-Identifier: MIT
// Internal: what sysfs says about a block device, by its device number.
// Everything here only reads; a missing file or link yields an empty answer.
#pragma once

#include <sys/types.h>

#include <string>

namespace blockio {

// /sys/dev/block/MAJ:MIN resolved to its /sys/devices/... directory; "" if unknown.
std::string sysfs_dir_of(dev_t device);

// The whole disk's sysfs directory: for a partition its parent, else itself.
std::string sysfs_disk_dir_of(dev_t device);

// The whole disk holding `device` (itself if it is a whole disk or sysfs does
// not know it, as for the anonymous devices of tmpfs or overlayfs).
dev_t whole_disk_of(dev_t device);

// Reads a whole small file (sysfs attribute, mountinfo) into `out`, up to a
// bound that no such file reaches. Returns 0 or the errno of the failure.
int read_small_file(const std::string& path, std::string& out);

// The contents of a sysfs attribute with surrounding whitespace and NULs
// trimmed; "" if it cannot be read.
std::string read_attribute(const std::string& path);

// The serial number from a SCSI VPD page 0x80 file; "" if absent or malformed.
std::string read_vpd_serial(const std::string& path);

}  // namespace blockio
