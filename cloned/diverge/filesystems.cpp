// SPDX-License-Identifier: MIT
// Which filesystem sits on a partition, and the ext2/3/4 superblock (the
// kernel rewrites it on every read-write mount: mount count, times, state).
#include "cloned/diverge/internal.h"

namespace diverge::detail {
namespace {

constexpr uint64_t kExtSuperblockOffset = 1024;
constexpr uint64_t kExtSuperblockBytes = 1024;
constexpr uint16_t kExtMagic = 0xEF53;
constexpr uint64_t kPartitionHeadBytes = 128 * 1024;

const char* ext_flavour(const base::Bytes& sb) {
  const uint32_t compat = base::load_le32(&sb[0x5C]);
  const uint32_t incompat = base::load_le32(&sb[0x60]);
  const uint32_t ext4_only = 0x40 | 0x80 | 0x200;  // extents, 64bit, flex_bg
  if ((incompat & ext4_only) != 0) return "ext4";
  if ((compat & 0x4) != 0) return "ext3";  // has_journal
  return "ext2";
}

std::string ext_state(uint16_t state) {
  std::string text = (state & 0x1) != 0 ? "clean" : "not clean";
  if ((state & 0x2) != 0) text += ", with errors";
  return text;
}

std::vector<Fact> ext_facts(const base::Bytes& sb) {
  const int64_t mount_s = int64_t(base::load_le32(&sb[0x2C])) | (int64_t(sb[0x275]) << 32);
  const int64_t write_s = int64_t(base::load_le32(&sb[0x30])) | (int64_t(sb[0x274]) << 32);
  return {
      {"mount count", std::to_string(base::load_le16(&sb[0x34]))},
      {"state", ext_state(base::load_le16(&sb[0x3A]))},
      {"last mount", format_utc(mount_s)},
      {"last write", format_utc(write_s)},
      {"kbytes written", std::to_string(base::load_le64(&sb[0x178]))},
  };
}

}  // namespace

base::Result<bool> fingerprint_ext(RegionReader& reader, const Partition& part, const std::string& where) {
  if (part.length_bytes < kExtSuperblockOffset + kExtSuperblockBytes) return false;
  const uint64_t at = part.offset_bytes + kExtSuperblockOffset;
  base::Result<base::Bytes> sb = reader.read(at, kExtSuperblockBytes);
  if (!sb) return sb.status();
  if (base::load_le16(&sb.value()[0x38]) != kExtMagic) return false;
  reader.add(RegionKind::ext_superblock, std::string(ext_flavour(sb.value())) + " superblock on " + where, where,
             at, sb.value(), ext_facts(sb.value()));
  return true;
}

base::Status fingerprint_filesystem(RegionReader& reader, const Partition& part, const std::string& where) {
  base::Result<bool> found = fingerprint_ext(reader, part, where);
  if (!found) return found.status();
  if (found.value()) return base::Status::ok();
  found = fingerprint_ntfs(reader, part, where);
  if (!found) return found.status();
  if (found.value()) return base::Status::ok();
  if (part.offset_bytes == 0) return base::Status::ok();  // the whole disk: "first 1 MiB" has it
  const uint64_t length = part.length_bytes < kPartitionHeadBytes ? part.length_bytes : kPartitionHeadBytes;
  return reader.digest_region(RegionKind::partition_head, "first 128 KiB of " + where, where, part.offset_bytes,
                              length);
}

}  // namespace diverge::detail
