// SPDX-License-Identifier: MIT
// The fault injector: overlay reads, power cuts, injected write and flush failures.
#include <doctest/doctest.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "blockio/faulty_device.h"
#include "blockio/memory_device.h"
#include "blockio/tests/test_support.h"

using blockio_test::all_bytes;
using blockio_test::filled;

namespace {

constexpr uint64_t kDiskBytes = 1 << 20;
constexpr size_t kBlock = 4096;

blockio::FaultyDevice make_device(uint64_t seed) {
  return blockio::FaultyDevice(std::make_unique<blockio::MemoryDevice>(kDiskBytes), seed);
}

// The byte at `offset` as the inner device holds it (what survives a power cut).
uint8_t inner_byte(blockio::FaultyDevice& device, uint64_t offset_bytes) {
  base::AlignedBuffer block(512);
  REQUIRE(device.inner().read(offset_bytes / 512 * 512, block.span()).is_ok());
  return block.data()[offset_bytes % 512];
}

void write_block(blockio::FaultyDevice& device, uint64_t index, uint8_t value) {
  const base::AlignedBuffer data = filled(kBlock, value);
  REQUIRE(device.write(index * kBlock, data.span()).is_ok());
}

}  // namespace

TEST_CASE("reads through the faulty device see unflushed operations applied in order") {
  blockio::FaultyDevice device = make_device(1);
  const base::AlignedBuffer old_data = filled(8 * kBlock, 0xaa);
  REQUIRE(device.inner().write(0, old_data.span()).is_ok());

  write_block(device, 1, 0x11);
  write_block(device, 2, 0x11);
  REQUIRE(device.write_zeroes(4 * kBlock, kBlock).is_ok());
  REQUIRE(device.discard(5 * kBlock, kBlock).is_ok());
  write_block(device, 2, 0x22);  // later write wins where they overlap
  CHECK(device.unflushed_count() == 5);

  base::AlignedBuffer out(8 * kBlock);
  REQUIRE(device.read(0, out.span()).is_ok());
  CHECK(all_bytes(out.data(), kBlock, 0xaa));
  CHECK(all_bytes(out.data() + kBlock, kBlock, 0x11));
  CHECK(all_bytes(out.data() + 2 * kBlock, kBlock, 0x22));
  CHECK(all_bytes(out.data() + 3 * kBlock, kBlock, 0xaa));
  CHECK(all_bytes(out.data() + 4 * kBlock, 2 * kBlock, 0));
  // A read that starts inside an overlay entry sees only its part of it.
  base::AlignedBuffer middle(1024);
  REQUIRE(device.read(2 * kBlock + 512, middle.span()).is_ok());
  CHECK(all_bytes(middle.data(), middle.size(), 0x22));

  CHECK(inner_byte(device, kBlock) == 0xaa);  // nothing reached the inner device yet
  REQUIRE(device.flush().is_ok());
  CHECK(device.unflushed_count() == 0);
  CHECK(inner_byte(device, kBlock) == 0x11);
  CHECK(inner_byte(device, 2 * kBlock) == 0x22);
  CHECK(inner_byte(device, 5 * kBlock) == 0);
}

TEST_CASE("drop_unflushed loses exactly the operations since the last flush") {
  blockio::FaultyDevice device = make_device(2);
  write_block(device, 0, 0x01);
  write_block(device, 1, 0x02);
  REQUIRE(device.flush().is_ok());
  write_block(device, 1, 0x03);
  write_block(device, 2, 0x04);
  REQUIRE(device.write_zeroes(0, kBlock).is_ok());
  device.power_cut(blockio::PowerCutMode::drop_unflushed);
  CHECK_FALSE(device.is_powered());
  device.revive();
  CHECK(device.unflushed_count() == 0);
  CHECK(inner_byte(device, 0) == 0x01);
  CHECK(inner_byte(device, kBlock) == 0x02);
  CHECK(inner_byte(device, 2 * kBlock) == 0);
}

TEST_CASE("after a power cut every operation fails with EIO until revive") {
  blockio::FaultyDevice device = make_device(3);
  device.power_cut(blockio::PowerCutMode::drop_unflushed);
  const base::AlignedBuffer data = filled(kBlock, 1);
  base::AlignedBuffer out(kBlock);
  const base::Status write_status = device.write(0, data.span());
  CHECK(write_status.code() == EIO);
  CHECK(write_status.message().find("power cut") != std::string::npos);
  CHECK(device.read(0, out.span()).code() == EIO);
  CHECK(device.write_zeroes(0, kBlock).code() == EIO);
  CHECK(device.discard(0, kBlock).code() == EIO);
  CHECK(device.flush().code() == EIO);
  CHECK(device.write_count() == 0);  // refused writes are not counted
  device.revive();
  CHECK(device.is_powered());
  CHECK(device.write(0, data.span()).is_ok());
  CHECK(device.flush().is_ok());
}

