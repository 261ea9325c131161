// SPDX-License-Identifier: MIT
// Where a process's large buffers live: glibc's heap, kept mapped, and a part
// of it on transparent huge pages. For cloned's frames (up to 1 MiB + 4 KiB
// each, allocated by the loop thread, freed by the disk workers); see
// docs/PERFORMANCE.md, "Frames on huge pages".
#pragma once

#include <cstddef>
#include <cstdint>

namespace base {

// Buffers below 4 MiB come from the heap, not a fresh mmap each, and freed
// memory stays mapped (up to 64 MiB at the heap's top): a steady stream of
// frames reuses the same pages instead of faulting and zeroing them again.
// Call first thing in main, before other threads exist.
void keep_buffers_in_the_heap();

// A range of the heap marked MADV_HUGEPAGE.
struct HugeRange {
  uintptr_t begin = 0;
  size_t bytes = 0;  // 0: none
};

// Grows the main heap by up to `bytes` (at most 30 MiB, malloc's largest
// heap allocation) and asks the kernel to back it with transparent huge
// pages (madvise MADV_HUGEPAGE, honoured when
// /sys/kernel/mm/transparent_hugepage/enabled is "always" or "madvise"), then
// gives it back to malloc untouched: it becomes the heap's top, which the next
// large buffers are carved from, and stays mapped (call
// keep_buffers_in_the_heap first: this leaves malloc's mmap threshold at its
// 4 MiB). Nothing is resident until used. Returns the range marked, the
// 2 MiB-aligned inside of what the heap grew by; none when the kernel refuses
// or malloc did not take it from the heap. A hint: the process works the same
// without it. Call it from the thread that allocates the buffers (glibc gives
// the main thread the heap; other threads their own arenas) before it
// allocates many.
HugeRange heap_on_huge_pages(size_t bytes);

}  // namespace base
