// SPDX-License-Identifier: MIT
// Internal: the real target, a regular file or a block device behind one fd.
//
// The device owns its fd (and with it the flock, released on close). Writes
// and reads use pwrite/pread, so concurrent calls on disjoint ranges need no
// lock here. Opening and the checks around it are in open_target.cpp.
#pragma once

#include <memory>
#include <string>

#include "blockio/device.h"
#include "blockio/disk.h"
#include "blockio/unique_fd.h"

namespace blockio {

enum class TargetKind { file, block };

class FileDevice final : public BlockDevice {
 public:
  FileDevice(UniqueFd fd, std::string path, TargetKind kind, Geometry geometry, bool direct_io);

  Geometry geometry() const override { return geometry_; }
  base::Status write(uint64_t offset_bytes, base::ByteSpan data) override;
  // With O_DIRECT: one Linux AIO submission and one wait (aio.cpp).
  void write_batch(std::span<WriteOp> ops) override;
  base::Status read(uint64_t offset_bytes, base::MutableByteSpan out) override;
  // With O_DIRECT: the next piece's read is in flight (Linux AIO) while the
  // consumer handles this one (aio.cpp).
  base::Status read_each(uint64_t offset_bytes, uint64_t length_bytes, uint64_t piece_bytes,
                         const PieceConsumer& consume) override;
  base::Status write_zeroes(uint64_t offset_bytes, uint64_t length_bytes) override;
  base::Status discard(uint64_t offset_bytes, uint64_t length_bytes) override;
  base::Status flush() override;
  std::string describe() const override;

 private:
  base::Status zero_by_writing(uint64_t offset_bytes, uint64_t length_bytes);
  base::Status block_zero_out(uint64_t offset_bytes, uint64_t length_bytes);
  // Runs fallocate; fills `unsupported` when the filesystem or device lacks the mode.
  base::Status fallocate_range(int mode, const char* what, uint64_t offset_bytes, uint64_t length_bytes,
                               bool& unsupported);
  base::Status failure(const char* what, uint64_t offset_bytes, uint64_t length_bytes, int err) const;

  UniqueFd fd_;
  std::string path_;
  TargetKind kind_;
  Geometry geometry_;
  bool direct_io_;
};

// An image file's logical block: what direct I/O on its filesystem needs
// offsets and lengths aligned to (statx STATX_DIOALIGN, Linux 6.1: the
// logical block of the disk under it, 4096 on a 4Kn disk), else 512. The same
// whether it is opened O_DIRECT or not, so that the identity pairing records
// and the geometry the handshake says agree.
uint32_t file_logical_block_bytes(const std::string& path);

base::Result<std::unique_ptr<BlockDevice>> open_regular_file(const std::string& path, const OpenOptions& options);
base::Result<std::unique_ptr<BlockDevice>> open_block_device(const std::string& path, const OpenOptions& options);

}  // namespace blockio
