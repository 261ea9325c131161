// SPDX-License-Identifier: MIT
// The dm-log-writes log format (Linux drivers/md/dm-log-writes.c; QEMU's
// blklogwrites driver writes the same): a Linux original's commit log of
// every write, flush, FUA, discard and mark of a block device (docs/ORIGINS.md,
// ../shared/reference/real-kernel-testing.md). Decoding only: no I/O, so the
// rules are unit-tested and fuzzed on bytes.
//
// Layout, all little-endian. Sector 0 is the super block: u64 magic, u64
// version (1), u64 nr_entries, u32 sectorsize (512 or 4096). Entries follow
// from sector 1, each a header that fills one sector (u64 sector, u64
// nr_sectors, u64 flags, u64 data_len; a mark's name after those 32 bytes),
// then for a write nr_sectors x sectorsize bytes of data. sector and
// nr_sectors count sectorsize units.
//
// Every refusal is a sentence that names the entry's index and the byte
// offset of its header in the log, and nothing of a refused entry is used.
#pragma once

#include <cstdint>
#include <string>

#include "base/bytes.h"
#include "base/status.h"

namespace origin::log_writes {

inline constexpr uint64_t kMagic = 0x6a736677736872ull;
inline constexpr uint64_t kVersion = 1;
inline constexpr uint64_t kFlagFlush = 1;
inline constexpr uint64_t kFlagFua = 2;
inline constexpr uint64_t kFlagDiscard = 4;
inline constexpr uint64_t kFlagMark = 8;
inline constexpr uint64_t kFlagMetadata = 16;  // a filesystem's hint; changes nothing here
inline constexpr uint64_t kFlagsKnown = kFlagFlush | kFlagFua | kFlagDiscard | kFlagMark | kFlagMetadata;
inline constexpr size_t kEntryHeaderBytes = 32;
inline constexpr size_t kSuperBytesMin = 28;  // the fields; the rest of sector 0 is zero
// A mark names a point a person may ask for ("before-upgrade"); longer names
// are refused rather than cut.
inline constexpr size_t kMarkNameBytesMax = 255;

struct Super {
  uint64_t nr_entries = 0;  // entries written so far: trust this, not the file size
  uint32_t sector_bytes = 0;
};

// The clone's disk, which every entry must fit without rounding.
struct Target {
  uint64_t disk_bytes = 0;
  uint32_t logical_block_bytes = 0;
};

enum class Kind { write, discard, flush, mark };

struct Entry {
  uint64_t index = 0;             // 0 is the first entry after the super block
  uint64_t log_offset_bytes = 0;  // where its header starts in the log
  Kind kind = Kind::flush;
  // A write or flush that asks for durability: a flush before its write
  // (FLUSH, a preflush) or after it (FUA). A bare flush has flush_before.
  bool flush_before = false;
  bool fua = false;
  uint64_t offset_bytes = 0;  // on the disk: write, discard
  uint64_t length_bytes = 0;
  std::string mark;                    // a mark's name
  uint64_t data_log_offset_bytes = 0;  // a write's data in the log
  uint64_t next_log_offset_bytes = 0;  // the next entry's header
};

// Decodes the super block from the log's first bytes (at least
// kSuperBytesMin; the caller reads the whole first sector to check it).
base::Result<Super> decode_super(base::ByteSpan first_bytes);

// Decodes entry `index`, whose header sector (super.sector_bytes bytes)
// starts at `log_offset_bytes`, and checks it against the clone's disk.
base::Status decode_entry(const Super& super, base::ByteSpan header_sector, uint64_t index, uint64_t log_offset_bytes,
                          const Target& target, Entry& out);

// "entry 12 (log offset 6656)": how refusals name an entry.
std::string where(uint64_t index, uint64_t log_offset_bytes);

}  // namespace origin::log_writes
