// SPDX-License-Identifier: MIT
// Disk identity and the in-use checks, without creating block devices.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>

#include "base/units.h"
#include "blockio/disk.h"
#include "blockio/mountinfo.h"
#include "blockio/sysfs.h"
#include "blockio/tests/test_support.h"
#include "test/support/requires.h"

using blockio_test::TempDir;

namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

blockio::DiskIdentity sample_disk() {
  blockio::DiskIdentity disk;
  disk.kind = "block";
  disk.path = "/dev/sdb";
  disk.size_bytes = 1ull << 40;
  disk.serial = "WX1234";
  disk.wwn = "naa.50014ee2b5d6e1f0";
  disk.model = "WDC WD10";
  return disk;
}

blockio::DiskIdentity sample_file() {
  blockio::DiskIdentity file;
  file.kind = "file";
  file.path = "/srv/disk.img";
  file.size_bytes = 256 << 20;
  return file;
}

void check_refused(const blockio::DiskIdentity& expected, const blockio::DiskIdentity& actual,
                   const std::string& reason) {
  const base::Status status = blockio::check_identity(expected, actual);
  CAPTURE(reason);
  REQUIRE_FALSE(status.is_ok());
  CHECK(contains(status.message(), expected.describe()));
  CHECK(contains(status.message(), actual.describe()));
  CHECK(contains(status.message(), reason));
  CHECK(contains(status.message(), "Re-pair with clonectl pair, or point [target] path at the paired disk."));
}

}  // namespace

TEST_CASE("a disk identity describes itself in one line") {
  CHECK(sample_disk().describe() == "block /dev/sdb (WDC WD10, serial WX1234, " + base::format_bytes(1ull << 40) + ")");
  CHECK(sample_file().describe() == "file /srv/disk.img (256 MiB)");
  blockio::DiskIdentity no_serial = sample_disk();
  no_serial.serial.clear();
  CHECK(contains(no_serial.describe(), "wwn naa.50014ee2b5d6e1f0"));
}

TEST_CASE("probe_identity of an image file gives its canonical path and size") {
  TempDir dir;
  REQUIRE(dir.ok());
  REQUIRE(blockio::create_image_file(dir.file("disk.img"), 1 << 20).is_ok());
  REQUIRE(::symlink(dir.file("disk.img").c_str(), dir.file("link.img").c_str()) == 0);
  auto identity = blockio::probe_identity(dir.path() + "/./link.img");
  REQUIRE_MESSAGE(identity.is_ok(), identity.status().message());
  CHECK(identity->kind == "file");
  CHECK(identity->path == dir.file("disk.img"));
  CHECK(identity->size_bytes == 1u << 20);
  CHECK(identity->logical_block_bytes == 512);
  CHECK(identity->describe() == "file " + dir.file("disk.img") + " (1 MiB)");
  CHECK(blockio::check_identity(*identity, blockio::probe_identity(dir.file("disk.img")).value()).is_ok());
  CHECK(blockio::probe_identity(dir.file("missing.img")).status().code() == ENOENT);
  CHECK(blockio::probe_identity("/dev/null").status().code() == ENOTBLK);
}

TEST_CASE("check_identity accepts the paired disk under another path") {
  blockio::DiskIdentity moved = sample_disk();
  moved.path = "/dev/sdc";
  CHECK(blockio::check_identity(sample_disk(), moved).is_ok());
  CHECK(blockio::check_identity(sample_file(), sample_file()).is_ok());
}

TEST_CASE("check_identity refuses another disk, names both and says what to do") {
  blockio::DiskIdentity other = sample_disk();
  other.serial = "WX9999";
  check_refused(sample_disk(), other, "the serial differs (WX1234 recorded, WX9999 found)");
  CHECK(blockio::check_identity(sample_disk(), other).code() == ENODEV);

  other = sample_disk();
  other.size_bytes = 1ull << 39;
  check_refused(sample_disk(), other, "the size differs");

  other = sample_disk();
  other.wwn = "naa.0";
  check_refused(sample_disk(), other, "the WWN differs");

  other = sample_disk();
  other.model = "Samsung SSD";
  check_refused(sample_disk(), other, "the model differs");

  blockio::DiskIdentity file = sample_file();
  file.size_bytes = sample_disk().size_bytes;
  check_refused(sample_disk(), file, "the kind differs (block recorded, file found)");

  file = sample_file();
  file.path = "/srv/other.img";
  check_refused(sample_file(), file, "the path differs (/srv/disk.img recorded, /srv/other.img found)");
}

TEST_CASE("check_identity tells partitions of one disk apart by number, where one was recorded") {
  // A partition inherits its disk's serial, WWN and model: a sibling of the
  // same size differs only in its number.
  blockio::DiskIdentity third = sample_disk();
  third.partition = 3;
  blockio::DiskIdentity fourth = third;
  fourth.path = "/dev/sdb4";
  fourth.partition = 4;
  check_refused(third, fourth, "the partition number differs (3 recorded, 4 found)");
  fourth.partition = 0;
  check_refused(third, fourth, "the partition number differs (3 recorded, a whole disk found)");
  CHECK(blockio::check_identity(third, third).is_ok());
  CHECK(third.describe().find("partition 3") != std::string::npos);
  // None recorded (a whole disk, or a cloned.toml from before the key): not compared.
  CHECK(blockio::check_identity(sample_disk(), third).is_ok());
}

