// SPDX-License-Identifier: MIT
// The reference original's store of the clone's health reports: an
// append-only file in its state directory, deduplicated by report.
//
// File state_dir/health-reports.log, a sequence of entries:
//   magic:u32 (0x31505248, "HRP1") id:u64 received_unix_ms:i64 length:u32
//   report[length] check:u32 (FNV-1a over id..report)
//
// A report is a duplicate (a resend whose ack was lost) when an entry of the
// same id holds the same bytes: a clone resends the stored bytes unchanged.
// A report of a known id with other bytes is kept: a clone whose state store
// was made anew (a new stick) numbers its reports from 1 again.
//
// Several processes may hold the file (`clone-origin replicate` and
// `clone-origin health` at once): every read and append runs under an
// exclusive flock(2), and reads what others appended since. A torn last
// entry (a crash during an append) is cut off under that lock. An entry is
// fsynced before receive() returns, so an acknowledged report survives a
// crash. Past `entries_max` entries the file is compacted to the newest half:
// written to a new file, synced and renamed over the old one; a process
// still holding the old file notices the rename at its next lock and reopens.
// Threading: one thread at a time per HealthInbox.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"
#include "base/unique_fd.h"

namespace origin {

inline constexpr uint32_t kHealthReportFileBytesMax = 64 * 1024;  // one entry's report
// About eleven years of daily summaries; compaction keeps the newest half.
inline constexpr size_t kHealthInboxEntriesMax = 4096;

class HealthInbox {
 public:
  struct Entry {
    uint64_t id = 0;
    int64_t received_unix_ms = 0;
    base::Bytes report;  // hwhealth::encode_report bytes, as received
  };

  // Opens (creating) state_dir/health-reports.log and reads what it holds.
  static base::Result<std::unique_ptr<HealthInbox>> open(const std::string& state_dir,
                                                         size_t entries_max = kHealthInboxEntriesMax);

  // Keeps the report unless it is kept already. ok(true): kept now;
  // ok(false): a duplicate, nothing written. Durable once it returns ok.
  base::Result<bool> receive(uint64_t id, base::ByteSpan report);

  // In the order received (as of the last open or receive).
  const std::vector<Entry>& entries() const { return entries_; }
  const std::string& path() const { return path_; }

 private:
  explicit HealthInbox(size_t entries_max) : entries_max_(entries_max) {}
  base::Status lock_current();
  void unlock();
  base::Status load_tail();
  base::Status compact_if_full();
  bool holds(uint64_t id, base::ByteSpan report) const;
  void remember(Entry e);

  const size_t entries_max_;
  std::string dir_;
  std::string path_;
  base::UniqueFd fd_;
  uint64_t loaded_bytes_ = 0;  // the file's bytes parsed into entries_
  std::vector<Entry> entries_;
  std::multimap<uint64_t, size_t> by_id_;  // id -> index in entries_
};

}  // namespace origin
