// SPDX-License-Identifier: MIT
// SMART on a loop device this test creates (needs root): every ioctl goes to
// that loop device only, never to a disk of this machine. The loop device is
// detached on scope exit, failed or not; it is also marked autoclear, so the
// kernel detaches it when the test process dies without running destructors.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "hwhealth/ata_sgio.h"
#include "hwhealth/collect.h"
#include "hwhealth/nvme.h"
#include "hwhealth/tests/test_support.h"
#include "test/support/requires.h"

using hwhealth_test::contains;
using test_support::first_line_of;
using test_support::is_block_device;

namespace {

constexpr uint64_t kImageBytes = 16 << 20;

// A loop device over a fresh 16 MiB image, held open by fd_ for the test.
class LoopDevice {
 public:
  LoopDevice() : error_(attach()) {}
  ~LoopDevice() {
    // Detach while our fd still holds the device, so that the number cannot
    // have been reused by someone else in between; closing then frees it.
    if (!path_.empty() && std::system(("losetup -d " + path_ + " 2>/dev/null").c_str()) != 0)
      std::fprintf(stderr, "could not detach %s; detach it with losetup -d\n", path_.c_str());
    if (fd_ >= 0) ::close(fd_);
  }
  LoopDevice(const LoopDevice&) = delete;
  LoopDevice& operator=(const LoopDevice&) = delete;

  bool ready() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  const std::string& path() const { return path_; }
  int fd() const { return fd_; }

 private:
  // Attaches and opens the loop device; "" when done, else why not.
  std::string attach() {
    if (::geteuid() != 0) return "needs root to attach a loop device";
    if (!dir_.ok()) return "cannot create a directory in /var/tmp";
    const std::string image = dir_.file("disk.img");
    std::ofstream{image};  // creates it; truncate makes it sparse and 16 MiB
    if (::truncate(image.c_str(), kImageBytes) != 0) return "cannot create the image";
    path_ = first_line_of("losetup --find --show " + image + " 2>/dev/null");
    if (!is_block_device(path_)) {
      path_.clear();
      return "losetup could not attach a loop device (no loop support here?)";
    }
    fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) return "cannot open " + path_;
    loop_info64 info{};
    if (::ioctl(fd_, LOOP_GET_STATUS64, &info) == 0) {
      info.lo_flags |= LO_FLAGS_AUTOCLEAR;
      (void)::ioctl(fd_, LOOP_SET_STATUS64, &info);  // best effort: the destructor detaches anyway
    }
    return "";
  }

  // Declared in this order so that attach() runs after the others exist.
  hwhealth_test::TempDir dir_;
  std::string path_;
  int fd_ = -1;
  std::string error_;
};

}  // namespace

TEST_CASE("a loop device: the collector reports SMART unsupported, a virtual device, without asking it") {
  test_support::require({test_support::loop_devices()});
  LoopDevice loop;
  REQUIRE_MESSAGE(loop.ready(), loop.error());
  auto source = hwhealth::make_system_health_source(loop.path(), "/sys");
  const hwhealth::Reading<hwhealth::SmartReading> smart = source->read_smart();
  CHECK(smart.source.availability == hwhealth::Availability::unsupported);
  CHECK(contains(smart.source.reason, "SMART is unsupported: " + loop.path()));
  CHECK(contains(smart.source.reason, "virtual block device"));
  CHECK(smart.value.disk.kind == hwhealth::DiskKind::virtual_disk);
  CHECK(smart.value.disk.name.starts_with("loop"));
  const auto disk_errors = source->read_disk_errors();
  CHECK(disk_errors.source.availability == hwhealth::Availability::unsupported);
}

TEST_CASE("a loop device: SG_IO and the NVMe admin ioctl are refused and classified unsupported") {
  test_support::require({test_support::loop_devices()});
  LoopDevice loop;
  REQUIRE_MESSAGE(loop.ready(), loop.error());
  uint64_t error_completions = 0;
  const auto ata = hwhealth::read_ata_smart(loop.fd(), loop.path(), error_completions);
  REQUIRE_FALSE(ata.is_ok());
  CAPTURE(ata.status().message());
  CHECK(hwhealth::is_unsupported(ata.status()));
  CHECK(contains(ata.status().message(), "SMART is unsupported: SMART RETURN STATUS on " + loop.path()));
  CHECK(error_completions == 0);

  const auto nvme = hwhealth::read_nvme_smart(loop.fd(), loop.path());
  REQUIRE_FALSE(nvme.is_ok());
  CAPTURE(nvme.status().message());
  CHECK(hwhealth::is_unsupported(nvme.status()));
  CHECK(contains(nvme.status().message(), "not an NVMe drive"));
}
