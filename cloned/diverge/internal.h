// SPDX-License-Identifier: MIT
// Internal to cloned/diverge: the region reader and the parsers of partition
// tables and filesystems. Everything parsed here comes from a disk someone
// else may have written: every offset and length is checked against the disk
// (or the buffer) before use.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/aligned_buffer.h"
#include "cloned/diverge/fingerprint.h"

namespace diverge::detail {

inline constexpr uint64_t kMiB = 1 << 20;

// Reads exact byte ranges through the device's alignment rules (whole logical
// blocks into an aligned buffer) and appends digested regions to a
// fingerprint. Counts the bytes it reads.
class RegionReader {
 public:
  RegionReader(blockio::BlockDevice& dev, const digest::DigestKey& key, Fingerprint& out);

  uint64_t disk_bytes() const { return disk_bytes_; }
  uint32_t block_bytes() const { return block_bytes_; }
  // True when [offset, offset+length) lies inside the disk (no overflow).
  bool inside(uint64_t offset_bytes, uint64_t length_bytes) const;
  // The bytes of the range; the range must be inside() (asserted).
  base::Result<base::Bytes> read(uint64_t offset_bytes, uint64_t length_bytes);
  // Appends a region digesting `bytes`, which were read at `offset_bytes`.
  void add(RegionKind kind, std::string name, std::string where, uint64_t offset_bytes,
           base::ByteSpan bytes, std::vector<Fact> facts = {});
  // read() then add(); returns the bytes for parsing.
  base::Result<base::Bytes> read_region(RegionKind kind, std::string name, std::string where,
                                        uint64_t offset_bytes, uint64_t length_bytes);
  // The same for a region nobody parses: digested in place, not copied.
  base::Status digest_region(RegionKind kind, std::string name, std::string where, uint64_t offset_bytes,
                             uint64_t length_bytes, std::vector<Fact> facts = {});
  Fingerprint& fingerprint() { return out_; }

 private:
  // Reads the blocks around the range into `buffer`; `view` is the range in it.
  base::Status read_blocks(uint64_t offset_bytes, uint64_t length_bytes, base::AlignedBuffer& buffer,
                           base::ByteSpan& view);

  blockio::BlockDevice& dev_;
  const digest::DigestKey& key_;
  Fingerprint& out_;
  uint64_t disk_bytes_;
  uint32_t block_bytes_;
};

struct Partition {
  uint32_t number = 0;  // 1-based, as Linux names them (sda1 = table slot 0)
  uint64_t offset_bytes = 0;
  uint64_t length_bytes = 0;
};

enum class TableKind { none, mbr, gpt };

struct PartitionTable {
  TableKind kind = TableKind::none;
  std::vector<Partition> partitions;  // at most kPartitionsMax
  uint32_t entries_skipped = 0;       // out of range, over the cap, or extended containers
};

// Fingerprints the MBR and, behind a protective MBR, both GPT copies; returns
// the partitions found. kind none (no or unusable table) means: probe the
// whole disk as one filesystem.
base::Result<PartitionTable> fingerprint_partition_table(RegionReader& reader);

// Fingerprints the filesystem at `part` (ext2/3/4, NTFS, or the partition's
// first 128 KiB when neither is found; nothing extra for an unknown
// filesystem on the whole disk, which "first 1 MiB" covers).
base::Status fingerprint_filesystem(RegionReader& reader, const Partition& part, const std::string& where);

// Returns false when no ext2/3/4 superblock is at `part`.
base::Result<bool> fingerprint_ext(RegionReader& reader, const Partition& part, const std::string& where);
base::Result<bool> fingerprint_ntfs(RegionReader& reader, const Partition& part, const std::string& where);

// "2026-11-22 06:40:01 UTC", or "never" for 0.
std::string format_utc(int64_t unix_s);

}  // namespace diverge::detail
