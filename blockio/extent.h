// SPDX-License-Identifier: MIT
// Internal: the alignment contract of device.h, asserted by every BlockDevice.
// Violations are programmer errors: peer input is validated before it gets here.
#pragma once

#include <cassert>
#include <cstdint>

#include "base/aligned_buffer.h"
#include "blockio/device.h"

namespace blockio {

// Offset and length are whole logical blocks and lie inside the device.
inline void assert_extent(const Geometry& geometry, uint64_t offset_bytes, uint64_t length_bytes) {
  assert(geometry.logical_block_bytes > 0);
  assert(offset_bytes % geometry.logical_block_bytes == 0);
  assert(length_bytes % geometry.logical_block_bytes == 0);
  assert(length_bytes <= geometry.size_bytes && offset_bytes <= geometry.size_bytes - length_bytes);
  (void)geometry, (void)offset_bytes, (void)length_bytes;
}

// Data buffers are aligned for O_DIRECT (base::kIoAlignmentBytes).
inline void assert_io_buffer(const void* data) {
  assert(reinterpret_cast<uintptr_t>(data) % base::kIoAlignmentBytes == 0);
  (void)data;
}

}  // namespace blockio
