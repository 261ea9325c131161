// SPDX-License-Identifier: MIT
// A resync's source identity on a real block device (origin/image.h): the
// same loop device attached again over other content, usually at the same
// number, is another source. Needs root and loop devices (skipped otherwise).
#include <doctest/doctest.h>

#include <fstream>
#include <string>

#include "origin/image.h"
#include "test/support/harness.h"
#include "test/support/requires.h"
#include "test/support/temp_dir.h"

TEST_CASE("a loop device attached again is another source, even at the same number") {
  test_support::require({test_support::loop_devices()});
  test_support::TempDir dir("origin_loop_test");
  REQUIRE(dir.ok());
  const std::string backing = dir / "disk.img";
  {
    std::ofstream f(backing, std::ios::binary);
    f << std::string(1 << 20, 'a');
  }
  std::string first, device;
  {
    harness::LoopDevice loop(backing);
    REQUIRE_MESSAGE(loop.attached(), loop.why());
    device = loop.device();
    base::Result<std::string> id = origin::source_identity(device);
    REQUIRE_MESSAGE(id.is_ok(), id.status().message());
    first = *id;
    CHECK(first.starts_with("block:"));
    CHECK_MESSAGE(!first.ends_with(":0"), first);             // this kernel numbers its disks (diskseq)
    CHECK(origin::source_identity(device).value() == first);  // reading changes nothing
  }
  harness::LoopDevice again(backing);
  REQUIRE_MESSAGE(again.attached(), again.why());
  base::Result<std::string> second = origin::source_identity(again.device());
  REQUIRE(second.is_ok());
  MESSAGE("first " << device << " " << first << ", then " << again.device() << " " << *second);
  CHECK(*second != first);
}
