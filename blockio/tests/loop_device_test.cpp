// SPDX-License-Identifier: MIT
// The real device on a loop device this test creates (needs root). Every loop
// device is detached and every image deleted on scope exit, failed or not;
// no other disk is opened.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include "blockio/disk.h"
#include "blockio/tests/test_support.h"
#include "blockio/unique_fd.h"
#include "test/support/harness.h"
#include "test/support/requires.h"

using blockio_test::all_bytes;
using blockio_test::filled;
using blockio_test::pattern;
using blockio_test::same_bytes;
using blockio_test::TempDir;
using test_support::first_line_of;
using test_support::is_block_device;

namespace {

constexpr uint64_t kLoopBytes = 64 << 20;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

int sh(const std::string& command, std::string& out) {
  return harness::run({"/bin/sh", "-c", command + " 2>&1"}, out, 60000);
}

// One MBR partition of 32 MiB from sector 2048, so that the loop device has a
// partition for the in-use checks.
void write_partition_table(const std::string& image) {
  std::fstream file(image, std::ios::in | std::ios::out | std::ios::binary);
  const uint8_t entry[16] = {0, 0, 0, 0, 0x83, 0, 0, 0, 0x00, 0x08, 0, 0, 0x00, 0x00, 0x01, 0};
  file.seekp(446);
  file.write(reinterpret_cast<const char*>(entry), sizeof entry);
  file.seekp(510);
  file.write("\x55\xaa", 2);
}

// A loop device over a fresh 64 MiB image; detached and deleted on scope exit.
class LoopDevice {
 public:
  explicit LoopDevice(bool partitioned = false, unsigned sector_bytes = 512) {
    if (::geteuid() != 0) {
      error_ = "needs root to attach a loop device (run the tests as root to cover block devices)";
      return;
    }
    if (!dir_.ok() || !blockio::create_image_file(dir_.file("loop.img"), kLoopBytes).is_ok()) {
      error_ = "cannot create an image file in /var/tmp";
      return;
    }
    if (partitioned) write_partition_table(dir_.file("loop.img"));
    path_ =
        first_line_of(std::string("losetup --find --show ") + (partitioned ? "--partscan " : "") + "--sector-size " +
                      std::to_string(sector_bytes) + " " + dir_.file("loop.img") + " 2>/dev/null");
    if (!is_block_device(path_)) {
      error_ = "losetup could not attach a loop device (no loop support in this kernel or container?)";
      path_.clear();
    }
  }
  ~LoopDevice() {
    if (!path_.empty() && std::system(("losetup -d " + path_).c_str()) != 0)
      std::fprintf(stderr, "could not detach %s; detach it with losetup -d\n", path_.c_str());
  }  // dir_ then deletes the image
  LoopDevice(const LoopDevice&) = delete;
  LoopDevice& operator=(const LoopDevice&) = delete;

  bool ready() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  const std::string& path() const { return path_; }
  std::string scratch(const std::string& name) const { return dir_.file(name); }

