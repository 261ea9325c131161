// SPDX-License-Identifier: MIT
#include "blockio/memory_device.h"

#include <cstring>

#include "base/units.h"
#include "blockio/extent.h"

namespace blockio {

MemoryDevice::MemoryDevice(uint64_t size_bytes, uint32_t logical_block_bytes)
    : geometry_{size_bytes, logical_block_bytes, logical_block_bytes > 4096 ? logical_block_bytes : 4096},
      bytes_(size_bytes, 0) {
  assert(logical_block_bytes >= 512 && (logical_block_bytes & (logical_block_bytes - 1)) == 0);
  assert(size_bytes % logical_block_bytes == 0);
}

Geometry MemoryDevice::geometry() const { return geometry_; }

base::Status MemoryDevice::write(uint64_t offset_bytes, base::ByteSpan data) {
  assert_extent(geometry_, offset_bytes, data.size());
  assert_io_buffer(data.data());
  std::lock_guard<std::mutex> lock(mutex_);
  if (!data.empty()) std::memcpy(bytes_.data() + offset_bytes, data.data(), data.size());
  return base::Status::ok();
}

base::Status MemoryDevice::read(uint64_t offset_bytes, base::MutableByteSpan out) {
  assert_extent(geometry_, offset_bytes, out.size());
  assert_io_buffer(out.data());
  std::lock_guard<std::mutex> lock(mutex_);
  if (!out.empty()) std::memcpy(out.data(), bytes_.data() + offset_bytes, out.size());
  return base::Status::ok();
}

base::Status MemoryDevice::write_zeroes(uint64_t offset_bytes, uint64_t length_bytes) {
  assert_extent(geometry_, offset_bytes, length_bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  std::memset(bytes_.data() + offset_bytes, 0, length_bytes);
  return base::Status::ok();
}

base::Status MemoryDevice::discard(uint64_t offset_bytes, uint64_t length_bytes) {
  // Our discard promises zeroes on read, so in memory it is the same thing.
  return write_zeroes(offset_bytes, length_bytes);
}

base::Status MemoryDevice::flush() {
  std::lock_guard<std::mutex> lock(mutex_);
  ++flush_count_;
  return base::Status::ok();
}

std::string MemoryDevice::describe() const { return "memory " + base::format_bytes(geometry_.size_bytes); }

std::vector<uint8_t> MemoryDevice::contents() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return bytes_;
}

uint64_t MemoryDevice::flush_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return flush_count_;
}

}  // namespace blockio
