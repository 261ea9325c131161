// SPDX-License-Identifier: MIT
// Small TCP helpers for the original's side of the link: connect with a time
// limit, and whole-buffer reads and writes against a deadline, on
// non-blocking sockets driven by poll(2). Every wait has a deadline.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "base/bytes.h"
#include "base/status.h"

namespace origin::net {

// Owns a file descriptor; closes it on destruction. Move-only.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  void reset();
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// Monotonic milliseconds.
uint64_t now_ms();

// Resolves `host` (an address or a name) and connects within `timeout_ms`.
// The socket is non-blocking, close-on-exec, with TCP_NODELAY.
base::Result<UniqueFd> connect_tcp(const std::string& host, uint16_t port, uint32_t timeout_ms);

// Writes all of `bytes` unless `deadline_ms` (monotonic) passes first.
base::Status write_all(int fd, base::ByteSpan bytes, uint64_t deadline_ms);
// Reads exactly out.size() bytes unless the peer closes or the deadline passes.
base::Status read_exact(int fd, base::MutableByteSpan out, uint64_t deadline_ms);
// Waits for `events` on fd until the deadline: ok when ready, ETIMEDOUT else.
base::Status wait_fd(int fd, short events, uint64_t deadline_ms);

}  // namespace origin::net
