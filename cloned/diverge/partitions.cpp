// SPDX-License-Identifier: MIT
// MBR (primary entries only) and UEFI GPT, read as the specifications lay
// them out. A table that does not parse is still digested, as raw bytes.
#include <cstring>

#include "cloned/diverge/internal.h"

namespace diverge::detail {
namespace {

constexpr uint64_t kMbrTableOffset = 440;  // disk signature, 4 entries, 0x55AA
constexpr uint64_t kMbrTableBytes = 72;
constexpr uint64_t kGptEntriesBytesMax = kMiB;
constexpr uint32_t kGptEntryBytesMax = 4096;

bool is_extended(uint8_t type) { return type == 0x05 || type == 0x0F || type == 0x85; }

// A filesystem boot sector also ends in 0x55AA: NTFS or FAT at sector 0 means
// "no partition table".
bool looks_like_boot_sector(const base::Bytes& s) {
  if (std::memcmp(&s[3], "NTFS    ", 8) == 0) return true;
  const bool jump = s[0] == 0xEB || s[0] == 0xE9;
  return jump && (std::memcmp(&s[0x36], "FAT", 3) == 0 || std::memcmp(&s[0x52], "FAT", 3) == 0);
}

void set_partition_count(RegionReader& reader, size_t region_index, const PartitionTable& table) {
  reader.fingerprint().regions[region_index].facts = {
      {"partitions", std::to_string(table.partitions.size())}};
}

void add_partition(PartitionTable& table, uint32_t number, uint64_t offset_bytes, uint64_t length_bytes) {
  if (table.partitions.size() >= kPartitionsMax) {
    ++table.entries_skipped;
    return;
  }
  table.partitions.push_back({number, offset_bytes, length_bytes});
}

void parse_mbr_entries(const RegionReader& reader, const base::Bytes& sector, PartitionTable& table) {
  const uint64_t bs = reader.block_bytes();
  for (uint32_t i = 0; i < 4; ++i) {
    const uint8_t* e = &sector[446 + 16 * i];
    const uint8_t type = e[4];
    const uint64_t start = base::load_le32(e + 8);
    const uint64_t count = base::load_le32(e + 12);
    if (type == 0) continue;
    if (is_extended(type) || start == 0 || count == 0 || !reader.inside(start * bs, count * bs)) {
      ++table.entries_skipped;
      continue;
    }
    add_partition(table, i + 1, start * bs, count * bs);
  }
}

struct GptHeader {
  uint64_t alternate_lba = 0;
  uint64_t entries_lba = 0;
  uint32_t entry_count = 0;  // capped to fit kGptEntriesBytesMax
  uint32_t entry_bytes = 0;
};

// Parses the header at `lba`; false when it is not a usable GPT header.
bool parse_gpt_header(const RegionReader& reader, const base::Bytes& block, uint64_t lba, GptHeader& out) {
  if (std::memcmp(block.data(), "EFI PART", 8) != 0) return false;
  const uint32_t header_bytes = base::load_le32(&block[12]);
  if (header_bytes < 92 || header_bytes > block.size()) return false;
  if (base::load_le64(&block[24]) != lba) return false;
  out.alternate_lba = base::load_le64(&block[32]);
  out.entries_lba = base::load_le64(&block[72]);
  const uint32_t count = base::load_le32(&block[80]);
  out.entry_bytes = base::load_le32(&block[84]);
  if (out.entry_bytes < 128 || out.entry_bytes % 128 != 0 || out.entry_bytes > kGptEntryBytesMax) return false;
  if (count == 0) return false;
  out.entry_count = count < kGptEntriesBytesMax / out.entry_bytes ? count
                                                                  : uint32_t(kGptEntriesBytesMax / out.entry_bytes);
  const uint64_t bs = reader.block_bytes();
  if (out.entries_lba == 0 || out.entries_lba > reader.disk_bytes() / bs) return false;
  return reader.inside(out.entries_lba * bs, uint64_t(out.entry_count) * out.entry_bytes);
}

void parse_gpt_entries(const RegionReader& reader, const base::Bytes& entries, const GptHeader& h,
                       PartitionTable& table) {
  static const uint8_t kUnused[16] = {};
  const uint64_t bs = reader.block_bytes();
  const uint64_t disk_blocks = reader.disk_bytes() / bs;
  for (uint32_t i = 0; i < h.entry_count; ++i) {
    const uint8_t* e = &entries[size_t(i) * h.entry_bytes];
    if (std::memcmp(e, kUnused, 16) == 0) continue;
    const uint64_t first = base::load_le64(e + 32);
    const uint64_t last = base::load_le64(e + 40);
    if (first == 0 || first > last || last >= disk_blocks) {
      ++table.entries_skipped;
      continue;
    }
    add_partition(table, i + 1, first * bs, (last - first + 1) * bs);
  }
}

// The backup header (at the primary's alternate LBA, else the last block) and
// the entries it points to. Digested only; the partitions come from the primary.
base::Status fingerprint_backup_gpt(RegionReader& reader, const GptHeader& primary) {
  const uint64_t bs = reader.block_bytes();
  const uint64_t disk_blocks = reader.disk_bytes() / bs;
  if (disk_blocks < 3) return base::Status::ok();
  uint64_t lba = primary.alternate_lba;
  if (lba <= 1 || lba >= disk_blocks) lba = disk_blocks - 1;
  base::Result<base::Bytes> block = reader.read_region(RegionKind::gpt_backup_header, "backup GPT header", "",
                                                       lba * bs, bs);
  if (!block) return block.status();
  GptHeader backup;
  if (!parse_gpt_header(reader, block.value(), lba, backup)) return base::Status::ok();
  return reader.digest_region(RegionKind::gpt_backup_entries, "backup GPT entries", "", backup.entries_lba * bs,
                              uint64_t(backup.entry_count) * backup.entry_bytes);
}

// Behind a protective MBR. kind stays none when the primary header is unusable.
base::Status fingerprint_gpt(RegionReader& reader, PartitionTable& table) {
  const uint64_t bs = reader.block_bytes();
  if (!reader.inside(bs, bs)) return base::Status::ok();
  base::Result<base::Bytes> block = reader.read_region(RegionKind::gpt_header, "GPT header", "", bs, bs);
  if (!block) return block.status();
  GptHeader h;
  if (!parse_gpt_header(reader, block.value(), 1, h)) return base::Status::ok();
  base::Result<base::Bytes> entries = reader.read_region(RegionKind::gpt_entries, "GPT entries", "",
                                                         h.entries_lba * bs, uint64_t(h.entry_count) * h.entry_bytes);
  if (!entries) return entries.status();
  const size_t entries_index = reader.fingerprint().regions.size() - 1;
  table.kind = TableKind::gpt;
  parse_gpt_entries(reader, entries.value(), h, table);
  set_partition_count(reader, entries_index, table);
  return fingerprint_backup_gpt(reader, h);
}

}  // namespace

base::Result<PartitionTable> fingerprint_partition_table(RegionReader& reader) {
  PartitionTable table;
  if (reader.disk_bytes() < 512) return table;
  base::Result<base::Bytes> sector = reader.read(0, 512);
  if (!sector) return sector.status();
  const base::Bytes& s = sector.value();
  base::ByteSpan mbr(s.data() + kMbrTableOffset, kMbrTableBytes);
  reader.add(RegionKind::mbr, "partition table (MBR)", "", kMbrTableOffset, mbr);
  const size_t mbr_index = reader.fingerprint().regions.size() - 1;

  if (s[510] != 0x55 || s[511] != 0xAA || looks_like_boot_sector(s)) return table;
  bool protective = false;
  for (int i = 0; i < 4; ++i) {
    const uint8_t status = s[446 + 16 * i];
    if (status != 0x00 && status != 0x80) return table;  // not a partition table
    protective = protective || s[446 + 16 * i + 4] == 0xEE;
  }
  if (protective) {
    BASE_TRY(fingerprint_gpt(reader, table));
    return table;
  }
  table.kind = TableKind::mbr;
  parse_mbr_entries(reader, s, table);
  set_partition_count(reader, mbr_index, table);
  return table;
}

}  // namespace diverge::detail
