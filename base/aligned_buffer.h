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
  explicit AlignedBuffer(size_t size_bytes, size_t alignment_bytes = kIoAlignmentBytes) {
    if (size_bytes == 0) return;
    void* p = nullptr;
    if (posix_memalign(&p, alignment_bytes, size_bytes) != 0) throw std::bad_alloc();
    data_ = static_cast<uint8_t*>(p);
    size_ = size_bytes;
  }
  AlignedBuffer(AlignedBuffer&& o) noexcept : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept {
    if (this != &o) {
      std::free(data_);
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { std::free(data_); }

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<uint8_t> span() { return {data_, size_}; }
  std::span<const uint8_t> span() const { return {data_, size_}; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace base
