// SPDX-License-Identifier: MIT
// A dm-log-writes log on disk (log_writes.h decodes its bytes), and the
// rule that turns its entries into log records (docs/ORIGINS.md):
//
//   write    -> write records of at most 1 MiB (a FLUSH flag first closes
//               the open epoch; a FUA closes it after the write)
//   discard  -> trim records of at most 1 GiB
//   flush    -> a barrier, when the open epoch holds a record
//   mark     -> a barrier naming the mark (always: the mark needs one)
//
// The rule depends only on the entries and on where it starts (always right
// after a barrier), so a run that resumes from a saved entry numbers every
// record exactly as the interrupted run did.
//
// The file is only read (O_RDONLY), never changed. Threading: one owner
// thread; read(), window_digest() and sector_bytes() may also be called from
// another thread (pread, no shared state).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "base/unique_fd.h"
#include "origin/log_writes.h"

namespace origin::log_writes {

// One record an entry becomes (before it has a sequence number).
struct Planned {
  enum class Type { write, trim, barrier } type = Type::barrier;
  uint64_t offset_bytes = 0;  // on the disk
  uint64_t length_bytes = 0;
  uint64_t data_log_offset = 0;  // write: where its payload is in the log
  std::string mark;              // barrier: the mark it names, "" = none
};

// An epoch holds at most this much written data: a write that would take
// the open epoch past it is preceded by a barrier. Without it an epoch the
// original never flushed (a copy of gigabytes between two journal commits)
// could outgrow the original's retained log, which frees records only once
// a barrier after them is committed. A barrier there gives the clone a
// state a crash of the original could have left (any part of an unflushed
// epoch may be durable). A constant: the numbering must not depend on
// settings (a resumed run numbers every record as the interrupted one).
inline constexpr uint64_t kEpochSplitBytes = 64ull << 20;
// What an epoch's record counts toward it beside a write's payload: at least
// what the retained log charges a record (its header and bookkeeping), so
// that a run of discards (trims) is cut as well.
inline constexpr uint64_t kPlannedRecordCostBytes = 256;

// The epoch being planned: whether it holds a record, and what its records
// cost (payloads and kPlannedRecordCostBytes each).
struct EpochState {
  bool open = false;
  uint64_t bytes = 0;
};

// Appends what `entry` becomes, given and updating the open epoch.
void plan_entry(const Entry& entry, EpochState& epoch, std::vector<Planned>& out);

class LogFile {
 public:
  // Opens the log read-only and reads its super block.
  static base::Result<LogFile> open(const std::string& path);

  // Reads the super block again (a live log grows: trust nr_entries).
  base::Status refresh();
  const Super& super() const { return super_; }
  // Fixed at open (refresh() refuses a change): safe to read from another
  // thread while the owner refreshes.
  uint32_t sector_bytes() const { return sector_bytes_; }
  const std::string& path() const { return path_; }

  // Reads and decodes entry `index` whose header is at `log_offset`, and
  // checks that the log holds all of its data; the refusal names the entry.
  base::Status read_entry(uint64_t index, uint64_t log_offset, const Target& target, Entry& out);
  // BLAKE2b (hex) of the log's bytes [from, to) and its sector size: how a
  // log is recognised again. The position keeps the digest of the first
  // MiB after the super block (which log) and of the MiB before the next
  // entry to send (not rewritten since): entries' headers and data, which
  // differ between two captures as soon as a filesystem writes a UUID, a
  // timestamp or a journal commit. Two logs equal in both windows pass.
  // ENODATA: the log ends before `to`.
  base::Result<std::string> window_digest(uint64_t from, uint64_t to);
  // Reads `out.size()` bytes of the log at `log_offset`.
  base::Status read(base::MutableByteSpan out, uint64_t log_offset);

 private:
  std::string path_;
  base::UniqueFd fd_;
  base::Result<uint64_t> size_reaching(uint64_t end);

  Super super_;
  uint32_t sector_bytes_ = 0;
  uint64_t size_ = 0;  // the log's size when last looked up (owner thread only)
};

}  // namespace origin::log_writes
