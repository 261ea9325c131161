// SPDX-License-Identifier: MIT
#include "origin/log_writes_file.h"

#include <fcntl.h>
#include <sodium.h>

#include <algorithm>
#include <cerrno>

#include "base/file_io.h"
#include "base/units.h"
#include "origin/image.h"
#include "proto/messages.h"

namespace origin::log_writes {

using base::u64s;

void plan_entry(const Entry& e, EpochState& epoch, std::vector<Planned>& out) {
  const auto barrier = [&](std::string mark) {
    out.push_back({Planned::Type::barrier, 0, 0, 0, std::move(mark)});
    epoch = {};
  };
  // The entry's records (at most record_max bytes each) in the open epoch. A
  // preflush, or an entry that does not fit what the epoch has left
  // (kEpochSplitBytes), closes it first. An entry larger than a whole epoch
  // (one write-zeroes of 256 MiB) is cut by barriers between its records:
  // the retained log frees nothing before a barrier, so one epoch past it
  // would wait forever; and a crash can leave a large write part done, so
  // each cut is a state the original's disk could hold.
  const auto records = [&](Planned::Type type, uint64_t record_max, bool payload) {
    const uint64_t count = (e.length_bytes + record_max - 1) / record_max;
    const uint64_t whole = (payload ? e.length_bytes : 0) + count * kPlannedRecordCostBytes;
    if (epoch.open && (e.flush_before || epoch.bytes + whole > kEpochSplitBytes)) barrier({});
    for (uint64_t done = 0; done < e.length_bytes;) {
      const uint64_t n = std::min<uint64_t>(e.length_bytes - done, record_max);
      const uint64_t cost = (payload ? n : 0) + kPlannedRecordCostBytes;
      if (epoch.open && epoch.bytes + cost > kEpochSplitBytes) barrier({});
      out.push_back({type, e.offset_bytes + done, n, payload ? e.data_log_offset_bytes + done : 0, {}});
      epoch.open = true;
      epoch.bytes += cost;
      done += n;
    }
  };
  switch (e.kind) {
    case Kind::flush:
      if (epoch.open) barrier({});
      return;
    case Kind::mark:
      barrier(e.mark);
      return;
    case Kind::discard:
      records(Planned::Type::trim, proto::kMaxExtentBytes, false);
      return;
    case Kind::write:
      records(Planned::Type::write, proto::kMaxWritePayloadBytes, true);
      if (e.fua) barrier({});
      return;
  }
}

base::Result<LogFile> LogFile::open(const std::string& path) {
  LogFile f;
  f.path_ = path;
  f.fd_ = base::UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!f.fd_) return base::Status::from_errno("cannot open the log " + path);
  BASE_TRY(f.refresh());
  f.sector_bytes_ = f.super_.sector_bytes;
  return f;
}

base::Status LogFile::refresh() {
  // The super block fills sector 0; the decoder needs its first bytes.
  base::Bytes first(kSuperBytesMin);
  base::Result<size_t> got = base::pread_upto(fd_.get(), first, 0);
  if (!got) return got.status().with_context("cannot read the log " + path_);
  first.resize(*got);
  base::Result<Super> s = decode_super(first);
  if (!s) return base::Status::error(s.status().code(), path_ + ": " + s.status().message());
  if (super_.sector_bytes != 0 && s->sector_bytes != super_.sector_bytes)
    return base::Status::error(EINVAL, path_ + ": the log's sector size changed from " + u64s(super_.sector_bytes) +
                                           " to " + u64s(s->sector_bytes) + " bytes; it was rewritten");
  if (s->nr_entries < super_.nr_entries)
    return base::Status::error(EINVAL, path_ + ": the log now holds " + u64s(s->nr_entries) +
                                           " entries where it held " + u64s(super_.nr_entries) +
                                           "; a log only grows, so it was rewritten");
  super_ = *s;
  return base::Status::ok();
}

base::Status LogFile::read(base::MutableByteSpan out, uint64_t log_offset) {
  base::Status s = base::pread_full(fd_.get(), out, log_offset);
  if (!s.is_ok()) return s.with_context("cannot read the log " + path_);
  return s;
}

// The log only grows: its size is looked up again only when an entry
// reaches past the size last seen, not once per entry.
base::Result<uint64_t> LogFile::size_reaching(uint64_t end) {
  if (end <= size_) return size_;
  // A log on a block device (dm-log-writes' log device) has no st_size.
  base::Result<uint64_t> size = file_or_device_size(fd_.get(), "the log " + path_);
  if (!size) return size.status();
  size_ = *size;
  return size_;
}

base::Status LogFile::read_entry(uint64_t index, uint64_t log_offset, const Target& target, Entry& out) {
  const uint64_t sector = super_.sector_bytes;
  base::Result<uint64_t> got = size_reaching(log_offset + sector);
  if (!got) return got.status();
  uint64_t size = *got;
  if (log_offset > size || size - log_offset < sector)
    return base::Status::error(EINVAL, "the log's " + where(index, log_offset) +
                                           " is cut short: the super block counts " + u64s(super_.nr_entries) +
                                           " entries but the log ends at byte " + u64s(size) +
                                           "; nothing of it was sent (the log file is left as it is).");
  base::Bytes header(sector);
  BASE_TRY(read(header, log_offset));
  BASE_TRY(decode_entry(super_, header, index, log_offset, target, out));
  got = size_reaching(out.next_log_offset_bytes);
  if (!got) return got.status();
  size = *got;
  if (out.next_log_offset_bytes > size)
    return base::Status::error(EINVAL, "the log's " + where(index, log_offset) +
                                           " is cut short: its data ends at byte " + u64s(out.next_log_offset_bytes) +
                                           " but the log ends at byte " + u64s(size) +
                                           "; nothing of it was sent (the log file is left as it is).");
  return base::Status::ok();
}

base::Result<std::string> LogFile::window_digest(uint64_t from, uint64_t to) {
  base::Result<uint64_t> size = size_reaching(to);
  if (!size) return size.status();
  if (*size < to)
    return base::Status::error(ENODATA,
                               "the log " + path_ + " ends at byte " + u64s(*size) + ", before byte " + u64s(to) + ".");
  const uint32_t sector = sector_bytes_;
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, crypto_generichash_BYTES);
  crypto_generichash_update(&st, reinterpret_cast<const uint8_t*>(&sector), sizeof sector);
  base::Bytes chunk;
  for (uint64_t at = from; at < to;) {
    chunk.resize(std::min<uint64_t>(to - at, 1u << 20));
    BASE_TRY(read(chunk, at));
    crypto_generichash_update(&st, chunk.data(), chunk.size());
    at += chunk.size();
  }
  uint8_t d[crypto_generichash_BYTES];
  crypto_generichash_final(&st, d, sizeof d);
  return base::to_hex(base::ByteSpan(d, sizeof d));
}

}  // namespace origin::log_writes
