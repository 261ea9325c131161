// SPDX-License-Identifier: MIT
#include "cloned/stage/medium.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/file_io.h"
#include "base/unique_fd.h"

namespace stage {
namespace {

// The directory entry of the stage file at `path`, made durable.
base::Status sync_parent(const std::string& path) { return base::sync_dir(base::parent_dir(path)); }

class FileMedium final : public Medium {
 public:
  FileMedium(base::UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  base::Status write(uint64_t offset_bytes, base::ByteSpan data) override {
    return base::pwrite_full(fd_.get(), data, offset_bytes).with_context("the stage file " + path_);
  }
  base::Result<size_t> read(uint64_t offset_bytes, base::MutableByteSpan out) override {
    base::Result<size_t> got = base::pread_upto(fd_.get(), out, offset_bytes);
    if (!got) return got.status().with_context("the stage file " + path_);
    return got;
  }
  base::Result<uint64_t> size_bytes() override {
    struct stat st {};
    if (::fstat(fd_.get(), &st) != 0) return base::Status::from_errno("cannot stat the stage file " + path_);
    return static_cast<uint64_t>(st.st_size);
  }
  base::Status truncate(uint64_t size_bytes) override {
    if (::ftruncate(fd_.get(), static_cast<off_t>(size_bytes)) != 0)
      return base::Status::from_errno("cannot truncate the stage file " + path_ + " to " + std::to_string(size_bytes) +
                                      " bytes");
    return base::Status::ok();
  }
  base::Status sync() override {
    if (::fdatasync(fd_.get()) != 0) return base::Status::from_errno("cannot sync the stage file " + path_);
    return base::Status::ok();
  }
  base::Result<uint64_t> free_bytes() override {
    struct statvfs vfs {};
    if (::fstatvfs(fd_.get(), &vfs) != 0) return base::Status::from_errno("cannot read the free space of " + path_);
    return static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  }
  std::string describe() const override { return "file " + path_; }

 private:
  base::UniqueFd fd_;
  std::string path_;
};

class MemoryMedium final : public Medium {
 public:
  explicit MemoryMedium(std::shared_ptr<MemoryFile> file) : file_(std::move(file)) {}
  base::Status write(uint64_t offset_bytes, base::ByteSpan data) override {
    base::Bytes& b = file_->bytes;
    if (b.size() < offset_bytes + data.size()) b.resize(offset_bytes + data.size());
    std::copy(data.begin(), data.end(), b.begin() + static_cast<std::ptrdiff_t>(offset_bytes));
    return base::Status::ok();
  }
  base::Result<size_t> read(uint64_t offset_bytes, base::MutableByteSpan out) override {
    const base::Bytes& b = file_->bytes;
    const size_t n = offset_bytes >= b.size() ? 0 : std::min<size_t>(out.size(), b.size() - offset_bytes);
    std::copy_n(b.begin() + static_cast<std::ptrdiff_t>(offset_bytes), n, out.begin());
    return n;
  }
  base::Result<uint64_t> size_bytes() override { return static_cast<uint64_t>(file_->bytes.size()); }
  base::Status truncate(uint64_t size_bytes) override {
    file_->bytes.resize(size_bytes);
    return base::Status::ok();
  }
  base::Status sync() override { return base::Status::ok(); }
  base::Result<uint64_t> free_bytes() override { return file_->free_bytes; }
  std::string describe() const override { return "memory file"; }

 private:
  std::shared_ptr<MemoryFile> file_;
};

}  // namespace

base::Result<std::unique_ptr<Medium>> open_memory(std::shared_ptr<MemoryFile> file, bool create) {
  if (!file->exists && !create)
    return base::Status::error(ENOENT, "cannot open the stage file (in memory): it does not exist");
  file->exists = true;
  return std::unique_ptr<Medium>(std::make_unique<MemoryMedium>(std::move(file)));
}

void remove_memory(MemoryFile& file) {
  file.exists = false;
  file.bytes.clear();
}

base::Result<std::unique_ptr<Medium>> open_file(const std::string& path, bool create) {
  const int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0);
  const bool existed = ::access(path.c_str(), F_OK) == 0;
  base::UniqueFd fd(::open(path.c_str(), flags, 0600));
  if (!fd) return base::Status::from_errno("cannot open the stage file " + path);
  if (!existed) BASE_TRY(sync_parent(path));
  return std::unique_ptr<Medium>(std::make_unique<FileMedium>(std::move(fd), path));
}

base::Result<uint64_t> free_bytes_at(const std::string& dir) {
  struct statvfs vfs {};
  if (::statvfs(dir.c_str(), &vfs) != 0) return base::Status::from_errno("cannot read the free space of " + dir);
  return static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
}

base::Status remove_file(const std::string& path) {
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return base::Status::ok();
    return base::Status::from_errno("cannot remove the stage file " + path);
  }
  return sync_parent(path);
}

