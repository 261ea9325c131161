// SPDX-License-Identifier: MIT
#include "base/status.h"

#include <cerrno>
#include <cstring>

namespace base {

Status Status::from_errno(const std::string& what) { return from_errno(errno, what); }

Status Status::from_errno(int err, const std::string& what) {
  if (err <= 0) err = EIO;
  return Status(err, what + ": " + std::strerror(err));
}

Status Status::with_context(const std::string& prefix) const {
  if (is_ok()) return *this;
  return Status(code_, prefix + ": " + message_);
}

}  // namespace base
