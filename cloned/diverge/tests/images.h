// SPDX-License-Identifier: MIT
// Synthetic disk images in memory for the diverge tests: MBR and GPT tables
// laid out as the specifications say (GPT CRCs left zero: the fingerprint
// does not check them), and an ext4-like superblock.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "base/aligned_buffer.h"
#include "base/bytes.h"
#include "blockio/memory_device.h"

namespace diverge_test {

constexpr uint64_t kSector = 512;

inline void write_bytes(blockio::MemoryDevice& dev, uint64_t offset, const base::Bytes& bytes) {
  // Read-modify-write whole sectors through an aligned buffer (the device's contract).
  const uint64_t first = offset / kSector * kSector;
  const uint64_t end = (offset + bytes.size() + kSector - 1) / kSector * kSector;
  base::AlignedBuffer buf(end - first);
  REQUIRE(dev.read(first, buf.span()).is_ok());
  std::copy(bytes.begin(), bytes.end(), buf.data() + (offset - first));
  REQUIRE(dev.write(first, buf.span()).is_ok());
}

struct MbrEntry {
  uint8_t type = 0x83;
  uint32_t start_lba = 0;
  uint32_t sectors = 0;
  uint8_t status = 0;
};

inline void write_mbr(blockio::MemoryDevice& dev, const std::vector<MbrEntry>& entries) {
  base::Bytes s(512, 0);
  for (size_t i = 0; i < entries.size() && i < 4; ++i) {
    uint8_t* e = &s[446 + 16 * i];
    e[0] = entries[i].status;
    e[4] = entries[i].type;
    base::store_le32(e + 8, entries[i].start_lba);
    base::store_le32(e + 12, entries[i].sectors);
  }
  s[510] = 0x55;
  s[511] = 0xAA;
  write_bytes(dev, 0, s);
}

struct GptPart {
  uint32_t slot = 0;  // 0-based entry index
  uint64_t first_lba = 0;
  uint64_t last_lba = 0;
};

inline base::Bytes gpt_header(uint64_t my_lba, uint64_t alternate_lba, uint64_t entries_lba, uint64_t disk_blocks,
                              uint32_t entry_count = 128, uint32_t entry_bytes = 128) {
  base::Bytes h(512, 0);
  std::copy_n("EFI PART", 8, h.begin());
  base::store_le32(&h[8], 0x00010000);
  base::store_le32(&h[12], 92);
  base::store_le64(&h[24], my_lba);
  base::store_le64(&h[32], alternate_lba);
  base::store_le64(&h[40], 34);
  base::store_le64(&h[48], disk_blocks - 34);
  h[56] = 0x42;  // disk GUID, any non-zero
  base::store_le64(&h[72], entries_lba);
  base::store_le32(&h[80], entry_count);
  base::store_le32(&h[84], entry_bytes);
  return h;
}

inline void write_gpt(blockio::MemoryDevice& dev, const std::vector<GptPart>& parts) {
  const uint64_t blocks = dev.geometry().size_bytes / kSector;
  write_mbr(dev, {{0xEE, 1, uint32_t(blocks - 1), 0}});
  base::Bytes entries(128 * 128, 0);
  for (const GptPart& p : parts) {
    uint8_t* e = &entries[p.slot * 128];
    e[0] = 0xAF;  // type GUID, any non-zero
    e[16] = uint8_t(p.slot + 1);
    base::store_le64(e + 32, p.first_lba);
    base::store_le64(e + 40, p.last_lba);
  }
  write_bytes(dev, kSector, gpt_header(1, blocks - 1, 2, blocks));
  write_bytes(dev, 2 * kSector, entries);
  write_bytes(dev, (blocks - 33) * kSector, entries);
  write_bytes(dev, (blocks - 1) * kSector, gpt_header(blocks - 1, 1, blocks - 33, blocks));
}

// A superblock at `fs_offset + 1024` that the fingerprint reads as ext4.
inline void write_ext4_superblock(blockio::MemoryDevice& dev, uint64_t fs_offset, uint16_t mount_count,
                                  uint32_t write_time_s) {
  base::Bytes sb(1024, 0);
  base::store_le32(&sb[0x2C], write_time_s - 60);  // last mount
  base::store_le32(&sb[0x30], write_time_s);       // last write
  base::store_le16(&sb[0x34], mount_count);
  base::store_le16(&sb[0x38], 0xEF53);
  base::store_le16(&sb[0x3A], 1);  // clean
  base::store_le32(&sb[0x60], 0x40 | 0x200);  // extents, flex_bg
  base::store_le64(&sb[0x178], 4096u * mount_count);
  write_bytes(dev, fs_offset + 1024, sb);
}

}  // namespace diverge_test