TEST_CASE("check_identity refuses a partition that moved on its disk, where its start was recorded") {
  // The same number and size, another start: the table was edited since pairing,
  // and what the clone holds is no longer where the original's writes would land.
  blockio::DiskIdentity recorded = sample_disk();
  recorded.partition = 2;
  recorded.partition_start_bytes = 1u << 20;
  blockio::DiskIdentity moved = recorded;
  moved.partition_start_bytes = 2u << 20;
  check_refused(recorded, moved,
                "the partition's start differs (byte 1048576 recorded, byte 2097152 found): its disk's partition "
                "table was edited since pairing");
  CHECK(blockio::check_identity(recorded, recorded).is_ok());
  // Not recorded (a cloned.toml from before the key): not compared.
  blockio::DiskIdentity unrecorded = recorded;
  unrecorded.partition_start_bytes = 0;
  CHECK(blockio::check_identity(unrecorded, moved).is_ok());
}

TEST_CASE("check_identity refuses a logical block larger than recorded, and takes a smaller one") {
  blockio::DiskIdentity larger = sample_disk();
  larger.logical_block_bytes = 4096;
  check_refused(sample_disk(), larger, "the logical block differs (512 bytes recorded, 4096 bytes found)");
  CHECK(blockio::check_identity(larger, sample_disk()).is_ok());
  blockio::DiskIdentity file = sample_file();
  file.logical_block_bytes = 4096;
  check_refused(sample_file(), file, "the original aligns its writes to the recorded one");
  // Not recorded (a hand-written cloned.toml without the key): not compared.
  blockio::DiskIdentity unrecorded = sample_disk();
  unrecorded.logical_block_bytes = 0;
  CHECK(blockio::check_identity(unrecorded, larger).is_ok());
}

TEST_CASE("check_identity goes by path for a block device without serial or WWN") {
  blockio::DiskIdentity loop;
  loop.kind = "block";
  loop.path = "/dev/loop3";
  loop.size_bytes = 64 << 20;
  CHECK(blockio::check_identity(loop, loop).is_ok());
  blockio::DiskIdentity other = loop;
  other.path = "/dev/loop4";
  check_refused(loop, other, "no serial or WWN");
}

TEST_CASE("parse_mountinfo reads device numbers, escaped mount points and sources") {
  const std::string text =
      "26 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard\n"
      "40 26 8:17 / /mnt/my\\040disk rw master:2 propagation_from:1 - vfat /dev/sdb1 rw\n"
      "41 26 0:44 / /home rw - btrfs /dev/mapper/crypt\\134x rw\n"
      "garbage line\n"
      "42 26 0:22 / /tmp rw - tmpfs tmpfs rw";
  const std::vector<blockio::MountEntry> entries = blockio::parse_mountinfo(text);
  REQUIRE(entries.size() == 4);
  CHECK(entries[0].device == makedev(254, 0));
  CHECK(entries[0].mount_point == "/");
  CHECK(entries[0].source == "/dev/vda");
  CHECK(entries[1].device == makedev(8, 17));
  CHECK(entries[1].mount_point == "/mnt/my disk");
  CHECK(entries[1].source == "/dev/sdb1");
  CHECK(entries[2].source == "/dev/mapper/crypt\\x");
  CHECK(entries[3].mount_point == "/tmp");
  CHECK(entries[3].source == "tmpfs");
}

TEST_CASE("check_not_in_use lets image files pass and refuses what is not a disk") {
  TempDir dir;
  REQUIRE(dir.ok());
  REQUIRE(blockio::create_image_file(dir.file("disk.img"), 1 << 20).is_ok());
  CHECK(blockio::check_not_in_use(dir.file("disk.img"), dir.file("no-mountinfo")).is_ok());
  const base::Status not_disk = blockio::check_not_in_use("/dev/null");
  CHECK(not_disk.code() == ENOTBLK);
  CHECK(contains(not_disk.message(), "point [target] path at"));
  CHECK(blockio::check_not_in_use(dir.file("missing")).code() == ENOENT);
}

TEST_CASE("check_not_in_use refuses the disk that holds the root filesystem" *
          doctest::test_suite("requires / on a block device")) {
  struct stat root {};
  REQUIRE(::stat("/", &root) == 0);
  const std::string dir = blockio::sysfs_disk_dir_of(root.st_dev);
  const std::string node = dir.empty() ? "" : "/dev/" + dir.substr(dir.rfind('/') + 1);
  struct stat disk {};
  if (node.empty() || ::stat(node.c_str(), &disk) != 0 || !S_ISBLK(disk.st_mode) ||
      disk.st_rdev != blockio::whole_disk_of(root.st_dev)) {
    test_support::skip("/ is not on a block device with a node in /dev (overlay or container root)");
  }
  TempDir tmp;
  REQUIRE(tmp.ok());
  std::ofstream(tmp.file("mountinfo")) << "";  // nothing mounted: the root check alone must refuse
  const base::Status status = blockio::check_not_in_use(node, tmp.file("mountinfo"));
  CAPTURE(node);
  CHECK(status.code() == EBUSY);
  CHECK(contains(status.message(), "root filesystem"));
}
