// SPDX-License-Identifier: MIT
#include "origin/image.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "base/aligned_buffer.h"
#include "base/file_io.h"
#include "base/units.h"
#include "blockio/sysfs.h"

namespace origin {

using base::u64s;

namespace {

constexpr size_t kZeroChunkBytes = 1u << 20;
constexpr size_t kCompareChunkBytes = 4u << 20;

base::UniqueFd open_for_compare(const std::string& path, bool direct) {
  base::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | (direct ? O_DIRECT : 0)));
  if (!fd && direct && errno == EINVAL) fd.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  return fd;
}

// Reads up to `n` bytes at `offset`; fewer only at the end of the file.
base::Result<size_t> read_upto(int fd, const std::string& path, uint8_t* out, size_t n, uint64_t offset) {
  base::Result<size_t> got = base::pread_upto(fd, base::MutableByteSpan(out, n), offset);
  if (!got) return got.status().with_context("cannot read " + path);
  return got;
}

}  // namespace

base::Result<uint64_t> file_or_device_size(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return base::Status::from_errno("cannot stat " + path);
  if (S_ISREG(st.st_mode)) return static_cast<uint64_t>(st.st_size);
  if (S_ISBLK(st.st_mode)) {
    uint64_t size = 0;
    if (::ioctl(fd, BLKGETSIZE64, &size) != 0) return base::Status::from_errno("cannot get the size of " + path);
    return size;
  }
  return base::Status::error(EINVAL, path + " is neither a regular file nor a block device.");
}

namespace {

// The kernel's sequence number of the disk behind block device `rdev`, new
// for each disk it sets up (a loop device attached again, a new device-mapper
// snapshot at a reused minor); "0" where the kernel has none (before 5.15).
std::string disk_sequence(dev_t rdev) {
  const std::string seq = blockio::read_attribute(blockio::sysfs_disk_dir_of(rdev) + "/diskseq");
  return !seq.empty() && seq.find_first_not_of("0123456789") == std::string::npos ? seq : "0";
}

}  // namespace

base::Result<std::string> source_identity(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return base::Status::from_errno("cannot stat " + path);
  const auto u = [](auto v) { return std::to_string(static_cast<uint64_t>(v)); };
  if (S_ISBLK(st.st_mode)) return "block:" + u(st.st_rdev) + ":" + disk_sequence(st.st_rdev);
  if (!S_ISREG(st.st_mode)) return base::Status::error(EINVAL, path + " is neither a regular file nor a block device.");
  // The change time, not the modification time, which touch -d or cp -p set.
  const uint64_t ctime_ns =
      static_cast<uint64_t>(st.st_ctim.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(st.st_ctim.tv_nsec);
  return "file:" + u(st.st_dev) + ":" + u(st.st_ino) + ":" + u(st.st_size) + ":" + u(ctime_ns);
}

// Both ways of opening check the size against the pair's disk, with one sentence.
base::Result<std::unique_ptr<SourceImage>> SourceImage::open_with(const std::string& path, uint64_t disk_size_bytes,
                                                                  int flags) {
  base::UniqueFd fd(::open(path.c_str(), flags | O_CLOEXEC));
  if (!fd) return base::Status::from_errno("cannot open source image " + path);
  base::Result<uint64_t> size = file_or_device_size(fd.get(), path);
  if (!size) return size.status();
  if (*size != disk_size_bytes)
    return base::Status::error(EINVAL, "source image " + path + " has " + u64s(*size) +
                                           " bytes but the pair was made for a disk of " + u64s(disk_size_bytes) +
                                           " bytes; use an image of that size.");
  return std::unique_ptr<SourceImage>(new SourceImage(std::move(fd), path, *size));
}

base::Result<std::unique_ptr<SourceImage>> SourceImage::open(const std::string& path, uint64_t disk_size_bytes) {
  return open_with(path, disk_size_bytes, O_RDWR);
}

base::Result<std::unique_ptr<SourceImage>> SourceImage::open_to_read(const std::string& path,
                                                                     uint64_t disk_size_bytes) {
  return open_with(path, disk_size_bytes, O_RDONLY);
}

SourceImage::~SourceImage() = default;

base::Status SourceImage::write(base::ByteSpan data, uint64_t offset_bytes) {
  return base::pwrite_full(fd_.get(), data, offset_bytes).with_context("cannot write source image " + path_);
}

base::Status SourceImage::read(uint64_t offset_bytes, base::MutableByteSpan out) {
  return base::pread_full(fd_.get(), out, offset_bytes).with_context("reading the source image " + path_);
}

base::Status SourceImage::apply(const Record& record) {
  const proto::RecordHeader& h = record.header;
  if (h.type == proto::MsgType::write) return write(record.payload(), h.offset_bytes);
  if (h.type != proto::MsgType::trim && h.type != proto::MsgType::zero) return base::Status::ok();
  static const std::vector<uint8_t> zeroes(kZeroChunkBytes, 0);
  for (uint64_t done = 0; done < h.length_bytes;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kZeroChunkBytes, h.length_bytes - done));
    BASE_TRY(write(base::ByteSpan(zeroes.data(), n), h.offset_bytes + done));
    done += n;
  }
  return base::Status::ok();
}

base::Status SourceImage::sync() {
  if (::fdatasync(fd_.get()) != 0)
    return base::Status::from_errno("cannot make source image " + path_ + " durable (fdatasync)");
  return base::Status::ok();
}

namespace {

CompareResult differ_at(uint64_t offset, const std::string& a, const std::string& b, const std::string& how) {
  return CompareResult{false, offset, a + " and " + b + " differ at byte offset " + u64s(offset) + how};
}

}  // namespace

base::Result<CompareResult> compare_images(const std::string& source_path, const std::string& clone_path) {
  base::UniqueFd a = open_for_compare(source_path, false);
  if (!a) return base::Status::from_errno("cannot open " + source_path);
  base::UniqueFd b = open_for_compare(clone_path, true);
  if (!b) return base::Status::from_errno("cannot open " + clone_path);
  base::Result<uint64_t> size_a = file_or_device_size(a.get(), source_path);
  if (!size_a) return size_a.status();
  base::Result<uint64_t> size_b = file_or_device_size(b.get(), clone_path);
  if (!size_b) return size_b.status();
  base::AlignedBuffer buf_a(kCompareChunkBytes), buf_b(kCompareChunkBytes);
  const uint64_t common = std::min(*size_a, *size_b);
  for (uint64_t off = 0; off < common; off += kCompareChunkBytes) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kCompareChunkBytes, common - off));
    base::Result<size_t> got_a = read_upto(a.get(), source_path, buf_a.data(), kCompareChunkBytes, off);
    if (!got_a) return got_a.status();
    base::Result<size_t> got_b = read_upto(b.get(), clone_path, buf_b.data(), kCompareChunkBytes, off);
    if (!got_b) return got_b.status();
    if (*got_a < n || *got_b < n)
      return differ_at(off + std::min(*got_a, *got_b), source_path, clone_path, " (one ended early).");
    if (std::memcmp(buf_a.data(), buf_b.data(), n) == 0) continue;
    size_t i = 0;
    while (buf_a.data()[i] == buf_b.data()[i]) ++i;
    return differ_at(off + i, source_path, clone_path, ".");
  }
  if (*size_a != *size_b)
    return differ_at(common, source_path, clone_path,
                     " (sizes differ: " + u64s(*size_a) + " and " + u64s(*size_b) + " bytes).");
  return CompareResult{true, 0, "identical"};
}

}  // namespace origin
