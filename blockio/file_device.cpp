// SPDX-License-Identifier: MIT
#include "blockio/file_device.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/aligned_buffer.h"
#include "base/file_io.h"
#include "base/units.h"
#include "blockio/extent.h"

namespace blockio {
namespace {

// The zero-writing fallback writes at most this much per call: big enough to
// stream, small enough not to matter as a temporary allocation.
constexpr size_t kZeroChunkBytes = 1 << 20;

bool is_unsupported(int err) { return err == EOPNOTSUPP || err == ENOSYS || err == ENOTTY; }

}  // namespace

FileDevice::FileDevice(UniqueFd fd, std::string path, TargetKind kind, Geometry geometry, bool direct_io)
    : fd_(std::move(fd)), path_(std::move(path)), kind_(kind), geometry_(geometry), direct_io_(direct_io) {
  assert(fd_.valid());
  assert(geometry_.size_bytes % geometry_.logical_block_bytes == 0);
}

base::Status FileDevice::failure(const char* what, uint64_t offset_bytes, uint64_t length_bytes, int err) const {
  return base::Status::from_errno(err, std::string(what) + " of " + std::to_string(length_bytes) +
                                           " bytes at offset " + std::to_string(offset_bytes) + " to " +
                                           path_ + " failed");
}

base::Status FileDevice::write(uint64_t offset_bytes, base::ByteSpan data) {
  assert_extent(geometry_, offset_bytes, data.size());
  if (direct_io_) assert_io_buffer(data.data());
  return base::pwrite_full(fd_.get(), data, offset_bytes).with_context(path_);
}

base::Status FileDevice::read(uint64_t offset_bytes, base::MutableByteSpan out) {
  assert_extent(geometry_, offset_bytes, out.size());
  if (direct_io_) assert_io_buffer(out.data());
  return base::pread_full(fd_.get(), out, offset_bytes).with_context(path_);
}

base::Status FileDevice::zero_by_writing(uint64_t offset_bytes, uint64_t length_bytes) {
  base::AlignedBuffer zeroes(static_cast<size_t>(std::min<uint64_t>(length_bytes, kZeroChunkBytes)));
  std::memset(zeroes.data(), 0, zeroes.size());
  for (uint64_t done_bytes = 0; done_bytes < length_bytes;) {
    const size_t chunk_bytes = static_cast<size_t>(std::min<uint64_t>(length_bytes - done_bytes, zeroes.size()));
    BASE_TRY(write(offset_bytes + done_bytes, base::ByteSpan(zeroes.data(), chunk_bytes)));
    done_bytes += chunk_bytes;
  }
  return base::Status::ok();
}

base::Status FileDevice::fallocate_range(int mode, const char* what, uint64_t offset_bytes, uint64_t length_bytes,
                                         bool& unsupported) {
  unsupported = false;
  for (;;) {
    if (::fallocate(fd_.get(), mode, static_cast<off_t>(offset_bytes), static_cast<off_t>(length_bytes)) == 0)
      return base::Status::ok();
    if (errno == EINTR) continue;
    unsupported = is_unsupported(errno);
    return failure(what, offset_bytes, length_bytes, errno);
  }
}

base::Status FileDevice::block_zero_out(uint64_t offset_bytes, uint64_t length_bytes) {
  uint64_t range[2] = {offset_bytes, length_bytes};
  if (::ioctl(fd_.get(), BLKZEROOUT, range) == 0) return base::Status::ok();
  return failure("zeroing (BLKZEROOUT)", offset_bytes, length_bytes, errno);
}

base::Status FileDevice::write_zeroes(uint64_t offset_bytes, uint64_t length_bytes) {
  assert_extent(geometry_, offset_bytes, length_bytes);
  if (length_bytes == 0) return base::Status::ok();
  // BLKZEROOUT falls back to writing zeroes in the kernel where the device
  // has no zeroing command, so it always leaves the range allocated and zero.
  if (kind_ == TargetKind::block) return block_zero_out(offset_bytes, length_bytes);
  bool unsupported = false;
  base::Status status =
      fallocate_range(FALLOC_FL_ZERO_RANGE, "zeroing (fallocate)", offset_bytes, length_bytes, unsupported);
  if (unsupported) return zero_by_writing(offset_bytes, length_bytes);
  return status;
}

base::Status FileDevice::discard(uint64_t offset_bytes, uint64_t length_bytes) {
  assert_extent(geometry_, offset_bytes, length_bytes);
  if (length_bytes == 0) return base::Status::ok();
  // PUNCH_HOLE frees the range and guarantees zeroes on read, on files and
  // (since Linux 4.9) on block devices, where it fails rather than leave
  // stale data. BLKDISCARD promises no zeroes, so it is never used.
  bool unsupported = false;
  base::Status status = fallocate_range(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, "discard (fallocate)",
                                        offset_bytes, length_bytes, unsupported);
  if (!unsupported) return status;
  if (kind_ == TargetKind::block) return block_zero_out(offset_bytes, length_bytes);
  return zero_by_writing(offset_bytes, length_bytes);
}

base::Status FileDevice::flush() {
  if (::fdatasync(fd_.get()) == 0) return base::Status::ok();
  return base::Status::from_errno(errno, "flush (fdatasync) of " + path_ + " failed; the writes since the last "
                                         "flush may not be on stable storage");
}

std::string FileDevice::describe() const {
  return std::string(kind_ == TargetKind::block ? "block " : "file ") + path_ + " (" +
         base::format_bytes(geometry_.size_bytes) + ", " + (direct_io_ ? "O_DIRECT" : "buffered") + ")";
}

}  // namespace blockio
