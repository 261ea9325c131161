// SPDX-License-Identifier: MIT
#include "origin/health_inbox.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

namespace origin {
namespace {

constexpr uint32_t kMagic = 0x31505248;  // "HRP1"
constexpr size_t kHeaderBytes = 4 + 8 + 8 + 4;
constexpr size_t kTrailerBytes = 4;
constexpr uint64_t kFileBytesMax = uint64_t{1} << 30;  // refuse to read a file beyond this

uint32_t fnv1a(base::ByteSpan bytes) {
  uint32_t h = 2166136261u;
  for (uint8_t b : bytes) h = (h ^ b) * 16777619u;
  return h;
}

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

base::Result<std::unique_ptr<HealthInbox>> HealthInbox::open(const std::string& state_dir) {
  if (::mkdir(state_dir.c_str(), 0700) != 0 && errno != EEXIST)
    return base::Status::from_errno("cannot create the state directory " + state_dir);
  std::unique_ptr<HealthInbox> inbox(new HealthInbox());
  inbox->path_ = state_dir + "/health-reports.log";
  inbox->fd_ = base::UniqueFd(::open(inbox->path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!inbox->fd_) return base::Status::from_errno("cannot open " + inbox->path_);
  BASE_TRY(inbox->load());
  return inbox;
}

base::Status HealthInbox::load() {
  struct stat st {};
  if (::fstat(fd_.get(), &st) != 0) return base::Status::from_errno("cannot stat " + path_);
  if (static_cast<uint64_t>(st.st_size) > kFileBytesMax)
    return base::Status::error(EFBIG, path_ + " is larger than 1 GiB; move it away");
  base::Bytes data(static_cast<size_t>(st.st_size));
  size_t have = 0;
  while (have < data.size()) {
    ssize_t n = ::pread(fd_.get(), data.data() + have, data.size() - have, static_cast<off_t>(have));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return base::Status::from_errno("cannot read " + path_);
    have += static_cast<size_t>(n);
  }
  size_t good = 0;
  while (data.size() - good >= kHeaderBytes + kTrailerBytes) {
    base::ByteReader r(base::ByteSpan(data).subspan(good));
    const uint32_t magic = r.u32();
    Entry e;
    e.id = r.u64();
    e.received_unix_ms = static_cast<int64_t>(r.u64());
    const uint32_t length = r.u32();
    if (magic != kMagic || length > kHealthReportFileBytesMax || r.remaining() < length + kTrailerBytes) break;
    base::ByteSpan report = r.span(length);
    const uint32_t check = r.u32();
    if (check != fnv1a(base::ByteSpan(data).subspan(good + 4, 8 + 8 + 4 + length))) break;
    e.report.assign(report.begin(), report.end());
    if (ids_.insert(e.id).second) entries_.push_back(std::move(e));
    good += kHeaderBytes + length + kTrailerBytes;
  }
  // Whatever follows the last whole entry is a torn append: cut it off.
  if (good < data.size() && ::ftruncate(fd_.get(), static_cast<off_t>(good)) != 0)
    return base::Status::from_errno("cannot cut the torn end off " + path_);
  return base::Status::ok();
}

base::Result<bool> HealthInbox::receive(uint64_t id, base::ByteSpan report) {
  if (ids_.count(id) != 0) return false;
  if (report.size() > kHealthReportFileBytesMax)
    return base::Status::error(EMSGSIZE, "a health report of " + std::to_string(report.size()) + " bytes is too large");
  Entry e{id, unix_ms(), base::Bytes(report.begin(), report.end())};
  base::Bytes out;
  base::ByteWriter w(out);
  w.u32(kMagic);
  w.u64(e.id);
  w.u64(static_cast<uint64_t>(e.received_unix_ms));
  w.u32(static_cast<uint32_t>(report.size()));
  w.raw(report);
  w.u32(fnv1a(base::ByteSpan(out).subspan(4)));
  const off_t end = ::lseek(fd_.get(), 0, SEEK_END);
  if (end < 0) return base::Status::from_errno("cannot append to " + path_);
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::pwrite(fd_.get(), out.data() + done, out.size() - done, end + static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      base::Status s = base::Status::from_errno("cannot append to " + path_);
      (void)::ftruncate(fd_.get(), end);
      return s;
    }
    done += static_cast<size_t>(n);
  }
  if (::fdatasync(fd_.get()) != 0) return base::Status::from_errno("cannot sync " + path_);
  ids_.insert(id);
  entries_.push_back(std::move(e));
  return true;
}

}  // namespace origin
