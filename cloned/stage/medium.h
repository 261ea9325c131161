// SPDX-License-Identifier: MIT
// What a stage file sits on (stage.h): a file on the stick, next to the state
// store, behind an interface with a fault injector (conventions.md, "every OS
// boundary"). FileMedium is the real file with real fsync; MemoryMedium a
// file in memory, for tests (like blockio's MemoryDevice); FaultyMedium
// keeps unsynced writes in memory like blockio's FaultyDevice, so a test can
// cut the power, tear a write, or make the stick report ENOSPC or EIO.
//
// Errors are values carrying errno and the request (offset=, len=).
// Threading: one thread at a time (the store's or the apply's).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"

namespace stage {

class Medium {
 public:
  virtual ~Medium() = default;
  // Writes all of `data` at `offset_bytes`; the file grows as needed.
  virtual base::Status write(uint64_t offset_bytes, base::ByteSpan data) = 0;
  // Reads up to out.size() bytes; fewer only where the file ends.
  virtual base::Result<size_t> read(uint64_t offset_bytes, base::MutableByteSpan out) = 0;
  virtual base::Result<uint64_t> size_bytes() = 0;
  virtual base::Status truncate(uint64_t size_bytes) = 0;
  // Everything written before is on stable storage when it returns ok.
  virtual base::Status sync() = 0;
  // Bytes still free on the filesystem the file lives on (statvfs).
  virtual base::Result<uint64_t> free_bytes() = 0;
  virtual std::string describe() const = 0;
};

// Opens `path` read-write, creating it (mode 0600) when `create`; the
// directory entry is synced when the file is new.
base::Result<std::unique_ptr<Medium>> open_file(const std::string& path, bool create);
// Bytes free for an unprivileged writer on the filesystem holding `dir` (statvfs).
base::Result<uint64_t> free_bytes_at(const std::string& dir);
// Removes `path` and syncs its directory; a missing file is fine.
base::Status remove_file(const std::string& path);

// A file in memory, for tests that run many stages and cannot wait for real
// fsyncs (the seeded simulation). The bytes live in a MemoryFile that
// outlives every medium opened on it, as a file outlives the daemon's runs;
// every write is "durable" (put a FaultyMedium over it to lose some).
struct MemoryFile {
  bool exists = false;
  base::Bytes bytes;
  uint64_t free_bytes = 1ull << 40;  // what free_bytes() reports
};
// Like open_file: ENOENT when the file does not exist and !create.
base::Result<std::unique_ptr<Medium>> open_memory(std::shared_ptr<MemoryFile> file, bool create);
// Like remove_file: a missing file is fine.
void remove_memory(MemoryFile& file);

// Fault injection over another medium. Writes since the last sync stay in an
// overlay (reads see them) until sync() passes them on; power_cut() loses
// them (tear_last: the last one survives in part), after which every call
// fails with EIO until revive(). A truncate passes the overlay on first (the
// stage syncs right after each one, so losing it is no case worth a fake).
struct MediumFaults {
  int64_t fail_write_after = -1;  // the (n+1)th write and all after fail; -1 = never
  int64_t fail_sync_after = -1;   // the (n+1)th sync and all after fail; -1 = never
  int64_t fail_read_after = -1;   // the (n+1)th read and all after fail; -1 = never
  int error_code = 5;             // EIO; ENOSPC (28) for a full stick
  int64_t free_bytes = -1;        // reported free space; -1 = the inner medium's
};

class FaultyMedium final : public Medium {
 public:
  explicit FaultyMedium(std::unique_ptr<Medium> inner) : inner_(std::move(inner)) {}
  base::Status write(uint64_t offset_bytes, base::ByteSpan data) override;
  base::Result<size_t> read(uint64_t offset_bytes, base::MutableByteSpan out) override;
  base::Result<uint64_t> size_bytes() override;
  base::Status truncate(uint64_t size_bytes) override;
  base::Status sync() override;
  base::Result<uint64_t> free_bytes() override;
  std::string describe() const override { return "faulty " + inner_->describe(); }

  void set_faults(const MediumFaults& faults) {
    faults_ = faults;
    writes_ = 0;
    syncs_ = 0;
    reads_ = 0;
  }
  // Loses what was not synced; with tear_last, the first `torn_bytes` of the
  // last unsynced write survive.
  void power_cut(bool tear_last = false, size_t torn_bytes = 0);
  void revive() { powered_ = true; }
  size_t unsynced_count() const { return pending_.size(); }

 private:
  struct Pending {
    uint64_t offset_bytes;
    base::Bytes data;
  };
  base::Status check() const;
  std::unique_ptr<Medium> inner_;
  MediumFaults faults_;
  int64_t writes_ = 0;
  int64_t syncs_ = 0;
  int64_t reads_ = 0;
  bool powered_ = true;
  std::vector<Pending> pending_;  // in order of writing
};

}  // namespace stage
