// SPDX-License-Identifier: MIT
#include <doctest/doctest.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "base/heap.h"
#include "test/support/sanitizer.h"

namespace {

// The VmFlags line of the mapping in /proc/self/smaps that holds `address`.
std::string vm_flags_at(uintptr_t address) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    uintptr_t lo = 0, hi = 0;
    char dash = 0;
    std::istringstream range(line);
    if (range >> std::hex >> lo >> dash >> hi && dash == '-') {
      inside = address >= lo && address < hi;
      continue;
    }
    if (inside && line.rfind("VmFlags:", 0) == 0) return line;
  }
  return "";
}

}  // namespace

TEST_CASE("heap_on_huge_pages marks a part of the heap, and the next large buffers come from it") {
  base::keep_buffers_in_the_heap();
  const base::HugeRange range = base::heap_on_huge_pages(16u << 20);
  if (test_support::kAddressSanitizer || test_support::kThreadSanitizer) {
    // The sanitizer's allocator is not glibc's heap: nothing is marked, and
    // nothing breaks.
    CHECK(range.bytes == 0);
    void* p = std::malloc(1u << 20);
    REQUIRE(p != nullptr);
    std::memset(p, 1, 1u << 20);
    std::free(p);
    return;
  }
  if (std::ifstream("/sys/kernel/mm/transparent_hugepage/enabled").fail()) {
    // A kernel built without THP refuses the advice (EINVAL): nothing marked.
    CHECK(range.bytes == 0);
    return;
  }
  // 16 MiB grown, less at most 2 MiB at each end to align: 12 MiB or more.
  REQUIRE(range.bytes >= (12u << 20));
  CHECK(range.begin % (2u << 20) == 0);
  CHECK(range.bytes % (2u << 20) == 0);
  // "hg": MADV_HUGEPAGE, whatever the system's THP mode makes of it.
  const std::string flags = vm_flags_at(range.begin);
  INFO("VmFlags: " << flags);
  CHECK(flags.find(" hg") != std::string::npos);
  CHECK(vm_flags_at(range.begin + range.bytes - 1) == flags);
  // The marked memory went back to malloc as the heap's top: large buffers
  // allocated now are carved from it.
  std::vector<void*> buffers;
  int inside = 0;
  for (int i = 0; i < 8; ++i) {
    void* p = std::malloc(1u << 20);
    REQUIRE(p != nullptr);
    std::memset(p, 1, 1u << 20);
    const uintptr_t at = reinterpret_cast<uintptr_t>(p);
    if (at >= range.begin && at + (1u << 20) <= range.begin + range.bytes) ++inside;
    buffers.push_back(p);
  }
  for (void* p : buffers) std::free(p);
  CHECK(inside >= 4);
}

TEST_CASE("heap_on_huge_pages marks nothing for less than two huge pages") {
  CHECK(base::heap_on_huge_pages(3u << 20).bytes == 0);
}
