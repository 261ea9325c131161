// SPDX-License-Identifier: MIT
// The real device on regular files: O_DIRECT, zeroing, discard, locking.
#include <doctest/doctest.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <vector>

#include "blockio/disk.h"
#include "blockio/faulty_device.h"
#include "blockio/tests/test_support.h"
#include "test/support/requires.h"

using blockio_test::all_bytes;
using blockio_test::filled;
using blockio_test::pattern;
using blockio_test::same_bytes;
using blockio_test::TempDir;

namespace {

constexpr uint64_t kImageBytes = 4 << 20;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Filesystems on which O_DIRECT must work (so a buffered fallback there is a bug).
bool supports_direct_io(const std::string& path) {
  struct statfs fs {};
  if (::statfs(path.c_str(), &fs) != 0) return false;
  const auto type = static_cast<unsigned long>(fs.f_type);
  return type == EXT4_SUPER_MAGIC || type == XFS_SUPER_MAGIC || type == BTRFS_SUPER_MAGIC;
}

std::unique_ptr<blockio::BlockDevice> open_image(const TempDir& dir, const std::string& name,
                                                 const blockio::OpenOptions& options = {}) {
  REQUIRE(dir.ok());
  REQUIRE(blockio::create_image_file(dir.file(name), kImageBytes).is_ok());
  auto device = blockio::open_disk(dir.file(name), options);
  REQUIRE_MESSAGE(device.is_ok(), device.status().message());
  return std::move(device).value();
}

}  // namespace

TEST_CASE("an image file is created sparse and zeroed, and a wrong size is refused") {
  TempDir dir;
  REQUIRE(dir.ok());
  const std::string path = dir.file("disk.img");
  REQUIRE(blockio::create_image_file(path, kImageBytes).is_ok());
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK(static_cast<uint64_t>(st.st_size) == kImageBytes);
  CHECK(blockio::create_image_file(path, kImageBytes).is_ok());  // same size: accepted as is
  const base::Status other_size = blockio::create_image_file(path, 2 * kImageBytes);
  CHECK(other_size.code() == EEXIST);
  CHECK(contains(other_size.message(), std::to_string(kImageBytes)));
  CHECK(contains(other_size.message(), "delete it"));
  CHECK(blockio::create_image_file(dir.file("odd.img"), 1000).code() == EINVAL);
  CHECK(blockio::create_image_file(dir.file("none/x.img"), 4096).code() == ENOENT);
}

TEST_CASE("an image file opens with O_DIRECT and round-trips aligned data") {
  TempDir dir;
  std::unique_ptr<blockio::BlockDevice> device = open_image(dir, "disk.img");
  const blockio::Geometry geometry = device->geometry();
  CHECK(geometry.size_bytes == kImageBytes);
  CHECK(geometry.logical_block_bytes == 512);
  CHECK(geometry.physical_block_bytes >= 512);
  CHECK(contains(device->describe(), "file " + dir.file("disk.img")));
  if (supports_direct_io(dir.path())) {
    CHECK(contains(device->describe(), "O_DIRECT"));
  } else {
    MESSAGE("the filesystem of " << dir.path() << " is not ext4/xfs/btrfs; O_DIRECT is not required there");
  }
  const base::AlignedBuffer data = pattern(64 * 1024, 5);
  REQUIRE(device->write(512 * 3, data.span()).is_ok());  // 512-aligned offset, 4096-aligned buffer
  REQUIRE(device->flush().is_ok());
  base::AlignedBuffer out(64 * 1024);
  REQUIRE(device->read(512 * 3, out.span()).is_ok());
  CHECK(same_bytes(out, data));
  // The last block of the file, and nothing past it, is in reach.
  const base::AlignedBuffer tail = filled(4096, 0xee);
  CHECK(device->write(kImageBytes - 4096, tail.span()).is_ok());
}

