// SPDX-License-Identifier: MIT
#include "origin/health_inbox.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/file_io.h"
#include "base/log.h"
#include "base/units.h"

namespace origin {
namespace {

constexpr uint32_t kMagic = 0x31505248;  // "HRP1"
constexpr size_t kHeaderBytes = 4 + 8 + 8 + 4;
constexpr size_t kTrailerBytes = 4;
constexpr uint64_t kFileBytesMax = uint64_t{1} << 30;  // refuse to read a file beyond this
constexpr int kReopensMax = 16;  // compactions of other processes in a row before giving up

uint32_t fnv1a(base::ByteSpan bytes) {
  uint32_t h = 2166136261u;
  for (uint8_t b : bytes) h = (h ^ b) * 16777619u;
  return h;
}

base::Bytes encode_entry(const HealthInbox::Entry& e) {
  base::Bytes out;
  base::ByteWriter w(out);
  w.u32(kMagic);
  w.u64(e.id);
  w.u64(static_cast<uint64_t>(e.received_unix_ms));
  w.u32(static_cast<uint32_t>(e.report.size()));
  w.raw(base::ByteSpan(e.report));
  w.u32(fnv1a(base::ByteSpan(out).subspan(4)));
  return out;
}

base::UniqueFd open_file(const std::string& path) {
  return base::UniqueFd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
}

}  // namespace

base::Result<std::unique_ptr<HealthInbox>> HealthInbox::open(const std::string& state_dir, size_t entries_max) {
  BASE_TRY(base::make_dirs(state_dir, 0700));
  std::unique_ptr<HealthInbox> inbox(new HealthInbox(std::max<size_t>(entries_max, 2)));
  inbox->dir_ = state_dir;
  inbox->path_ = state_dir + "/health-reports.log";
  const bool existed = ::access(inbox->path_.c_str(), F_OK) == 0;
  inbox->fd_ = open_file(inbox->path_);
  if (!inbox->fd_) return base::Status::from_errno("cannot open " + inbox->path_);
  // A report is acknowledged once its append is synced: the file's own
  // directory entry must be durable before the first (fdatasync covers only
  // the file).
  if (!existed) BASE_TRY(base::sync_dir(state_dir));
  BASE_TRY(inbox->lock_current());
  base::Status status = inbox->load_tail();
  if (status) {
    // A full inbox that cannot be compacted still works: it only grows.
    if (base::Status compacted = inbox->compact_if_full(); !compacted)
      LOG_WARN("could not compact the health inbox: %s", compacted.message().c_str());
  }
  inbox->unlock();
  if (!status) return status;
  return inbox;
}

// Takes the exclusive lock on the file now at path_. A compaction by another
// process renames a new file over the one we hold: then the one we hold is
// no longer the inbox, and we read the new one from its start.
base::Status HealthInbox::lock_current() {
  for (int i = 0; i < kReopensMax; ++i) {
    while (::flock(fd_.get(), LOCK_EX) != 0) {
      if (errno != EINTR) return base::Status::from_errno("cannot lock " + path_);
    }
    struct stat held {}, named {};
    if (::fstat(fd_.get(), &held) != 0) return base::Status::from_errno("cannot stat " + path_);
    if (::stat(path_.c_str(), &named) == 0 && named.st_dev == held.st_dev && named.st_ino == held.st_ino)
      return base::Status::ok();
    ::flock(fd_.get(), LOCK_UN);
    fd_ = open_file(path_);
    if (!fd_) return base::Status::from_errno("cannot open " + path_);
    loaded_bytes_ = 0;
    entries_.clear();
    by_id_.clear();
  }
  return base::Status::error(EAGAIN, path_ + " was replaced " + std::to_string(kReopensMax) +
                                         " times while waiting for it; try again");
}

void HealthInbox::unlock() { ::flock(fd_.get(), LOCK_UN); }

// Reads the entries appended since loaded_bytes_ (by us or by another
// process). Under the lock: whatever follows the last whole entry is a torn
// append, cut off.
base::Status HealthInbox::load_tail() {
  struct stat st {};
  if (::fstat(fd_.get(), &st) != 0) return base::Status::from_errno("cannot stat " + path_);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size > kFileBytesMax) return base::Status::error(EFBIG, path_ + " is larger than 1 GiB; move it away");
  if (size < loaded_bytes_) {  // shortened behind our back: read it anew
    loaded_bytes_ = 0;
    entries_.clear();
    by_id_.clear();
  }
  base::Bytes data(static_cast<size_t>(size - loaded_bytes_));
  BASE_TRY(base::pread_full(fd_.get(), data, loaded_bytes_).with_context("cannot read " + path_));
  // The whole entry at `at` (its size, its report in `report`), or 0.
  const auto entry_at = [&](size_t at, Entry& e, base::ByteSpan& report) -> size_t {
    if (data.size() - at < kHeaderBytes + kTrailerBytes) return 0;
    base::ByteReader r(base::ByteSpan(data).subspan(at));
    const uint32_t magic = r.u32();
    e.id = r.u64();
    e.received_unix_ms = static_cast<int64_t>(r.u64());
    const uint32_t length = r.u32();
    if (magic != kMagic || length > kHealthReportFileBytesMax || r.remaining() < length + kTrailerBytes) return 0;
    report = r.span(length);
    const uint32_t check = r.u32();
    if (check != fnv1a(base::ByteSpan(data).subspan(at + 4, 8 + 8 + 4 + length))) return 0;
    return kHeaderBytes + length + kTrailerBytes;
  };
  size_t good = 0;
  while (good < data.size()) {
    Entry e;
    base::ByteSpan report;
    size_t bytes = entry_at(good, e, report);
    if (bytes == 0) {
      // Damage in the middle (a flipped bit) costs that entry only: the
      // entries after it were acknowledged to the clone, which forgot them.
      // Only what no whole entry follows is a torn append.
      size_t next = good + 1;
      while (next < data.size() && (bytes = entry_at(next, e, report)) == 0) ++next;
      if (bytes == 0) break;
      LOG_WARN("%s: skipped %zu damaged bytes at byte %llu (an entry lost; the ones after it kept)", path_.c_str(),
               next - good, static_cast<unsigned long long>(loaded_bytes_ + good));
      good = next;
    }
    if (!holds(e.id, report)) {
      e.report.assign(report.begin(), report.end());
      remember(std::move(e));
    }
    good += bytes;
  }
  if (good < data.size()) {
    LOG_WARN("%s: cut %zu bytes of a torn or damaged entry off its end", path_.c_str(), data.size() - good);
    if (::ftruncate(fd_.get(), static_cast<off_t>(loaded_bytes_ + good)) != 0)
      return base::Status::from_errno("cannot cut the torn end off " + path_);
  }
  loaded_bytes_ += good;
  return base::Status::ok();
}

