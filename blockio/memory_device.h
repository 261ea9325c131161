// SPDX-License-Identifier: MIT
// A BlockDevice in memory, for tests. Every completed operation is "durable".
#pragma once

#include <mutex>
#include <vector>

#include "blockio/device.h"

namespace blockio {

class MemoryDevice final : public BlockDevice {
 public:
  explicit MemoryDevice(uint64_t size_bytes, uint32_t logical_block_bytes = 512);

  Geometry geometry() const override;
  base::Status write(uint64_t offset_bytes, base::ByteSpan data) override;
  base::Status read(uint64_t offset_bytes, base::MutableByteSpan out) override;
  base::Status write_zeroes(uint64_t offset_bytes, uint64_t length_bytes) override;
  base::Status discard(uint64_t offset_bytes, uint64_t length_bytes) override;
  base::Status flush() override;
  std::string describe() const override;

  // A copy of the whole contents (tests compare images with it).
  std::vector<uint8_t> contents() const;
  uint64_t flush_count() const;

 private:
  mutable std::mutex mutex_;
  Geometry geometry_;
  std::vector<uint8_t> bytes_;
  uint64_t flush_count_ = 0;
};

}  // namespace blockio
