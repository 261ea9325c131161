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

namespace origin {

namespace {

constexpr size_t kZeroChunkBytes = 1u << 20;
constexpr size_t kCompareChunkBytes = 4u << 20;

std::string u64s(uint64_t v) { return std::to_string(v); }

// Reads up to out.size() bytes at `offset`; fewer only at the end of the file.
base::Result<size_t> pread_full(int fd, const std::string& path, uint8_t* out, size_t n, uint64_t offset) {
  size_t got = 0;
  while (got < n) {
    ssize_t k = ::pread(fd, out + got, n - got, static_cast<off_t>(offset + got));
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) return base::Status::from_errno("cannot read " + path + " at offset=" + u64s(offset + got));
    if (k == 0) break;
    got += static_cast<size_t>(k);
  }
  return got;
}

int open_for_compare(const std::string& path, bool direct) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (direct ? O_DIRECT : 0));
  if (fd < 0 && direct && errno == EINVAL) fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  return fd;
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

base::Result<std::unique_ptr<SourceImage>> SourceImage::open(const std::string& path, uint64_t disk_size_bytes) {
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return base::Status::from_errno("cannot open source image " + path);
  std::unique_ptr<SourceImage> image(new SourceImage(fd, path));
  base::Result<uint64_t> size = file_or_device_size(fd, path);
  if (!size) return size.status();
  if (*size != disk_size_bytes)
    return base::Status::error(EINVAL, "source image " + path + " has " + u64s(*size) + " bytes but the pair was made for a disk of " +
                                           u64s(disk_size_bytes) + " bytes; use an image of that size.");
  return image;
}

SourceImage::~SourceImage() { ::close(fd_); }

base::Status SourceImage::pwrite_all(const uint8_t* data, size_t n, uint64_t offset_bytes) {
  size_t done = 0;
  while (done < n) {
    ssize_t k = ::pwrite(fd_, data + done, n - done, static_cast<off_t>(offset_bytes + done));
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) return base::Status::from_errno("cannot write source image " + path_ + " at offset=" + u64s(offset_bytes + done));
    done += static_cast<size_t>(k);
  }
  return base::Status::ok();
}

base::Status SourceImage::apply(const Record& record) {
  const proto::RecordHeader& h = record.header;
  if (h.type == proto::MsgType::write) {
    base::ByteSpan p = record.payload();
    return pwrite_all(p.data(), p.size(), h.offset_bytes);
  }
  if (h.type != proto::MsgType::trim && h.type != proto::MsgType::zero) return base::Status::ok();
  static const std::vector<uint8_t> zeroes(kZeroChunkBytes, 0);
  for (uint64_t done = 0; done < h.length_bytes;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kZeroChunkBytes, h.length_bytes - done));
    BASE_TRY(pwrite_all(zeroes.data(), n, h.offset_bytes + done));
    done += n;
  }
  return base::Status::ok();
}

base::Status SourceImage::sync() {
  if (::fdatasync(fd_) != 0) return base::Status::from_errno("cannot make source image " + path_ + " durable (fdatasync)");
  return base::Status::ok();
}

namespace {

struct Fd {
  int fd = -1;
  ~Fd() { if (fd >= 0) ::close(fd); }
};

CompareResult differ_at(uint64_t offset, const std::string& a, const std::string& b, const std::string& how) {
  return CompareResult{false, offset, a + " and " + b + " differ at byte offset " + u64s(offset) + how};
}

}  // namespace

base::Result<CompareResult> compare_images(const std::string& source_path, const std::string& clone_path) {
  Fd a, b;
  a.fd = open_for_compare(source_path, false);
  if (a.fd < 0) return base::Status::from_errno("cannot open " + source_path);
  b.fd = open_for_compare(clone_path, true);
  if (b.fd < 0) return base::Status::from_errno("cannot open " + clone_path);
  base::Result<uint64_t> size_a = file_or_device_size(a.fd, source_path);
  if (!size_a) return size_a.status();
  base::Result<uint64_t> size_b = file_or_device_size(b.fd, clone_path);
  if (!size_b) return size_b.status();
  base::AlignedBuffer buf_a(kCompareChunkBytes), buf_b(kCompareChunkBytes);
  const uint64_t common = std::min(*size_a, *size_b);
  for (uint64_t off = 0; off < common; off += kCompareChunkBytes) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kCompareChunkBytes, common - off));
    base::Result<size_t> got_a = pread_full(a.fd, source_path, buf_a.data(), kCompareChunkBytes, off);
    if (!got_a) return got_a.status();
    base::Result<size_t> got_b = pread_full(b.fd, clone_path, buf_b.data(), kCompareChunkBytes, off);
    if (!got_b) return got_b.status();
    if (*got_a < n || *got_b < n) return differ_at(off + std::min(*got_a, *got_b), source_path, clone_path, " (one ended early).");
    if (std::memcmp(buf_a.data(), buf_b.data(), n) == 0) continue;
    size_t i = 0;
    while (buf_a.data()[i] == buf_b.data()[i]) ++i;
    return differ_at(off + i, source_path, clone_path, ".");
  }
  if (*size_a != *size_b)
    return differ_at(common, source_path, clone_path, " (sizes differ: " + u64s(*size_a) + " and " + u64s(*size_b) + " bytes).");
  return CompareResult{true, 0, "identical"};
}

}  // namespace origin
