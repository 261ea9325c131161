// SPDX-License-Identifier: MIT
#include "blockio/error_range_device.h"

#include <cerrno>

namespace blockio {

ErrorRangeDevice::ErrorRangeDevice(std::unique_ptr<BlockDevice> inner, uint64_t offset_bytes, uint64_t length_bytes)
    : inner_(std::move(inner)), offset_bytes_(offset_bytes), length_bytes_(length_bytes) {}

base::Status ErrorRangeDevice::check(const char* op, uint64_t offset_bytes, uint64_t length_bytes) const {
  const bool overlaps = length_bytes > 0 && length_bytes_ > 0 && offset_bytes < offset_bytes_ + length_bytes_ &&
                        offset_bytes_ < offset_bytes + length_bytes;
  if (!overlaps) return base::Status::ok();
  return base::Status::error(EIO, std::string(op) + " at offset=" + std::to_string(offset_bytes) + " len=" +
                                      std::to_string(length_bytes) + " failed: Input/output error (injected: bytes " +
                                      std::to_string(offset_bytes_) + ".." +
                                      std::to_string(offset_bytes_ + length_bytes_) + " fail)");
}

base::Status ErrorRangeDevice::write(uint64_t offset_bytes, base::ByteSpan data) {
  BASE_TRY(check("write", offset_bytes, data.size()));
  return inner_->write(offset_bytes, data);
}

base::Status ErrorRangeDevice::read(uint64_t offset_bytes, base::MutableByteSpan out) {
  BASE_TRY(check("read", offset_bytes, out.size()));
  return inner_->read(offset_bytes, out);
}

base::Status ErrorRangeDevice::write_zeroes(uint64_t offset_bytes, uint64_t length_bytes) {
  BASE_TRY(check("write zeroes", offset_bytes, length_bytes));
  return inner_->write_zeroes(offset_bytes, length_bytes);
}

base::Status ErrorRangeDevice::discard(uint64_t offset_bytes, uint64_t length_bytes) {
  BASE_TRY(check("discard", offset_bytes, length_bytes));
  return inner_->discard(offset_bytes, length_bytes);
}

std::string ErrorRangeDevice::describe() const {
  return inner_->describe() + " (EIO injected at bytes " + std::to_string(offset_bytes_) + ".." +
         std::to_string(offset_bytes_ + length_bytes_) + ")";
}

}  // namespace blockio
