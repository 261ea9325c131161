// SPDX-License-Identifier: MIT
// A fingerprint of the clone's disk: keyed digests of the few small regions
// that change whenever the disk is used outside the daemon (a partition table
// edit, a read-write mount, the clone's own OS booted once). The daemon records
// one when the disk is quiet and compares a fresh one before it writes again;
// any difference makes the clone Diverged (design.md, invariant 7).
//
// What is read: the first and last MiB of the disk, the MBR or GPT (both
// copies), and per partition (at most kPartitionsMax; the whole disk when there
// is no table) the ext2/3/4 superblock, or NTFS's boot sector, metadata
// records ($MFT..$Extend), $LogFile restart pages, $MFT bitmap and cluster
// bitmap (its first 4 MiB), or else the
// first 128 KiB of the partition. docs/DIVERGED.md says what this catches and
// what it does not.
//
// Threading: take_fingerprint reads the device from the calling thread only;
// the other functions are pure.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"
#include "blockio/device.h"
#include "digest/digest.h"

namespace diverge {

inline constexpr uint32_t kPartitionsMax = 16;

// What a region is; it picks the sentence differences() writes. Stored in
// encodings: append only.
enum class RegionKind : uint8_t {
  disk_head = 1,        // first 1 MiB of the disk
  disk_tail = 2,        // last 1 MiB of the disk
  mbr = 3,              // MBR partition table (disk signature + 4 entries + 0x55AA)
  gpt_header = 4,
  gpt_entries = 5,
  gpt_backup_header = 6,
  gpt_backup_entries = 7,
  ext_superblock = 8,
  ntfs_boot_sector = 9,
  ntfs_metadata_records = 10,  // $MFT records 0-15
  ntfs_logfile = 11,           // $LogFile's two restart pages
  ntfs_mft_bitmap = 12,        // which $MFT records are in use (when non-resident)
  partition_head = 13,         // first 128 KiB of a partition with no filesystem we parse
  ntfs_cluster_bitmap = 14,    // $Bitmap: which clusters are in use (first 4 MiB of it)
};
inline constexpr uint8_t kRegionKindMax = 14;

// A parsed value shown in sentences: {"mount count", "4"}, {"volume dirty", "no"}.
struct Fact {
  std::string name;
  std::string value;
  bool operator==(const Fact&) const = default;
};

struct Region {
  RegionKind kind = RegionKind::disk_head;
  std::string name;   // stable and unique in a fingerprint: "ext4 superblock on partition 1"
  std::string where;  // "partition 1", "the whole disk", or "" for disk-level regions
  uint64_t offset_bytes = 0;
  uint64_t length_bytes = 0;
  digest::Digest digest{};
  std::vector<Fact> facts;
};

struct Fingerprint {
  uint64_t disk_bytes = 0;
  std::vector<Region> regions;
  // The cost of taking it (not encoded: decode leaves them 0).
  uint64_t bytes_read = 0;
  uint64_t elapsed_us = 0;
};

// Reads the regions above from `dev` and digests them with `key` (the pair's
// digest key). Fails only when a read fails; content it cannot parse (garbage
// tables, unknown filesystems) is fingerprinted as raw regions.
base::Result<Fingerprint> take_fingerprint(blockio::BlockDevice& dev, const digest::DigestKey& key);

// One plain sentence per changed, added or removed region (and for a changed
// disk size); empty when no divergence is detected. Both fingerprints must
// come from the same digest key.
std::vector<std::string> differences(const Fingerprint& before, const Fingerprint& after);

// A versioned byte encoding for the state store. decode() takes untrusted
// bytes (the store lives on a USB stick): every count and length is bounded,
// and a refusal says what was wrong.
base::Bytes encode(const Fingerprint& fingerprint);
base::Status decode(base::ByteSpan bytes, Fingerprint& out);

}  // namespace diverge
