// SPDX-License-Identifier: MIT
// The original's own disk, as a file or block device the reference original
// writes its workload to and resync and verify read, and the byte-for-byte
// comparison used to check a clone against it (demo and tests, where the
// clone's disk is readable here).
//
// Threading: a SourceImage is used by one thread; it owns its descriptor.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/bytes.h"
#include "base/status.h"
#include "base/unique_fd.h"
#include "origin/record.h"

namespace origin {

class SourceImage {
 public:
  // Opens for writing; the size must equal `disk_size_bytes` (the size the
  // pair was made with), else a sentence saying both.
  static base::Result<std::unique_ptr<SourceImage>> open(const std::string& path, uint64_t disk_size_bytes);
  // Opens read-only (resync and verify), with the same size check.
  static base::Result<std::unique_ptr<SourceImage>> open_to_read(const std::string& path, uint64_t disk_size_bytes);
  ~SourceImage();
  SourceImage(const SourceImage&) = delete;
  SourceImage& operator=(const SourceImage&) = delete;

  // Carries out a record: a write's payload is written; a trim or zero makes
  // its extent read as zeroes (written as zeroes, so the image stays a plain
  // byte-for-byte picture); a barrier does nothing.
  base::Status apply(const Record& record);
  // fdatasync.
  base::Status sync();
  // Reads exactly out.size() bytes at `offset_bytes`.
  base::Status read(uint64_t offset_bytes, base::MutableByteSpan out);
  const std::string& path() const { return path_; }
  uint64_t size_bytes() const { return size_bytes_; }

 private:
  static base::Result<std::unique_ptr<SourceImage>> open_with(const std::string& path, uint64_t disk_size_bytes,
                                                              int flags);
  SourceImage(base::UniqueFd fd, std::string path, uint64_t size_bytes)
      : fd_(std::move(fd)), path_(std::move(path)), size_bytes_(size_bytes) {}
  base::Status write(base::ByteSpan data, uint64_t offset_bytes);

  base::UniqueFd fd_;
  std::string path_;
  uint64_t size_bytes_;
};

// Size of a regular file or block device.
base::Result<uint64_t> file_or_device_size(int fd, const std::string& path);

// Which source a resync reads, as text ("file:DEV:INO:SIZE:CTIME_NS", or
// "block:RDEV:DISKSEQ" for a device, the kernel's number of the disk behind
// it): an interrupted resync resumes only from the same one, unchanged as far
// as its metadata tells; another (a new snapshot, a loop device attached
// again, the image written since) starts over, since below the resync's
// cursor the clone holds the other source's data. A block device written in
// place between the runs keeps its identity: resync from a snapshot.
base::Result<std::string> source_identity(const std::string& path);

struct CompareResult {
  bool identical = false;
  uint64_t first_difference_offset = 0;  // when !identical
  std::string sentence;                  // "identical" or where and how they differ
};
// Reads both from the start and stops at the first differing byte. The second
// path is read with O_DIRECT where possible: it is usually the clone's disk,
// written with O_DIRECT by the daemon, and must not be read from a stale cache.
base::Result<CompareResult> compare_images(const std::string& source_path, const std::string& clone_path);

}  // namespace origin