TEST_CASE("keep_random keeps a seeded subset of whole unflushed writes") {
  constexpr uint64_t kWrites = 64;
  auto survivors = [](uint64_t seed) {
    blockio::FaultyDevice device = make_device(seed);
    for (uint64_t i = 0; i < kWrites; ++i) write_block(device, i, static_cast<uint8_t>(i + 1));
    device.power_cut(blockio::PowerCutMode::keep_random);
    device.revive();
    std::vector<bool> kept;
    for (uint64_t i = 0; i < kWrites; ++i) {
      base::AlignedBuffer block(kBlock);
      REQUIRE(device.inner().read(i * kBlock, block.span()).is_ok());
      const bool whole_new = all_bytes(block.data(), kBlock, static_cast<uint8_t>(i + 1));
      CAPTURE(i);
      CHECK((whole_new || all_bytes(block.data(), kBlock, 0)));  // never half of one
      kept.push_back(whole_new);
    }
    return kept;
  };
  const std::vector<bool> first = survivors(42);
  const auto kept_count = std::count(first.begin(), first.end(), true);
  CHECK(kept_count > 0);
  CHECK(kept_count < static_cast<long>(kWrites));
  CHECK(survivors(42) == first);  // the seed replays the same cut
}

TEST_CASE("tear_one keeps a strict prefix of sectors of one unflushed write") {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    CAPTURE(seed);
    blockio::FaultyDevice device = make_device(seed);
    const base::AlignedBuffer data = filled(32 * 512, 0x77);
    REQUIRE(device.write(8192, data.span()).is_ok());
    device.power_cut(blockio::PowerCutMode::tear_one);
    device.revive();
    base::AlignedBuffer out(32 * 512);
    REQUIRE(device.inner().read(8192, out.span()).is_ok());
    size_t kept_sectors = 0;
    while (kept_sectors < 32 && all_bytes(out.data() + kept_sectors * 512, 512, 0x77)) ++kept_sectors;
    CHECK(kept_sectors >= 1);
    CHECK(kept_sectors < 32);
    CHECK(all_bytes(out.data() + kept_sectors * 512, (32 - kept_sectors) * 512, 0));
  }
}

TEST_CASE("fail_write_after lets n writes through and applies none of the failed ones") {
  blockio::FaultyDevice device = make_device(4);
  write_block(device, 7, 0x70);  // before the plan: not counted against it
  device.set_plan(blockio::FaultPlan{.fail_write_after = 2});
  const base::AlignedBuffer data = filled(kBlock, 0x5e);
  CHECK(device.write(0, data.span()).is_ok());
  CHECK(device.write(kBlock, data.span()).is_ok());
  const base::Status third = device.write(2 * kBlock, data.span());
  CHECK(third.code() == EIO);
  CHECK(third.message().find("injected") != std::string::npos);
  CHECK(device.write(3 * kBlock, data.span()).code() == EIO);
  CHECK(device.write_count() == 5);
  REQUIRE(device.flush().is_ok());
  CHECK(inner_byte(device, kBlock) == 0x5e);
  CHECK(inner_byte(device, 2 * kBlock) == 0);
  CHECK(inner_byte(device, 3 * kBlock) == 0);
  device.set_plan({});
  CHECK(device.write(2 * kBlock, data.span()).is_ok());
}

TEST_CASE("write_error_rate with a seed fails the same writes on every run") {
  auto outcomes = [](uint64_t seed) {
    blockio::FaultyDevice device = make_device(seed);
    device.set_plan(blockio::FaultPlan{.write_error_rate = 0.3, .error_code = ENOSPC});
    std::vector<bool> failed;
    for (uint64_t i = 0; i < 200; ++i) {
      const base::AlignedBuffer data = filled(kBlock, 0x42);
      const base::Status status = device.write((i % 256) * kBlock, data.span());
      if (!status.is_ok()) CHECK(status.code() == ENOSPC);
      failed.push_back(!status.is_ok());
    }
    return failed;
  };
  const std::vector<bool> first = outcomes(7);
  const auto failures = std::count(first.begin(), first.end(), true);
  CHECK(failures > 20);
  CHECK(failures < 110);
  CHECK(outcomes(7) == first);
}

TEST_CASE("a failed flush keeps the writes unflushed and a power cut then loses them") {
  blockio::FaultyDevice device = make_device(5);
  device.set_plan(blockio::FaultPlan{.fail_flush_after = 1});
  write_block(device, 0, 0x31);
  REQUIRE(device.flush().is_ok());
  write_block(device, 1, 0x32);
  const base::Status failed = device.flush();
  CHECK(failed.code() == EIO);
  CHECK(failed.message().find("flush") != std::string::npos);
  CHECK(device.flush_count() == 2);
  CHECK(device.unflushed_count() == 1);
  device.power_cut(blockio::PowerCutMode::drop_unflushed);
  device.revive();
  CHECK(inner_byte(device, 0) == 0x31);
  CHECK(inner_byte(device, kBlock) == 0);
}

TEST_CASE("a power cut with nothing unflushed changes nothing") {
  blockio::FaultyDevice device = make_device(6);
  write_block(device, 3, 0x99);
  REQUIRE(device.flush().is_ok());
  device.power_cut(blockio::PowerCutMode::tear_one);
  device.revive();
  CHECK(inner_byte(device, 3 * kBlock) == 0x99);
  CHECK(device.describe() == "faulty memory 1 MiB");
}
