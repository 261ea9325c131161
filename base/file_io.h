// SPDX-License-Identifier: MIT
// Whole-buffer positioned reads and writes: the one loop over pread(2) and
// pwrite(2) that retries EINTR and short transfers. Errors are values
// carrying errno and the request (offset= len=); callers add what the file
// is (with_context). The caller owns the descriptor; any thread may call as
// long as the ranges it uses do not overlap another thread's writes.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/bytes.h"
#include "base/status.h"

namespace base {

// Reads up to out.size() bytes at `offset_bytes`; returns how many, fewer
// only where the file ends.
Result<size_t> pread_upto(int fd, MutableByteSpan out, uint64_t offset_bytes);
// Reads exactly out.size() bytes; a file that ends first is EIO.
Status pread_full(int fd, MutableByteSpan out, uint64_t offset_bytes);
// Writes all of `data`; a write that makes no progress (the device ended) is EIO.
Status pwrite_full(int fd, ByteSpan data, uint64_t offset_bytes);

}  // namespace base
