// SPDX-License-Identifier: MIT
// The reference original's store of the clone's health reports: an
// append-only file in its state directory, deduplicated by report id.
//
// File state_dir/health-reports.log, a sequence of entries:
//   magic:u32 (0x31505248, "HRP1") id:u64 received_unix_ms:i64 length:u32
//   report[length] check:u32 (FNV-1a over id..report)
// A torn last entry (a crash during an append) is cut off at open. An entry
// is fsynced before receive() returns, so an acknowledged report survives a
// crash. Threading: one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"
#include "base/unique_fd.h"

namespace origin {

inline constexpr uint32_t kHealthReportFileBytesMax = 64 * 1024;  // one entry's report

class HealthInbox {
 public:
  struct Entry {
    uint64_t id = 0;
    int64_t received_unix_ms = 0;
    base::Bytes report;  // hwhealth::encode_report bytes, as received
  };

  // Opens (creating) state_dir/health-reports.log and reads what it holds.
  static base::Result<std::unique_ptr<HealthInbox>> open(const std::string& state_dir);

  // Keeps the report unless one of this id is kept already. ok(true): kept
  // now; ok(false): a duplicate, nothing written. Durable once it returns ok.
  base::Result<bool> receive(uint64_t id, base::ByteSpan report);

  // In the order received.
  const std::vector<Entry>& entries() const { return entries_; }
  const std::string& path() const { return path_; }

 private:
  HealthInbox() = default;
  base::Status load();

  std::string path_;
  base::UniqueFd fd_;
  std::vector<Entry> entries_;
  std::set<uint64_t> ids_;
};

}  // namespace origin
