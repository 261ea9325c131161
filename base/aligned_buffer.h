// SPDX-License-Identifier: MIT
// A heap buffer aligned for O_DIRECT I/O. Move-only; owns its memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <span>
#include <utility>

namespace base {

// 4096 satisfies the DMA alignment of every block device we meet and the
// logical block size of 512e and 4Kn disks alike.
inline constexpr size_t kIoAlignmentBytes = 4096;

class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  // Plain malloc, aligned by hand: glibc serves a large posix_memalign with a
  // fresh mmap every time (page faults, zeroing, and a munmap on free), while
  // malloc's adaptive threshold lets a steady stream of frames reuse the heap.
  explicit AlignedBuffer(size_t size_bytes, size_t alignment_bytes = kIoAlignmentBytes) {
    if (size_bytes == 0) return;
    raw_ = static_cast<uint8_t*>(std::malloc(size_bytes + alignment_bytes));
    if (raw_ == nullptr) throw std::bad_alloc();
    const uintptr_t at = reinterpret_cast<uintptr_t>(raw_);
    data_ = raw_ + (alignment_bytes - at % alignment_bytes) % alignment_bytes;
    size_ = size_bytes;
  }
  AlignedBuffer(AlignedBuffer&& o) noexcept
      : raw_(std::exchange(o.raw_, nullptr)), data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept {
    if (this != &o) {
      std::free(raw_);
      raw_ = std::exchange(o.raw_, nullptr);
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { std::free(raw_); }

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<uint8_t> span() { return {data_, size_}; }
  std::span<const uint8_t> span() const { return {data_, size_}; }

 private:
  uint8_t* raw_ = nullptr;   // what malloc returned; freed
  uint8_t* data_ = nullptr;  // raw_ rounded up to the alignment
  size_t size_ = 0;
};

}  // namespace base