TEST_CASE("a batch of writes lands like the same writes one by one, adjacent ones merged or not") {
  TempDir dir;
  std::unique_ptr<blockio::BlockDevice> device = open_image(dir, "disk.img");
  // Out of order on the disk; ops 1-3 adjacent (one vectored write), op 4
  // alone, op 5 ends at the disk's end, op 6 adjacent to op 0.
  const uint64_t offsets[] = {8192, 65536, 65536 + 4096, 65536 + 12288, 1 << 20, kImageBytes - 4096, 8192 + 4096};
  const size_t sizes[] = {4096, 4096, 8192, 512, 4096, 4096, 16384};
  std::vector<base::AlignedBuffer> data;
  std::vector<blockio::WriteOp> ops;
  for (size_t i = 0; i < std::size(offsets); ++i) data.push_back(pattern(sizes[i], static_cast<uint8_t>(20 + i)));
  for (size_t i = 0; i < std::size(offsets); ++i) ops.push_back({offsets[i], data[i].span(), {}});
  device->write_batch(ops);
  for (size_t i = 0; i < ops.size(); ++i) {
    CAPTURE(i);
    CHECK_MESSAGE(ops[i].status.is_ok(), ops[i].status.message());
    base::AlignedBuffer out(sizes[i]);
    REQUIRE(device->read(offsets[i], out.span()).is_ok());
    CHECK(same_bytes(out, data[i]));
  }
}

TEST_CASE("read_each hands over every piece in order, the last one shorter, on O_DIRECT and buffered opens") {
  for (const bool direct : {true, false}) {
    CAPTURE(direct);
    TempDir dir;
    blockio::OpenOptions options;
    options.direct_io = direct;
    std::unique_ptr<blockio::BlockDevice> device = open_image(dir, "disk.img", options);
    const base::AlignedBuffer data = pattern(kImageBytes, 7);
    REQUIRE(device->write(0, data.span()).is_ok());
    // 1 MiB + 4 KiB from offset 12 KiB, in 64 KiB pieces: 16 whole and one of 4 KiB.
    const uint64_t from = 12288, length = (1 << 20) + 4096, piece = 65536;
    std::vector<uint64_t> offsets;
    std::vector<uint8_t> got;
    const base::Status s = device->read_each(from, length, piece, [&](uint64_t at, base::ByteSpan bytes) {
      offsets.push_back(at);
      got.insert(got.end(), bytes.begin(), bytes.end());
    });
    REQUIRE_MESSAGE(s.is_ok(), s.message());
    REQUIRE(offsets.size() == 17);
    for (size_t i = 0; i < offsets.size(); ++i) CHECK(offsets[i] == from + i * piece);
    REQUIRE(got.size() == length);
    CHECK(std::equal(got.begin(), got.end(), data.data() + from));
  }
}

TEST_CASE("read_each stops at the first piece that cannot be read, after handing over the ones before it") {
  TempDir dir;
  std::unique_ptr<blockio::BlockDevice> device = open_image(dir, "disk.img");
  const base::AlignedBuffer data = pattern(kImageBytes, 9);
  REQUIRE(device->write(0, data.span()).is_ok());
  // The file shrinks under the open device: pieces past its new end read short.
  REQUIRE(::truncate(dir.file("disk.img").c_str(), 1 << 20) == 0);
  std::vector<uint64_t> offsets;
  const base::Status s = device->read_each(0, 2 << 20, 256 << 10, [&](uint64_t at, base::ByteSpan bytes) {
    offsets.push_back(at);
    CHECK(std::equal(bytes.begin(), bytes.end(), data.data() + at));
  });
  CHECK(s.code() == EIO);
  CHECK_MESSAGE(contains(s.message(), "1048576"), s.message());  // where the read ended early
  CHECK(offsets == std::vector<uint64_t>{0, 256 << 10, 512 << 10, 768 << 10});
}

TEST_CASE("write_zeroes and discard on an image file read back zeroes and keep its size") {
  TempDir dir;
  std::unique_ptr<blockio::BlockDevice> device = open_image(dir, "disk.img");
  const base::AlignedBuffer data = filled(1 << 20, 0xc3);
  REQUIRE(device->write(0, data.span()).is_ok());
  REQUIRE(device->write_zeroes(4096, 8192).is_ok());
  REQUIRE(device->discard(65536, 131072).is_ok());
  REQUIRE(device->flush().is_ok());
  base::AlignedBuffer out(1 << 20);
  REQUIRE(device->read(0, out.span()).is_ok());
  CHECK(all_bytes(out.data(), 4096, 0xc3));
  CHECK(all_bytes(out.data() + 4096, 8192, 0));
  CHECK(all_bytes(out.data() + 12288, 65536 - 12288, 0xc3));
  CHECK(all_bytes(out.data() + 65536, 131072, 0));
  CHECK(all_bytes(out.data() + 65536 + 131072, (1 << 20) - 65536 - 131072, 0xc3));
  struct stat st {};
  REQUIRE(::stat(dir.file("disk.img").c_str(), &st) == 0);
  CHECK(static_cast<uint64_t>(st.st_size) == kImageBytes);
}