// ------------------------------------------------------------ FaultyMedium

base::Status FaultyMedium::check() const {
  if (!powered_) return base::Status::error(EIO, "the stick has no power (simulated)");
  return base::Status::ok();
}

base::Status FaultyMedium::write(uint64_t offset_bytes, base::ByteSpan data) {
  BASE_TRY(check());
  if (faults_.fail_write_after >= 0 && writes_++ >= faults_.fail_write_after)
    return base::Status::error(faults_.error_code, "the stage file: write at offset=" + std::to_string(offset_bytes) +
                                                       " len=" + std::to_string(data.size()) + " failed: " +
                                                       std::strerror(faults_.error_code) + " (simulated)");
  pending_.push_back({offset_bytes, base::Bytes(data.begin(), data.end())});
  return base::Status::ok();
}

base::Result<size_t> FaultyMedium::read(uint64_t offset_bytes, base::MutableByteSpan out) {
  BASE_TRY(check());
  if (faults_.fail_read_after >= 0 && reads_++ >= faults_.fail_read_after)
    return base::Status::error(faults_.error_code, "the stage file: read at offset=" + std::to_string(offset_bytes) +
                                                       " failed: " + std::strerror(faults_.error_code) +
                                                       " (simulated)");
  base::Result<uint64_t> size = size_bytes();
  if (!size) return size.status();
  const size_t n =
      offset_bytes >= *size ? 0 : static_cast<size_t>(std::min<uint64_t>(out.size(), *size - offset_bytes));
  std::fill(out.begin(), out.end(), uint8_t{0});
  base::Result<size_t> got = inner_->read(offset_bytes, out.first(n));
  if (!got) return got.status();
  for (const Pending& p : pending_) {  // later writes win
    const uint64_t begin = std::max(offset_bytes, p.offset_bytes);
    const uint64_t end = std::min(offset_bytes + n, p.offset_bytes + p.data.size());
    if (begin < end)
      std::memcpy(out.data() + (begin - offset_bytes), p.data.data() + (begin - p.offset_bytes), end - begin);
  }
  return n;
}

base::Result<uint64_t> FaultyMedium::size_bytes() {
  BASE_TRY(check());
  base::Result<uint64_t> size = inner_->size_bytes();
  if (!size) return size;
  uint64_t s = *size;
  for (const Pending& p : pending_) s = std::max<uint64_t>(s, p.offset_bytes + p.data.size());
  return s;
}

base::Status FaultyMedium::truncate(uint64_t size_bytes) {
  BASE_TRY(check());
  for (const Pending& p : pending_) BASE_TRY(inner_->write(p.offset_bytes, p.data));
  pending_.clear();
  return inner_->truncate(size_bytes);
}

base::Status FaultyMedium::sync() {
  BASE_TRY(check());
  if (faults_.fail_sync_after >= 0 && syncs_++ >= faults_.fail_sync_after)
    return base::Status::error(faults_.error_code, std::string("cannot sync the stage file: ") +
                                                       std::strerror(faults_.error_code) + " (simulated)");
  for (const Pending& p : pending_) BASE_TRY(inner_->write(p.offset_bytes, p.data));
  pending_.clear();
  return inner_->sync();
}

base::Result<uint64_t> FaultyMedium::free_bytes() {
  BASE_TRY(check());
  if (faults_.free_bytes >= 0) return static_cast<uint64_t>(faults_.free_bytes);
  return inner_->free_bytes();
}

void FaultyMedium::power_cut(bool tear_last, size_t torn_bytes) {
  if (tear_last && !pending_.empty()) {
    const Pending& last = pending_.back();
    const size_t keep = std::min(torn_bytes, last.data.size());
    (void)inner_->write(last.offset_bytes, base::ByteSpan(last.data).first(keep));
  }
  pending_.clear();
  powered_ = false;
}

}  // namespace stage
