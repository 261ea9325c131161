// SPDX-License-Identifier: MIT
// The memory device.
#include <doctest/doctest.h>

#include <algorithm>

#include "blockio/memory_device.h"
#include "blockio/tests/test_support.h"

using blockio_test::filled;
using blockio_test::pattern;

TEST_CASE("the memory device starts zeroed and reads back what was written") {
  blockio::MemoryDevice device(1 << 20);
  CHECK(device.geometry().size_bytes == 1u << 20);
  CHECK(device.geometry().logical_block_bytes == 512);
  CHECK(device.describe() == "memory 1 MiB");
  base::AlignedBuffer out = filled(8192, 0xff);
  REQUIRE(device.read(0, out.span()).is_ok());
  CHECK(blockio_test::all_bytes(out.data(), out.size(), 0));

  const base::AlignedBuffer data = pattern(8192, 9);
  REQUIRE(device.write(4096, data.span()).is_ok());
  REQUIRE(device.read(4096, out.span()).is_ok());
  CHECK(blockio_test::same_bytes(out, data));
  const std::vector<uint8_t> image = device.contents();
  CHECK(std::equal(data.data(), data.data() + data.size(), image.begin() + 4096));
}

TEST_CASE("the memory device zeroes and discards to zeroes and counts flushes") {
  blockio::MemoryDevice device(1 << 20, 4096);
  const base::AlignedBuffer data = filled(16384, 0xab);
  REQUIRE(device.write(0, data.span()).is_ok());
  REQUIRE(device.write_zeroes(0, 4096).is_ok());
  REQUIRE(device.discard(8192, 4096).is_ok());
  base::AlignedBuffer out(16384);
  REQUIRE(device.read(0, out.span()).is_ok());
  CHECK(blockio_test::all_bytes(out.data(), 4096, 0));
  CHECK(blockio_test::all_bytes(out.data() + 4096, 4096, 0xab));
  CHECK(blockio_test::all_bytes(out.data() + 8192, 4096, 0));
  CHECK(blockio_test::all_bytes(out.data() + 12288, 4096, 0xab));
  CHECK(device.flush_count() == 0);
  REQUIRE(device.flush().is_ok());
  CHECK(device.flush_count() == 1);
}