TEST_CASE("flushed writes to an image file are there after it is closed and opened again") {
  TempDir dir;
  const base::AlignedBuffer data = pattern(8192, 77);
  {
    std::unique_ptr<blockio::BlockDevice> device = open_image(dir, "disk.img");
    REQUIRE(device->write(1 << 20, data.span()).is_ok());
    REQUIRE(device->flush().is_ok());
  }
  auto again = blockio::open_disk(dir.file("disk.img"));
  REQUIRE(again.is_ok());
  base::AlignedBuffer out(8192);
  REQUIRE(again.value()->read(1 << 20, out.span()).is_ok());
  CHECK(same_bytes(out, data));
}

TEST_CASE("an image file on tmpfs opens, with O_DIRECT or the buffered fallback" *
          doctest::test_suite("requires tmpfs")) {
  test_support::require({test_support::device("/dev/shm", "(tmpfs) for a temporary directory")});
  TempDir dir("/dev/shm");
  REQUIRE(dir.ok());
  std::unique_ptr<blockio::BlockDevice> device = open_image(dir, "disk.img");
  CHECK((contains(device->describe(), "O_DIRECT") || contains(device->describe(), "buffered")));
  const base::AlignedBuffer data = pattern(4096, 1);
  REQUIRE(device->write(0, data.span()).is_ok());
  REQUIRE(device->write_zeroes(4096, 4096).is_ok());
  REQUIRE(device->discard(8192, 4096).is_ok());
  REQUIRE(device->flush().is_ok());
  base::AlignedBuffer out(4096);
  REQUIRE(device->read(0, out.span()).is_ok());
  CHECK(same_bytes(out, data));
}

TEST_CASE("a buffered open of an image file accepts unaligned buffers") {
  TempDir dir;
  std::unique_ptr<blockio::BlockDevice> device = open_image(dir, "disk.img", {.direct_io = false});
  CHECK(contains(device->describe(), "buffered"));
  std::vector<uint8_t> data(513 + 512, 0x3c);
  REQUIRE(device->write(512, base::ByteSpan(data.data() + 1, 512)).is_ok());
  std::vector<uint8_t> out(513 + 512, 0);
  REQUIRE(device->read(512, base::MutableByteSpan(out.data() + 1, 512)).is_ok());
  CHECK(all_bytes(out.data() + 1, 512, 0x3c));
}

TEST_CASE("a second open of an image file fails while the first holds its lock") {
  TempDir dir;
  std::unique_ptr<blockio::BlockDevice> first = open_image(dir, "disk.img");
  auto second = blockio::open_disk(dir.file("disk.img"));
  REQUIRE_FALSE(second.is_ok());
  CHECK(second.status().code() == EWOULDBLOCK);
  CHECK(contains(second.status().message(), "another program holds a lock on " + dir.file("disk.img")));
  first.reset();
  CHECK(blockio::open_disk(dir.file("disk.img")).is_ok());  // the lock went with the fd
}

TEST_CASE("open_disk refuses a missing path and an image of a size that is not whole sectors") {
  TempDir dir;
  REQUIRE(dir.ok());
  auto missing = blockio::open_disk(dir.file("missing.img"));
  REQUIRE_FALSE(missing.is_ok());
  CHECK(missing.status().code() == ENOENT);
  CHECK(contains(missing.status().message(), dir.file("missing.img")));
  std::ofstream(dir.file("odd.img")) << "not a disk";
  auto odd = blockio::open_disk(dir.file("odd.img"));
  REQUIRE_FALSE(odd.is_ok());
  CHECK(contains(odd.status().message(), "not a positive multiple of 512"));
}

TEST_CASE("a faulty device over an O_DIRECT image passes flushed operations on") {
  TempDir dir;
  blockio::FaultyDevice device(open_image(dir, "disk.img"), 11);
  const base::AlignedBuffer data = pattern(8192, 21);
  REQUIRE(device.write(4096, data.span()).is_ok());
  REQUIRE(device.write_zeroes(16384, 4096).is_ok());
  REQUIRE(device.flush().is_ok());
  const base::AlignedBuffer lost = filled(4096, 0xdd);
  REQUIRE(device.write(32768, lost.span()).is_ok());
  device.power_cut(blockio::PowerCutMode::drop_unflushed);
  device.revive();
  base::AlignedBuffer out(8192);
  REQUIRE(device.inner().read(4096, out.span()).is_ok());
  CHECK(same_bytes(out, data));
  base::AlignedBuffer gone(4096);
  REQUIRE(device.inner().read(32768, gone.span()).is_ok());
  CHECK(all_bytes(gone.data(), 4096, 0));
}
