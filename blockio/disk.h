// SPDX-License-Identifier: MIT
// Opening the real target: a block device or a regular file.
//
// Block devices are opened O_RDWR|O_DIRECT|O_EXCL and then flock(LOCK_EX)ed
// (udev stays away while we hold it). Regular files are opened O_DIRECT; where
// the filesystem refuses O_DIRECT (tmpfs), the open falls back to buffered I/O
// with fdatasync and logs that it did. Before opening, the target is checked
// against invariant 1 ("never the wrong disk").
#pragma once

#include <memory>
#include <string>

#include "base/status.h"
#include "blockio/device.h"

namespace blockio {

// Stable identity of a target, recorded at pairing and checked at every start.
struct DiskIdentity {
  std::string kind;  // "block" or "file"
  std::string path;  // canonical path (realpath) at the time of probing
  uint64_t size_bytes = 0;
  uint32_t logical_block_bytes = 512;
  std::string serial;      // block devices: from sysfs / udev, empty if unknown
  std::string wwn;         // block devices: empty if unknown
  std::string model;       // block devices: empty if unknown
  uint32_t partition = 0;  // block devices: the partition's number on its disk; 0 a whole disk (or not recorded)
  uint64_t partition_start_bytes = 0;  // a partition's first byte on its disk; 0 a whole disk (or not recorded)

  // "block /dev/sdb (WDC WD10, serial WX1234, 1.0 TiB)" or "file /srv/disk.img (256 MiB)"
  std::string describe() const;
};

// Reads identity without opening for writing. Works on files and block devices.
base::Result<DiskIdentity> probe_identity(const std::string& path);

// ok if `actual` is the disk recorded as `expected`: same kind and size, a
// logical block no larger than recorded where recorded (nonzero: the original
// aligns its writes to the recorded one), and for block devices the same serial/WWN/model and
// partition number where recorded (the path may change between boots); for
// files the same canonical path. Otherwise an error whose message names both
// and says what to do.
base::Status check_identity(const DiskIdentity& expected, const DiskIdentity& actual);

// Refuses a target that holds the running root filesystem (or is the disk the
// system booted from), or that is mounted (it or any of its partitions).
// `mountinfo_path` is for tests; production uses /proc/self/mountinfo.
base::Status check_not_in_use(const std::string& path, const std::string& mountinfo_path = "/proc/self/mountinfo");

struct OpenOptions {
  bool direct_io = true;  // O_DIRECT (with buffered fallback for files)
  bool exclusive = true;  // O_EXCL + flock for block devices
};

// Opens the target for replication; runs check_not_in_use first. The identity
// check is the caller's (it knows the recorded identity).
base::Result<std::unique_ptr<BlockDevice>> open_disk(const std::string& path, const OpenOptions& options = {});

// Creates a zero-filled (sparse) regular file of `size_bytes`, a positive
// multiple of 512, for tests, the demo and benchmarks. An existing file of
// that size is accepted as it is; one of a different size is refused.
base::Status create_image_file(const std::string& path, uint64_t size_bytes);

}  // namespace blockio
