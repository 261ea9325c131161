// SPDX-License-Identifier: MIT
#include "blockio/error_range_device.h"

#include <cerrno>

namespace blockio {

ErrorRangeDevice::ErrorRangeDevice(std::unique_ptr<BlockDevice> inner, uint64_t offset_bytes, uint64_t length_bytes,
                                   uint64_t flush_error_at)
    : inner_(std::move(inner)), offset_bytes_(offset_bytes), length_bytes_(length_bytes),
      flush_error_at_(flush_error_at) {}

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

// The failing flush does not reach the inner device: what it would have
// made durable stays as unsure as after a real failed fdatasync.
base::Status ErrorRangeDevice::flush() {
  const uint64_t n = flushes_.fetch_add(1) + 1;
  if (n == flush_error_at_)
    return base::Status::error(EIO, "flush " + std::to_string(n) + " failed: Input/output error (injected)");
  return inner_->flush();
}

std::string ErrorRangeDevice::describe() const {
  std::string what = "EIO injected at bytes " + std::to_string(offset_bytes_) + ".." +
                     std::to_string(offset_bytes_ + length_bytes_);
  if (flush_error_at_ > 0) what += ", flush " + std::to_string(flush_error_at_) + " fails";
  return inner_->describe() + " (" + what + ")";
}

}  // namespace blockio