  // The node of partition 1, waiting for the kernel (or asking partx) to add it.
  std::string first_partition() const {
    const std::string node = path_ + "p1";
    for (int attempt = 0; attempt < 40 && !is_block_device(node); ++attempt) {
      if (attempt == 10) first_line_of("partx -a " + path_ + " 2>/dev/null; true");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return is_block_device(node) ? node : "";
  }

 private:
  TempDir dir_;
  std::string path_;
  std::string error_;
};

std::string device_number(const std::string& node) {
  struct stat st {};
  REQUIRE(::stat(node.c_str(), &st) == 0);
  return std::to_string(major(st.st_rdev)) + ":" + std::to_string(minor(st.st_rdev));
}

std::string fake_mountinfo(const LoopDevice& loop, const std::string& lines) {
  const std::string path = loop.scratch("mountinfo");
  std::ofstream(path) << "26 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n" << lines;
  return path;
}

}  // namespace

TEST_CASE("block device: a loop device opens, round-trips data, zeroes, and probes as a block device") {
  test_support::require({test_support::loop_devices()});
  LoopDevice loop;
  REQUIRE_MESSAGE(loop.ready(), loop.error());
  auto opened = blockio::open_disk(loop.path());
  REQUIRE_MESSAGE(opened.is_ok(), opened.status().message());
  blockio::BlockDevice& device = *opened.value();
  CHECK(device.geometry().size_bytes == kLoopBytes);
  CHECK(device.geometry().logical_block_bytes == 512);
  CHECK(device.describe() == "block " + loop.path() + " (64 MiB, O_DIRECT)");

  const base::AlignedBuffer data = pattern(1 << 20, 13);
  REQUIRE(device.write(kLoopBytes - (1 << 20), data.span()).is_ok());
  REQUIRE(device.write(0, data.span()).is_ok());
  REQUIRE(device.write_zeroes(4096, 8192).is_ok());
  REQUIRE(device.discard(65536, 65536).is_ok());
  REQUIRE(device.flush().is_ok());
  base::AlignedBuffer out(1 << 20);
  REQUIRE(device.read(kLoopBytes - (1 << 20), out.span()).is_ok());
  CHECK(same_bytes(out, data));
  REQUIRE(device.read(0, out.span()).is_ok());
  CHECK(std::memcmp(out.data(), data.data(), 4096) == 0);
  CHECK(all_bytes(out.data() + 4096, 8192, 0));
  CHECK(std::memcmp(out.data() + 12288, data.data() + 12288, 65536 - 12288) == 0);
  CHECK(all_bytes(out.data() + 65536, 65536, 0));

  auto identity = blockio::probe_identity(loop.path());  // works while the disk is held
  REQUIRE_MESSAGE(identity.is_ok(), identity.status().message());
  CHECK(identity->kind == "block");
  CHECK(identity->path == loop.path());
  CHECK(identity->size_bytes == kLoopBytes);
  CHECK(identity->logical_block_bytes == 512);
  CHECK(identity->serial.empty());  // loop devices have none
  CHECK(blockio::check_identity(*identity, blockio::probe_identity(loop.path()).value()).is_ok());
}

// An image file on ext4 over a disk of 4 KiB logical blocks (a 4Kn disk):
// O_DIRECT there needs 4 KiB alignment, so a record aligned to 512 bytes
// would fail its write (EINVAL) and stop the clone's writes. The image says
// 4096 instead, which the original hears at the handshake.
TEST_CASE("image file: on a filesystem over 4 KiB sectors its logical block is 4096, as its identity says") {
  test_support::require({test_support::loop_devices(), test_support::program("mkfs.ext4", "e2fsprogs")});
  LoopDevice loop(false, 4096);
  REQUIRE_MESSAGE(loop.ready(), loop.error());
  std::string out;
  REQUIRE_MESSAGE(sh("mkfs.ext4 -q -F -b 4096 " + loop.path(), out) == 0, out);
  const std::string mnt = loop.scratch("mnt");
  REQUIRE(::mkdir(mnt.c_str(), 0700) == 0);
  REQUIRE_MESSAGE(sh("mount -t ext4 " + loop.path() + " " + mnt, out) == 0, out);
  struct Unmount {
    std::string at;
    ~Unmount() {
      std::string said;
      if (sh("umount " + at, said) != 0) std::fprintf(stderr, "could not unmount %s: %s\n", at.c_str(), said.c_str());
    }
  } unmount{mnt};
  REQUIRE(blockio::create_image_file(mnt + "/clone.img", 1 << 20).is_ok());
  {
    auto opened = blockio::open_disk(mnt + "/clone.img");
    REQUIRE_MESSAGE(opened.is_ok(), opened.status().message());
    blockio::BlockDevice& device = *opened.value();
    CHECK(device.geometry().logical_block_bytes == 4096);
    CHECK(contains(device.describe(), "O_DIRECT"));
    const base::AlignedBuffer data = pattern(4096, 5);
    CHECK(device.write(4096, data.span()).is_ok());
    CHECK(device.flush().is_ok());
  }
  // Opened buffered, the same block: pairing records the identity's, and
  // the handshake says the geometry's.
  {
    blockio::OpenOptions buffered;
    buffered.direct_io = false;
    auto plain = blockio::open_disk(mnt + "/clone.img", buffered);
    REQUIRE_MESSAGE(plain.is_ok(), plain.status().message());
    CHECK(plain.value()->geometry().logical_block_bytes == 4096);
  }
  auto identity = blockio::probe_identity(mnt + "/clone.img");
  REQUIRE_MESSAGE(identity.is_ok(), identity.status().message());
  CHECK(identity->logical_block_bytes == 4096);
  // A size that is no multiple of 4096 is refused, saying why.
  REQUIRE(::truncate((mnt + "/clone.img").c_str(), (1 << 20) + 512) == 0);
  auto odd = blockio::open_disk(mnt + "/clone.img");
  REQUIRE_FALSE(odd.is_ok());
  CHECK_MESSAGE(contains(odd.status().message(), "not a positive multiple of 4096"), odd.status().message());
}

TEST_CASE("block device: a second open of a loop device in use fails with a sentence that names it") {
  test_support::require({test_support::loop_devices()});
  LoopDevice loop;
  REQUIRE_MESSAGE(loop.ready(), loop.error());
  auto first = blockio::open_disk(loop.path());
  REQUIRE_MESSAGE(first.is_ok(), first.status().message());
  auto second = blockio::open_disk(loop.path());
  REQUIRE_FALSE(second.is_ok());
  CHECK(second.status().code() == EBUSY);
  CHECK(contains(second.status().message(), "cannot open " + loop.path() + " exclusively"));
  CHECK(contains(second.status().message(), "another program"));
}

TEST_CASE("block device: a loop device locked by another program is refused with a clear message") {
  test_support::require({test_support::loop_devices()});
  LoopDevice loop;
  REQUIRE_MESSAGE(loop.ready(), loop.error());
  // A plain read-only open does not claim the device, so only the flock stops us.
  blockio::UniqueFd other(::open(loop.path().c_str(), O_RDONLY | O_CLOEXEC));
  REQUIRE(other.valid());
  REQUIRE(::flock(other.get(), LOCK_EX | LOCK_NB) == 0);
  auto refused = blockio::open_disk(loop.path());
  REQUIRE_FALSE(refused.is_ok());
  CHECK(refused.status().code() == EWOULDBLOCK);
  CHECK(contains(refused.status().message(), "another program holds a lock on " + loop.path()));
  other.reset();
  auto opened = blockio::open_disk(loop.path());
  CHECK_MESSAGE(opened.is_ok(), opened.status().message());
}

TEST_CASE("block device: check_not_in_use refuses a loop device that the mountinfo shows mounted") {
  test_support::require({test_support::loop_devices()});
  LoopDevice loop;
  REQUIRE_MESSAGE(loop.ready(), loop.error());
  const std::string number = device_number(loop.path());
  CHECK(blockio::check_not_in_use(loop.path(), fake_mountinfo(loop, "")).is_ok());

  base::Status by_number = blockio::check_not_in_use(
      loop.path(), fake_mountinfo(loop, "50 26 " + number + " / /mnt/clone rw - ext4 /dev/whatever rw\n"));
  CHECK(by_number.code() == EBUSY);
  CHECK(contains(by_number.message(), loop.path() + " is mounted at /mnt/clone; unmount it first"));

  // btrfs shows an anonymous MAJ:MIN; the source still names the device.
  base::Status by_source = blockio::check_not_in_use(
      loop.path(), fake_mountinfo(loop, "51 26 0:99 / /srv rw - btrfs " + loop.path() + " rw\n"));
  CHECK(by_source.code() == EBUSY);
  CHECK(contains(by_source.message(), "mounted at /srv"));

  base::Status as_root = blockio::check_not_in_use(
      loop.path(), fake_mountinfo(loop, "52 1 " + number + " / / rw - ext4 " + loop.path() + " rw\n"));
  CHECK(contains(as_root.message(), "root filesystem"));

  base::Status unreadable = blockio::check_not_in_use(loop.path(), loop.scratch("missing-mountinfo"));
  CHECK(unreadable.code() == ENOENT);
  CHECK(contains(unreadable.message(), "to check that " + loop.path() + " is not mounted"));
}

TEST_CASE("block device: check_not_in_use refuses a disk one of whose partitions is mounted") {
  test_support::require({test_support::loop_devices(), test_support::program("partx", "util-linux")});
  LoopDevice loop(/*partitioned=*/true);
  REQUIRE_MESSAGE(loop.ready(), loop.error());
  const std::string partition = loop.first_partition();
  REQUIRE_MESSAGE(!partition.empty(), "neither the kernel nor partx added a partition for " << loop.path());
  const std::string line = "60 26 " + device_number(partition) + " / /boot rw - vfat " + partition + " rw\n";
  const base::Status status = blockio::check_not_in_use(loop.path(), fake_mountinfo(loop, line));
  CHECK(status.code() == EBUSY);
  CHECK(contains(status.message(), loop.path() + " (on the same disk as " + partition + ") is mounted at /boot"));
  // The partition itself is refused as well.
  CHECK(blockio::check_not_in_use(partition, fake_mountinfo(loop, line)).code() == EBUSY);
  CHECK(blockio::check_not_in_use(loop.path(), fake_mountinfo(loop, "")).is_ok());
  // A partition's identity carries its number on the disk (siblings share the disk's serial); the disk's is 0.
  auto part = blockio::probe_identity(partition);
  REQUIRE_MESSAGE(part.is_ok(), part.status().message());
  CHECK(part->partition == 1);
  CHECK(part->partition_start_bytes == 2048u * 512);
  CHECK(part->size_bytes == (32u << 20));
  CHECK(blockio::probe_identity(loop.path()).value().partition == 0);
  CHECK(blockio::probe_identity(loop.path()).value().partition_start_bytes == 0);
}
