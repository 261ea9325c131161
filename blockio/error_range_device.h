// SPDX-License-Identifier: MIT
// A BlockDevice wrapper whose writes, zeroes, discards and reads fail with
// EIO where they overlap one byte range: device-mapper's "error" target over
// a range, for kernels without device-mapper (the black-box health tests).
// Optionally the nth flush fails once with EIO and later ones succeed again,
// as Linux reports a lost writeback to one fdatasync only. Everything else
// passes through. Thread-safe as the inner device is.
#pragma once

#include <atomic>
#include <memory>

#include "blockio/device.h"

namespace blockio {

class ErrorRangeDevice final : public BlockDevice {
 public:
  // flush_error_at: the flush (counting from 1) that fails; 0 = none.
  ErrorRangeDevice(std::unique_ptr<BlockDevice> inner, uint64_t offset_bytes, uint64_t length_bytes,
                   uint64_t flush_error_at = 0);

  Geometry geometry() const override { return inner_->geometry(); }
  base::Status write(uint64_t offset_bytes, base::ByteSpan data) override;
  base::Status read(uint64_t offset_bytes, base::MutableByteSpan out) override;
  base::Status write_zeroes(uint64_t offset_bytes, uint64_t length_bytes) override;
  base::Status discard(uint64_t offset_bytes, uint64_t length_bytes) override;
  base::Status flush() override;
  std::string describe() const override;

 private:
  base::Status check(const char* op, uint64_t offset_bytes, uint64_t length_bytes) const;

  std::unique_ptr<BlockDevice> inner_;
  uint64_t offset_bytes_;
  uint64_t length_bytes_;
  uint64_t flush_error_at_;
  std::atomic<uint64_t> flushes_{0};
};

}  // namespace blockio
