// SPDX-License-Identifier: MIT
// Guarded<T>: one small secret (a key, the derived keys) in memory of its own,
// from libsodium's sodium_malloc: pages of their own between inaccessible guard
// pages, locked in RAM (mlock: never swapped out) and marked MADV_DONTDUMP, so
// that a core dump (the watchdog's SIGABRT included) does not hold them. After
// seal() the pages are read-only: a stray write faults instead of changing a
// key. The destructor wipes and unmaps them (sodium_free).
//
// A Guarded is moved, never copied: a copy would be a key in ordinary memory.
// The mlock can fail under a low RLIMIT_MEMLOCK; the pages are then still
// excluded from dumps and guarded, only swappable (docs/SECURITY.md, "Keys").
//
// Threading: the value may be read from any thread; seal() before sharing it.
#pragma once

#include <sodium.h>

#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace proto {

template <class T>
class Guarded {
  static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T>,
                "only plain bytes belong in guarded memory");

 public:
  Guarded() {
    if (sodium_init() < 0) throw std::bad_alloc();
    void* p = sodium_malloc(sizeof(T));
    if (p == nullptr) throw std::bad_alloc();
    sodium_memzero(p, sizeof(T));
    value_ = std::construct_at(static_cast<T*>(p));
  }
  explicit Guarded(const T& value) : Guarded() { *value_ = value; }
  ~Guarded() {
    if (value_ != nullptr) sodium_free(value_);  // makes it writable, wipes, unmaps
  }
  Guarded(Guarded&& other) noexcept : value_(std::exchange(other.value_, nullptr)) {}
  Guarded& operator=(Guarded&& other) noexcept {
    if (this != &other) {
      if (value_ != nullptr) sodium_free(value_);
      value_ = std::exchange(other.value_, nullptr);
    }
    return *this;
  }
  Guarded(const Guarded&) = delete;
  Guarded& operator=(const Guarded&) = delete;

  // Read-only from now on.
  void seal() { sodium_mprotect_readonly(value_); }

  T& operator*() { return *value_; }
  const T& operator*() const { return *value_; }
  T* operator->() { return value_; }
  const T* operator->() const { return value_; }

 private:
  T* value_ = nullptr;
};

}  // namespace proto
