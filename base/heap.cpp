// SPDX-License-Identifier: MIT
#include "base/heap.h"

#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

namespace base {

namespace {

constexpr int kMmapThresholdBytes = 4 << 20;
constexpr int kTrimThresholdBytes = 64 << 20;
// glibc's largest M_MMAP_THRESHOLD on 64-bit targets is 32 MiB; a little
// under it, so that the one allocation below is certainly a heap one.
constexpr size_t kLargestHeapChunkBytes = 30u << 20;
// The PMD-sized transparent huge page of x86-64 and of arm64 with 4 KiB pages.
constexpr uintptr_t kHugePageBytes = 2u << 20;

}  // namespace

// With glibc's defaults a steady stream of large buffers makes the heap's top
// shrink (brk) and grow again, each regrowth paid in page faults and zeroing:
// 75 faults per 1 MiB frame in cloned (docs/PERFORMANCE.md). Peak RSS is
// unchanged: what is live bounds it.
void keep_buffers_in_the_heap() {
  (void)::mallopt(M_MMAP_THRESHOLD, kMmapThresholdBytes);
  (void)::mallopt(M_TRIM_THRESHOLD, kTrimThresholdBytes);
}

HugeRange heap_on_huge_pages(size_t bytes) {
  bytes = std::min(bytes, kLargestHeapChunkBytes);
  if (bytes < 2 * kHugePageBytes) return {};
  // One chunk, so that malloc writes a header only before it and after it:
  // a page touched inside a 2 MiB range before the madvise would leave that
  // range on small pages.
  (void)::mallopt(M_MMAP_THRESHOLD, static_cast<int>(kLargestHeapChunkBytes + kHugePageBytes));
  void* chunk = std::malloc(bytes);
  (void)::mallopt(M_MMAP_THRESHOLD, kMmapThresholdBytes);
  if (chunk == nullptr) return {};
  const uintptr_t at = reinterpret_cast<uintptr_t>(chunk);
  // From the heap (below the program break), not a mapping of its own that
  // free would unmap, marking and all (a heap that cannot grow in place).
  const bool in_heap = at + bytes <= reinterpret_cast<uintptr_t>(::sbrk(0));
  const uintptr_t begin = (at + kHugePageBytes - 1) & ~(kHugePageBytes - 1);
  const uintptr_t end = (at + bytes) & ~(kHugePageBytes - 1);
  HugeRange marked;
  if (in_heap && end > begin && ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE) == 0)
    marked = {begin, end - begin};
  // Back into the heap's top; below the trim threshold, it stays mapped.
  std::free(chunk);
  return marked;
}

}  // namespace base