// Under the lock: past entries_max_, the newest half goes to a new file that
// replaces this one (synced before the rename, and the directory after it,
// so a crash leaves the old file or the whole new one).
base::Status HealthInbox::compact_if_full() {
  if (entries_.size() <= entries_max_) return base::Status::ok();
  const size_t keep = entries_max_ / 2;
  std::vector<Entry> kept(entries_.end() - static_cast<std::ptrdiff_t>(keep), entries_.end());
  const std::string tmp = path_ + ".tmp";
  base::UniqueFd out(::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!out) return base::Status::from_errno("cannot create " + tmp);
  base::Bytes bytes;
  for (const Entry& e : kept) {
    base::Bytes one = encode_entry(e);
    bytes.insert(bytes.end(), one.begin(), one.end());
  }
  base::Status s = base::pwrite_full(out.get(), bytes, 0).with_context("cannot write " + tmp);
  if (s && ::fsync(out.get()) != 0) s = base::Status::from_errno("cannot sync " + tmp);
  if (s && ::rename(tmp.c_str(), path_.c_str()) != 0) s = base::Status::from_errno("cannot replace " + path_);
  if (!s) {
    (void)::unlink(tmp.c_str());
    return s;
  }
  (void)base::sync_dir(dir_);
  LOG_INFO("%s: kept the newest %zu of %zu health reports", path_.c_str(), keep, entries_.size());
  // The new file is the inbox now; the lock on the old one is released with it.
  unlock();
  fd_ = std::move(out);
  while (::flock(fd_.get(), LOCK_EX) != 0 && errno == EINTR) {
  }
  entries_.clear();
  by_id_.clear();
  for (Entry& e : kept) remember(std::move(e));
  loaded_bytes_ = bytes.size();
  return base::Status::ok();
}

bool HealthInbox::holds(uint64_t id, base::ByteSpan report) const {
  const auto [first, last] = by_id_.equal_range(id);
  for (auto it = first; it != last; ++it) {
    const base::Bytes& kept = entries_[it->second].report;
    if (std::equal(kept.begin(), kept.end(), report.begin(), report.end())) return true;
  }
  return false;
}

void HealthInbox::remember(Entry e) {
  by_id_.emplace(e.id, entries_.size());
  entries_.push_back(std::move(e));
}

base::Result<bool> HealthInbox::receive(uint64_t id, base::ByteSpan report) {
  if (report.size() > kHealthReportFileBytesMax)
    return base::Status::error(EMSGSIZE, "a health report of " + std::to_string(report.size()) + " bytes is too large");
  BASE_TRY(lock_current());
  base::Status status = load_tail();
  if (!status) {
    unlock();
    return status;
  }
  if (holds(id, report)) {
    unlock();
    return false;
  }
  Entry e{id, base::unix_ms(), base::Bytes(report.begin(), report.end())};
  const base::Bytes out = encode_entry(e);
  const off_t end = static_cast<off_t>(loaded_bytes_);
  status = base::pwrite_full(fd_.get(), out, static_cast<uint64_t>(end)).with_context("cannot append to " + path_);
  if (status && ::fdatasync(fd_.get()) != 0) status = base::Status::from_errno("cannot sync " + path_);
  if (!status) {
    // The next append writes at the same offset and a reader stops at a torn
    // entry; the cut only keeps the file from holding a half entry meanwhile.
    if (::ftruncate(fd_.get(), end) != 0)
      LOG_WARN("cannot cut a failed append off %s: %s", path_.c_str(), std::strerror(errno));
    unlock();
    return status;
  }
  loaded_bytes_ += out.size();
  remember(std::move(e));
  status = compact_if_full();
  unlock();
  if (!status) LOG_WARN("could not compact the health inbox: %s", status.message().c_str());
  return true;
}

}  // namespace origin
