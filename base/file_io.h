// SPDX-License-Identifier: MIT
// Whole-buffer positioned reads and writes: the one loop over pread(2) and
// pwrite(2) that retries EINTR and short transfers. Errors are values
// carrying errno and the request (offset= len=); callers add what the file
// is (with_context). The caller owns the descriptor; any thread may call as
// long as the ranges it uses do not overlap another thread's writes.
// Beside them the two other loops every program here needs once: mkdir -p,
// and an exclusive flock that waits a bounded time.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

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

// mkdir -p: makes `dir` and each missing parent with exactly `mode`, whatever
// the umask (ones that exist are left as they are), and checks that `dir` is
// a directory. Errors name the directory that could not be made or used.
Status make_dirs(const std::string& dir, mode_t mode);

// fsync(2) of the directory `dir`, so that a file created, renamed or removed
// in it survives a power cut. Errors name the directory.
Status sync_dir(const std::string& dir);
// The directory that holds `path`: "." when it names none, "/" for "/x".
std::string parent_dir(const std::string& path);

// An exclusive flock(2) on `fd`, tried again every `step` while another
// holder has it, for up to `wait` (at least one try). EWOULDBLOCK if it is
// still held then; other errors carry their errno. Callers say who holds it.
Status lock_exclusive(int fd, std::chrono::milliseconds wait, std::chrono::milliseconds step);

}  // namespace base
