// SPDX-License-Identifier: MIT
// Operating errors as values (leveldb's Status, libuv's negative codes).
//
// A Status is ok, or carries an errno-style code (positive, e.g. EIO) and a
// message that reads as a sentence for a user: what happened, with context
// (offset=, len=), and what to do when that is known. Programmer errors are
// assertions, never a Status.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace base {

class [[nodiscard]] Status {
 public:
  Status() = default;  // ok
  static Status ok() { return Status(); }
  // `code` is an errno value (> 0). `message` is a full sentence.
  static Status error(int code, std::string message) {
    assert(code > 0);
    return Status(code, std::move(message));
  }
  // Error from the current errno, prefixed with what was being done:
  // from_errno("cannot open /dev/sda") -> "cannot open /dev/sda: Permission denied".
  static Status from_errno(const std::string& what);
  static Status from_errno(int err, const std::string& what);

  bool is_ok() const { return code_ == 0; }
  explicit operator bool() const { return is_ok(); }
  int code() const { return code_; }
  const std::string& message() const { return message_; }
  // The message with more context appended or prepended.
  Status with_context(const std::string& prefix) const;

 private:
  Status(int code, std::string message) : code_(code), message_(std::move(message)) {}
  int code_ = 0;
  std::string message_;
};

// A value or an error Status. Small, for C++20 (no std::expected).
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}          // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {   // NOLINT: implicit by design
    assert(!status_.is_ok());
  }
  bool is_ok() const { return value_.has_value(); }
  explicit operator bool() const { return is_ok(); }
  const Status& status() const { return status_; }
  T& value() & { assert(value_); return *value_; }
  const T& value() const& { assert(value_); return *value_; }
  T&& value() && { assert(value_); return std::move(*value_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace base

// Return early with the status of an expression that yields a Status.
#define BASE_TRY(expr)                         \
  do {                                         \
    ::base::Status base_try_status_ = (expr);  \
    if (!base_try_status_.is_ok()) return base_try_status_; \
  } while (0)
