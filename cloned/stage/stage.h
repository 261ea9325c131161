// SPDX-License-Identifier: MIT
// The stage: a redo log of resync extents on the stick (issue 18; docs/
// ARCHITECTURE.md, "Staged resync"). While the clone holds a whole generation
// G, a resync to G+1 appends its extents here instead of writing the disk;
// at the resync's end they are copied to the disk in the order they were
// staged (apply_stage), which may be repeated after a crash: the copy is
// idempotent, so a power cut during it is finished on the next start, with
// no original.
//
// File format (little-endian; docs/ARCHITECTURE.md has the grammar):
//   header  = "CLNSTAGE" version:u32 header_bytes:u32 generation:u64
//             base_generation:u64 disk_bytes:u64 reserved:u64 checksum:16
//   entry   = "STGE" kind:u8 pad:3 offset_bytes:u64 length_bytes:u64
//             digest:32 checksum:16 payload (length_bytes for kind data, none for zero)
// Each checksum is unkeyed BLAKE2b-128 over what precedes it in the header,
// or over the entry's first 56 bytes and its payload. The record digest is the
// original's keyed one, kept so the copy can be checked end to end.
//
// Durability: the stage is synced at each resync mark, and the state store
// then records how many bytes of it are durable (ReplicaState::stage). On
// open, every entry below that length must be whole and intact (else a clear
// error: the stage is refused, the disk is untouched); anything past it is a
// torn or unacknowledged tail and is cut off.
//
// Bounds: the file never grows past Limits::max_bytes, and an append that
// would leave less than Limits::free_reserve_bytes free on the stick is
// refused with ENOSPC before it writes anything.
//
// Threading: one thread at a time owns a Stage.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/bytes.h"
#include "base/status.h"
#include "blockio/device.h"
#include "cloned/stage/medium.h"

namespace stage {

inline constexpr uint32_t kVersion = 1;
inline constexpr uint64_t kHeaderBytes = 64;
inline constexpr uint64_t kEntryHeaderBytes = 72;
inline constexpr uint64_t kChecksumBytes = 16;
inline constexpr uint64_t kDigestBytes = 32;
// A resync extent is at most 1 MiB (config: [resync] extent_bytes); a larger
// length in an entry is damage, not data.
inline constexpr uint64_t kEntryPayloadBytesMax = 16ull << 20;

struct Header {
  uint64_t generation = 0;       // the generation being staged (G+1)
  uint64_t base_generation = 0;  // the one the disk holds meanwhile (G; equal for a repair)
  uint64_t disk_bytes = 0;       // the disk's size: every entry lies inside it
};

struct Limits {
  uint64_t max_bytes = 8ull << 30;            // [resync] stage_max_bytes
  uint64_t free_reserve_bytes = 64ull << 20;  // left free on the stick for the state store
};

enum class EntryKind : uint8_t { data = 1, zero = 2 };

struct Entry {
  EntryKind kind = EntryKind::data;
  uint64_t offset_bytes = 0;
  uint64_t length_bytes = 0;
  uint8_t digest[kDigestBytes] = {};
  uint64_t at_bytes = 0;  // where the entry starts in the file
};

// Bytes an entry takes in the file.
inline uint64_t entry_bytes(EntryKind kind, uint64_t length_bytes) {
  return kEntryHeaderBytes + (kind == EntryKind::data ? length_bytes : 0);
}

class Stage {
 public:
  // A fresh stage: the medium is emptied, the header written and synced.
  static base::Result<Stage> create(std::unique_ptr<Medium> medium, const Header& header, const Limits& limits);
  // An existing stage of which `durable_bytes` were recorded as durable.
  static base::Result<Stage> open(std::unique_ptr<Medium> medium, uint64_t durable_bytes, const Limits& limits);

  // Appends an extent (not yet durable: sync()). Refused, with nothing
  // written, when it lies outside the disk or the stage would pass its bounds.
  base::Status append_data(uint64_t offset_bytes, base::ByteSpan data, base::ByteSpan digest);
  base::Status append_zero(uint64_t offset_bytes, uint64_t length_bytes);
  // Everything appended so far is on stable storage when it returns ok.
  base::Status sync();

  // Calls `visit` for each entry in order; `payload` is the data (empty for
  // a zero entry). An entry that fails its checksum stops the walk with a
  // clear error.
  using Visitor = std::function<base::Status(const Entry&, base::ByteSpan payload)>;
  base::Status for_each(const Visitor& visit) const;

  const Header& header() const { return header_; }
  uint64_t size_bytes() const { return size_bytes_; }      // appended so far
  uint64_t synced_bytes() const { return synced_bytes_; }  // of which durable
  uint64_t entry_count() const { return entry_count_; }
  // The extents' bytes that will be written to the disk (zeros included).
  uint64_t staged_disk_bytes() const { return staged_disk_bytes_; }
  Medium& medium() { return *medium_; }

 private:
  Stage(std::unique_ptr<Medium> medium, const Header& header, const Limits& limits)
      : medium_(std::move(medium)), header_(header), limits_(limits) {}
  base::Status append(EntryKind kind, uint64_t offset_bytes, uint64_t length_bytes, base::ByteSpan data,
                      base::ByteSpan digest);
  base::Status check_room(uint64_t bytes);
  base::Status scan(uint64_t durable_bytes);

  std::unique_ptr<Medium> medium_;
  Header header_;
  Limits limits_;
  uint64_t size_bytes_ = 0;
  uint64_t synced_bytes_ = 0;
  uint64_t entry_count_ = 0;
  uint64_t staged_disk_bytes_ = 0;
  uint64_t free_checked_at_bytes_ = 0;  // size when free space was last asked
  uint64_t free_bytes_ = 0;             // as it was then
};

// Copies every staged entry to `device` in order, then flushes it. Safe to
// repeat from the start after any interruption (a redo log). Each data
// entry's payload is checked against its checksum before it is written.
// On failure `*disk_fault` (when given) names the disk's operation that
// failed (a write or the flush) and where; its op stays null when the stick
// failed (a read, a damaged entry) or the stage.
struct DiskFault {
  const char* op = nullptr;  // "write", "write zeroes", "flush"
  uint64_t offset_bytes = 0;
  uint64_t length_bytes = 0;
};
base::Status apply_stage(const Stage& stage, blockio::BlockDevice& device, DiskFault* disk_fault = nullptr);

}  // namespace stage
