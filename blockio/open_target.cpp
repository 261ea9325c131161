// SPDX-License-Identifier: MIT
// Opening the target for writing: flags, exclusive ownership, geometry.
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/stat.h>  // struct statx with STATX_DIOALIGN (Linux 6.1)
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

#include "base/file_io.h"
#include "base/log.h"
#include "blockio/file_device.h"

namespace blockio {
namespace {

constexpr uint32_t kFileLogicalBlockBytes = 512;
// udev takes LOCK_SH|LOCK_NB for a moment whenever it probes the device (for
// example right after the previous writer closed it); a short wait tells that
// apart from a program that really holds the disk.
constexpr auto kLockWait = std::chrono::seconds(1);
constexpr auto kLockRetryDelay = std::chrono::milliseconds(50);

bool is_power_of_two(uint64_t value) { return value != 0 && (value & (value - 1)) == 0; }

base::Status lock_exclusively(int fd, const std::string& path) {
  const base::Status locked = base::lock_exclusive(fd, kLockWait, kLockRetryDelay);
  if (locked.code() == EWOULDBLOCK) {
    return base::Status::error(EWOULDBLOCK, "another program holds a lock on " + path +
                                                " (flock), perhaps a disk tool or a second cloned; "
                                                "stop it and start again");
  }
  return locked.with_context("cannot lock " + path);
}

uint32_t file_physical_block_bytes(const struct stat& st) {
  const auto block_bytes = static_cast<uint64_t>(st.st_blksize);
  if (is_power_of_two(block_bytes) && block_bytes >= 512 && block_bytes <= 65536)
    return static_cast<uint32_t>(block_bytes);
  return 4096;
}

// A record aligned to less than the file's logical block would fail its
// O_DIRECT write with EINVAL; the original hears the block at the handshake
// and refuses a disk that differs from its own.
base::Result<Geometry> file_geometry(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return base::Status::from_errno(errno, "cannot stat " + path);
  const auto size_bytes = static_cast<uint64_t>(st.st_size);
  const uint32_t logical = file_logical_block_bytes(path);
  if (size_bytes == 0 || size_bytes % logical != 0) {
    return base::Status::error(EINVAL, "image file " + path + " has " + std::to_string(size_bytes) +
                                           " bytes, not a positive multiple of " + std::to_string(logical) +
                                           " (its logical block); recreate it with the size of the original's disk");
  }
  return Geometry{size_bytes, logical, std::max(logical, file_physical_block_bytes(st))};
}

template <class T>
base::Status query(int fd, unsigned long request, const char* name, const std::string& path, T& value) {
  if (::ioctl(fd, request, &value) == 0) return base::Status::ok();
  return base::Status::from_errno(errno, std::string("cannot read the geometry of ") + path + " (" + name + ")");
}

// Returns an error status for a read-only device, ok otherwise.
base::Status check_writable(int fd, const std::string& path) {
  int read_only = 0;
  BASE_TRY(query(fd, BLKROGET, "BLKROGET", path, read_only));
  if (read_only == 0) return base::Status::ok();
  return base::Status::error(EROFS, path + " is read-only (BLKROGET); make it writable (blockdev --setrw " + path +
                                        ") or point [target] path at the clone's internal disk");
}

base::Result<Geometry> block_geometry(int fd, const std::string& path) {
  uint64_t size_bytes = 0;
  int logical_block_bytes = 0;
  unsigned int physical_block_bytes = 0;
  BASE_TRY(query(fd, BLKGETSIZE64, "BLKGETSIZE64", path, size_bytes));
  BASE_TRY(query(fd, BLKSSZGET, "BLKSSZGET", path, logical_block_bytes));
  BASE_TRY(query(fd, BLKPBSZGET, "BLKPBSZGET", path, physical_block_bytes));
  const auto logical = static_cast<uint64_t>(logical_block_bytes);
  if (!is_power_of_two(logical) || logical < 512 || size_bytes == 0 || size_bytes % logical != 0) {
    return base::Status::error(EINVAL, path + " reports an unusable geometry (" + std::to_string(size_bytes) +
                                           " bytes in blocks of " + std::to_string(logical) + "); is it a real disk?");
  }
  if (!is_power_of_two(physical_block_bytes) || physical_block_bytes < logical) physical_block_bytes = 4096;
  return Geometry{size_bytes, static_cast<uint32_t>(logical), physical_block_bytes};
}

base::Status open_block_error(const std::string& path, int err) {
  if (err == EBUSY) {
    return base::Status::error(EBUSY, "cannot open " + path +
                                          " exclusively: it is mounted, used as swap, LVM or "
                                          "RAID, or another program has it open exclusively; stop that use, or "
                                          "point [target] path at the clone's internal disk");
  }
  return base::Status::from_errno(err, "cannot open " + path + " for writing");
}

}  // namespace

uint32_t file_logical_block_bytes(const std::string& path) {
  struct statx stx {};
  if (::syscall(SYS_statx, AT_FDCWD, path.c_str(), 0, STATX_DIOALIGN, &stx) != 0) return kFileLogicalBlockBytes;
  if ((stx.stx_mask & STATX_DIOALIGN) == 0 || !is_power_of_two(stx.stx_dio_offset_align)) return kFileLogicalBlockBytes;
  return std::clamp<uint32_t>(stx.stx_dio_offset_align, kFileLogicalBlockBytes, 65536);
}

base::Result<std::unique_ptr<BlockDevice>> open_regular_file(const std::string& path, const OpenOptions& options) {
  const int flags = O_RDWR | O_CLOEXEC;
  bool direct_io = options.direct_io;
  UniqueFd fd(::open(path.c_str(), flags | (direct_io ? O_DIRECT : 0)));
  if (!fd.valid() && direct_io && errno == EINVAL) {
    direct_io = false;
    fd.reset(::open(path.c_str(), flags));
    if (fd.valid()) {
      LOG_WARN(
          "the filesystem of %s does not support O_DIRECT (tmpfs?), so it is opened with buffered I/O; "
          "flush still makes writes durable with fdatasync",
          path.c_str());
    }
  }
  if (!fd.valid()) return base::Status::from_errno(errno, "cannot open " + path + " for writing");
  // Two daemons writing one image would corrupt it as surely as a real disk.
  if (options.exclusive) BASE_TRY(lock_exclusively(fd.get(), path));
  base::Result<Geometry> geometry = file_geometry(fd.get(), path);
  if (!geometry) return geometry.status();
  return std::unique_ptr<BlockDevice>(
      std::make_unique<FileDevice>(std::move(fd), path, TargetKind::file, *geometry, direct_io));
}

base::Result<std::unique_ptr<BlockDevice>> open_block_device(const std::string& path, const OpenOptions& options) {
  const int flags = O_RDWR | O_CLOEXEC | (options.direct_io ? O_DIRECT : 0) | (options.exclusive ? O_EXCL : 0);
  UniqueFd fd(::open(path.c_str(), flags));
  if (!fd.valid()) return open_block_error(path, errno);
  if (options.exclusive) BASE_TRY(lock_exclusively(fd.get(), path));
  BASE_TRY(check_writable(fd.get(), path));
  base::Result<Geometry> geometry = block_geometry(fd.get(), path);
  if (!geometry) return geometry.status();
  return std::unique_ptr<BlockDevice>(
      std::make_unique<FileDevice>(std::move(fd), path, TargetKind::block, *geometry, options.direct_io));
}

}  // namespace blockio
