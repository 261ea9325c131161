// SPDX-License-Identifier: MIT
// NTFS: the boot sector, the first 16 $MFT records (the metadata files
// $MFT..$Extend; $Volume holds the dirty flag), the two restart pages at the
// start of $LogFile (Windows rewrites them on every mount, ntfs-3g resets a
// used journal), and the $MFT bitmap (a file created or deleted anywhere
// flips a bit there). Located by parsing, as the format lays them out:
// boot sector -> $MFT -> records 0, 2, 3 and 6 -> their attributes' data
// runs. The cluster bitmap ($Bitmap, capped) catches a file that grew or
// shrank; an in-place rewrite or a new timestamp of an existing file changes
// only that file's own record, which we do not read (docs/DIVERGED.md).
#include <cstring>
#include <optional>

#include "cloned/diverge/internal.h"

namespace diverge::detail {
namespace {

constexpr uint32_t kMetadataRecords = 16;
constexpr uint32_t kFixupStrideBytes = 512;
constexpr uint64_t kLogPageBytesDefault = 4096;
constexpr uint64_t kLogPageBytesMax = 64 * 1024;
constexpr uint64_t kMftBitmapBytesMax = 256 * 1024;
// One bit per cluster: 4 MiB covers the first 128 GiB of a volume of 4 KiB clusters.
constexpr uint64_t kClusterBitmapBytesMax = 4 * kMiB;
constexpr uint32_t kAttributesMax = 64;
constexpr uint32_t kAttrVolumeInformation = 0x70;
constexpr uint32_t kAttrData = 0x80;
constexpr uint32_t kAttrBitmap = 0xB0;

struct Volume {
  uint64_t offset_bytes = 0;  // of the partition
  uint64_t length_bytes = 0;
  uint64_t cluster_bytes = 0;
  uint64_t record_bytes = 0;
  uint64_t mft_lcn = 0;
};

bool power_of_two(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

// The geometry in the boot sector, checked; nullopt when it makes no sense.
std::optional<Volume> parse_boot_sector(const base::Bytes& s, const Partition& part) {
  Volume v;
  v.offset_bytes = part.offset_bytes;
  v.length_bytes = part.length_bytes;
  const uint64_t sector_bytes = base::load_le16(&s[0x0B]);
  if (!power_of_two(sector_bytes) || sector_bytes < 256 || sector_bytes > 4096) return std::nullopt;
  const uint8_t spc = s[0x0D];
  // Above 0x80 the byte is a negative power of two (clusters over 64 KiB).
  const uint64_t sectors_per_cluster = spc <= 0x80 ? spc : (256 - spc <= 12 ? uint64_t(1) << (256 - spc) : 0);
  if (!power_of_two(sectors_per_cluster)) return std::nullopt;
  v.cluster_bytes = sector_bytes * sectors_per_cluster;
  if (v.cluster_bytes > 2 * kMiB) return std::nullopt;
  const int8_t cpr = static_cast<int8_t>(s[0x40]);
  if (cpr > 0) v.record_bytes = v.cluster_bytes * uint64_t(cpr);
  else if (cpr < 0 && cpr >= -16) v.record_bytes = uint64_t(1) << (-cpr);
  if (!power_of_two(v.record_bytes) || v.record_bytes < 512 || v.record_bytes > 64 * 1024) return std::nullopt;
  v.mft_lcn = base::load_le64(&s[0x30]);
  if (v.mft_lcn >= part.length_bytes / v.cluster_bytes) return std::nullopt;
  if (v.mft_lcn * v.cluster_bytes + kMetadataRecords * v.record_bytes > part.length_bytes) return std::nullopt;
  return v;
}

// Undoes the update sequence ("fixups") of a record in place: the last two
// bytes of every 512-byte stride were saved in the array. False when torn
// or malformed.
bool apply_fixups(std::span<uint8_t> record) {
  if (record.size() < kFixupStrideBytes) return false;
  const uint32_t usa_offset = base::load_le16(&record[4]);
  const uint32_t usa_count = base::load_le16(&record[6]);
  if (usa_count != record.size() / kFixupStrideBytes + 1) return false;
  if (usa_offset % 2 != 0 || usa_offset + 2 * usa_count > kFixupStrideBytes) return false;
  const uint8_t* usa = &record[usa_offset];
  for (uint32_t i = 1; i < usa_count; ++i) {
    uint8_t* tail = &record[i * kFixupStrideBytes - 2];
    if (tail[0] != usa[0] || tail[1] != usa[1]) return false;
    tail[0] = usa[2 * i];
    tail[1] = usa[2 * i + 1];
  }
  return true;
}

// The first unnamed attribute of `type` in a fixed-up FILE record.
std::optional<std::span<const uint8_t>> find_attribute(std::span<const uint8_t> record, uint32_t type) {
  if (std::memcmp(record.data(), "FILE", 4) != 0) return std::nullopt;
  const uint64_t used = base::load_le32(&record[0x18]);
  uint64_t at = base::load_le16(&record[0x14]);
  if (used > record.size()) return std::nullopt;
  for (uint32_t n = 0; n < kAttributesMax && at + 16 <= used; ++n) {
    const uint32_t t = base::load_le32(&record[at]);
    const uint64_t length = base::load_le32(&record[at + 4]);
    if (t == 0xFFFFFFFF || length < 24 || length > used - at) return std::nullopt;
    if (t == type && record[at + 9] == 0) return record.subspan(at, length);
    at += length;
  }
  return std::nullopt;
}

std::optional<std::span<const uint8_t>> resident_value(std::span<const uint8_t> attr) {
  if (attr[8] != 0) return std::nullopt;
  const uint64_t length = base::load_le32(&attr[0x10]);
  const uint64_t offset = base::load_le16(&attr[0x14]);
  if (offset > attr.size() || length > attr.size() - offset) return std::nullopt;
  return attr.subspan(offset, length);
}

struct Run {
  uint64_t lcn = 0;
  uint64_t clusters = 0;
};

// The first data run of a non-resident attribute that starts at VCN 0.
std::optional<Run> first_run(std::span<const uint8_t> attr) {
  if (attr[8] != 1 || attr.size() < 64 || base::load_le64(&attr[0x10]) != 0) return std::nullopt;
  const uint64_t at = base::load_le16(&attr[0x20]);
  if (at >= attr.size()) return std::nullopt;
  const uint8_t header = attr[at];
  const uint32_t length_n = header & 0x0F;
  const uint32_t offset_n = header >> 4;
  if (length_n == 0 || length_n > 8 || offset_n == 0 || offset_n > 8) return std::nullopt;  // 0: sparse
  if (at + 1 + length_n + offset_n > attr.size()) return std::nullopt;
  Run run;
  for (uint32_t i = 0; i < length_n; ++i) run.clusters |= uint64_t(attr[at + 1 + i]) << (8 * i);
  uint64_t lcn = 0;
  for (uint32_t i = 0; i < offset_n; ++i) lcn |= uint64_t(attr[at + 1 + length_n + i]) << (8 * i);
  if ((attr[at + length_n + offset_n] & 0x80) != 0) return std::nullopt;  // negative: not a first run
  run.lcn = lcn;
  return run;
}

// The byte range of `run`'s first `want` bytes inside the volume, if it is.
std::optional<uint64_t> run_offset(const Volume& v, const Run& run, uint64_t want_bytes) {
  if (run.lcn >= v.length_bytes / v.cluster_bytes) return std::nullopt;
  if (run.clusters == 0 || run.clusters > v.length_bytes / v.cluster_bytes) return std::nullopt;
  if (run.lcn * v.cluster_bytes + want_bytes > v.length_bytes) return std::nullopt;
  if (want_bytes > run.clusters * v.cluster_bytes) return std::nullopt;
  return v.offset_bytes + run.lcn * v.cluster_bytes;
}

std::span<uint8_t> record(base::Bytes& records, const Volume& v, uint32_t n) {
  return {records.data() + n * v.record_bytes, v.record_bytes};
}

std::vector<Fact> volume_facts(base::Bytes& records, const Volume& v) {
  std::span<uint8_t> r = record(records, v, 3);  // $Volume
  if (!apply_fixups(r)) return {{"$Volume record", "unreadable"}};
  auto attr = find_attribute(r, kAttrVolumeInformation);
  auto value = attr ? resident_value(*attr) : std::nullopt;
  if (!value || value->size() < 12) return {{"$Volume record", "without volume information"}};
  const uint16_t flags = base::load_le16(&(*value)[10]);
  return {{"volume dirty", (flags & 0x0001) != 0 ? "yes" : "no"},
          {"NTFS version", std::to_string((*value)[8]) + "." + std::to_string((*value)[9])}};
}

std::vector<Fact> journal_facts(const base::Bytes& page) {
  static const uint8_t kEmpty[4] = {0xFF, 0xFF, 0xFF, 0xFF};
  if (std::memcmp(page.data(), kEmpty, 4) == 0) return {{"journal", "empty"}};
  if (std::memcmp(page.data(), "RSTR", 4) != 0) return {{"journal", "unrecognised"}};
  const uint64_t area = base::load_le16(&page[0x18]);
  if (area + 16 > page.size()) return {{"journal", "unrecognised"}};
  const uint64_t lsn = base::load_le64(&page[area]);
  const bool clean = (base::load_le16(&page[area + 0x0E]) & 0x0002) != 0;
  return {{"journal", clean ? "clean" : "in use"}, {"journal LSN", std::to_string(lsn)}};
}

base::Status fingerprint_logfile(RegionReader& reader, const Volume& v, base::Bytes& records,
                                 const std::string& where) {
  std::span<uint8_t> r = record(records, v, 2);  // $LogFile
  if (!apply_fixups(r)) return base::Status::ok();
  auto attr = find_attribute(r, kAttrData);
  auto run = attr ? first_run(*attr) : std::nullopt;
  if (!run) return base::Status::ok();
  auto at = run_offset(v, *run, 2 * kLogPageBytesDefault);
  if (!at) return base::Status::ok();
  base::Result<base::Bytes> first = reader.read(*at, kLogPageBytesDefault);
  if (!first) return first.status();
  uint64_t page_bytes = kLogPageBytesDefault;
  if (std::memcmp(first->data(), "RSTR", 4) == 0) {
    const uint64_t system_page = base::load_le32(&first.value()[0x10]);
    if (power_of_two(system_page) && system_page >= 512 && system_page <= kLogPageBytesMax &&
        run_offset(v, *run, 2 * system_page)) {
      page_bytes = system_page;
    }
  }
  base::Result<base::Bytes> pages = reader.read(*at, 2 * page_bytes);
  if (!pages) return pages.status();
  reader.add(RegionKind::ntfs_logfile, "NTFS $LogFile restart pages on " + where, where, *at, pages.value(),
             journal_facts(pages.value()));
  return base::Status::ok();
}

base::Status fingerprint_mft_bitmap(RegionReader& reader, const Volume& v, base::Bytes& records,
                                    const std::string& where) {
  std::span<uint8_t> r = record(records, v, 0);  // $MFT
  if (!apply_fixups(r)) return base::Status::ok();
  auto attr = find_attribute(r, kAttrBitmap);
  auto run = attr ? first_run(*attr) : std::nullopt;  // resident: inside record 0 already
  if (!run) return base::Status::ok();
  const uint64_t data_bytes = base::load_le64(&(*attr)[0x30]);
  uint64_t want = run->clusters * v.cluster_bytes;
  if (data_bytes < want) want = data_bytes;
  if (want > kMftBitmapBytesMax) want = kMftBitmapBytesMax;
  auto at = want == 0 ? std::nullopt : run_offset(v, *run, want);
  if (!at) return base::Status::ok();
  return reader.digest_region(RegionKind::ntfs_mft_bitmap, "NTFS $MFT bitmap on " + where, where, *at, want);
}

base::Status fingerprint_cluster_bitmap(RegionReader& reader, const Volume& v, base::Bytes& records,
                                       const std::string& where) {
  std::span<uint8_t> r = record(records, v, 6);  // $Bitmap
  if (!apply_fixups(r)) return base::Status::ok();
  auto attr = find_attribute(r, kAttrData);
  auto run = attr ? first_run(*attr) : std::nullopt;
  if (!run) return base::Status::ok();
  const uint64_t data_bytes = base::load_le64(&(*attr)[0x30]);
  uint64_t want = run->clusters * v.cluster_bytes;
  if (data_bytes < want) want = data_bytes;
  const bool capped = want > kClusterBitmapBytesMax;
  if (capped) want = kClusterBitmapBytesMax;
  auto at = want == 0 ? std::nullopt : run_offset(v, *run, want);
  if (!at) return base::Status::ok();
  const uint64_t covered_mib = want * 8 * v.cluster_bytes / kMiB;
  const std::string covered = covered_mib % 1024 == 0 ? std::to_string(covered_mib / 1024) + " GiB"
                                                       : std::to_string(covered_mib) + " MiB";
  const std::string covers = capped ? "the first " + covered + " of the volume" : "the volume";
  return reader.digest_region(RegionKind::ntfs_cluster_bitmap, "NTFS cluster bitmap on " + where, where, *at, want,
                              {{"covers", covers}});
}

}  // namespace

base::Result<bool> fingerprint_ntfs(RegionReader& reader, const Partition& part, const std::string& where) {
  if (part.length_bytes < 64 * 1024) return false;
  base::Result<base::Bytes> boot = reader.read(part.offset_bytes, 512);
  if (!boot) return boot.status();
  if (std::memcmp(&boot.value()[3], "NTFS    ", 8) != 0) return false;
  std::optional<Volume> v = parse_boot_sector(boot.value(), part);
  reader.add(RegionKind::ntfs_boot_sector, "NTFS boot sector on " + where, where, part.offset_bytes, boot.value(),
             {{"layout", v ? "understood" : "not understood"}});
  if (!v) return true;
  const uint64_t at = v->offset_bytes + v->mft_lcn * v->cluster_bytes;
  base::Result<base::Bytes> records = reader.read(at, kMetadataRecords * v->record_bytes);
  if (!records) return records.status();
  base::Bytes parsed = records.value();  // fixups rewrite it; the digest is over the disk's bytes
  reader.add(RegionKind::ntfs_metadata_records, "NTFS metadata records on " + where, where, at, records.value(),
             volume_facts(parsed, *v));
  BASE_TRY(fingerprint_logfile(reader, *v, parsed, where));
  BASE_TRY(fingerprint_mft_bitmap(reader, *v, parsed, where));
  BASE_TRY(fingerprint_cluster_bitmap(reader, *v, parsed, where));
  return true;
}

}  // namespace diverge::detail
