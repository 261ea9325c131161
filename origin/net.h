// SPDX-License-Identifier: MIT
// Small TCP helpers for the original's side of the link: connect with a time
// limit, and whole-buffer reads and writes against a deadline, on
// non-blocking sockets driven by poll(2). Every wait has a deadline.
#pragma once

#include <cstdint>
#include <string>

#include "base/bytes.h"
#include "base/status.h"
#include "base/unique_fd.h"

namespace origin::net {

// Monotonic milliseconds.
uint64_t now_ms();

// Resolves `host` (an address or a name) and connects within `timeout_ms`.
// The socket is non-blocking, close-on-exec, with TCP_NODELAY.
base::Result<base::UniqueFd> connect_tcp(const std::string& host, uint16_t port, uint32_t timeout_ms);

// Writes all of `bytes` unless `deadline_ms` (monotonic) passes first.
base::Status write_all(int fd, base::ByteSpan bytes, uint64_t deadline_ms);
// Reads exactly out.size() bytes unless the peer closes or the deadline passes.
base::Status read_exact(int fd, base::MutableByteSpan out, uint64_t deadline_ms);
// Waits for `events` on fd until the deadline: ok when ready, ETIMEDOUT else.
base::Status wait_fd(int fd, short events, uint64_t deadline_ms);

}  // namespace origin::net
