// SPDX-License-Identifier: MIT
#include "origin/log_writes.h"

#include "base/units.h"

#include <cerrno>
#include <cinttypes>
#include <cstdio>

namespace origin::log_writes {
namespace {

using base::u64s;

std::string hex(uint64_t v) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%" PRIx64, v);
  return text;
}

base::Status refuse(uint64_t index, uint64_t log_offset, const std::string& why) {
  return base::Status::error(EINVAL, "the log's " + where(index, log_offset) + " " + why +
                                         "; nothing of it was sent (the log file is left as it is).");
}

bool all_zero(base::ByteSpan bytes) {
  for (uint8_t b : bytes)
    if (b != 0) return false;
  return true;
}

// A write's or discard's extent: in sectors of the log, on the clone's disk.
base::Status decode_extent(const Super& s, uint64_t sector, uint64_t nr_sectors, const Target& t, Entry& out,
                           uint64_t index, uint64_t log_offset) {
  if (nr_sectors == 0) return refuse(index, log_offset, "covers no sectors");
  const uint64_t max_sectors = t.disk_bytes / s.sector_bytes;
  if (sector > max_sectors || nr_sectors > max_sectors - sector)
    return refuse(index, log_offset,
                  "reaches past the end of the clone's disk (sector=" + u64s(sector) +
                      " nr_sectors=" + u64s(nr_sectors) + " sectorsize=" + u64s(s.sector_bytes) +
                      " disk_bytes=" + u64s(t.disk_bytes) + ")");
  out.offset_bytes = sector * s.sector_bytes;
  out.length_bytes = nr_sectors * s.sector_bytes;
  if (out.offset_bytes % t.logical_block_bytes != 0 || out.length_bytes % t.logical_block_bytes != 0)
    return refuse(index, log_offset,
                  "(offset=" + u64s(out.offset_bytes) + " len=" + u64s(out.length_bytes) +
                      ") is not aligned to the clone's " + u64s(t.logical_block_bytes) +
                      "-byte logical blocks; it is refused, not rounded");
  return base::Status::ok();
}

base::Status decode_mark(const Super& s, base::ByteSpan header, uint64_t nr_sectors, uint64_t data_len, Entry& out) {
  if (nr_sectors != 0) return refuse(out.index, out.log_offset_bytes, "is a mark that covers sectors");
  if (data_len == 0) return refuse(out.index, out.log_offset_bytes, "is a mark without a name");
  if (data_len > kMarkNameBytesMax || data_len > s.sector_bytes - kEntryHeaderBytes)
    return refuse(
        out.index, out.log_offset_bytes,
        "is a mark whose name of " + u64s(data_len) + " bytes is longer than " + u64s(kMarkNameBytesMax) + " bytes");
  base::ByteSpan name = header.subspan(kEntryHeaderBytes, data_len);
  for (uint8_t c : name)
    if (c < 0x20 || c > 0x7e)
      return refuse(out.index, out.log_offset_bytes, "is a mark whose name is not printable ASCII");
  out.kind = Kind::mark;
  out.mark.assign(name.begin(), name.end());
  return base::Status::ok();
}

}  // namespace

std::string where(uint64_t index, uint64_t log_offset_bytes) {
  return "entry " + u64s(index) + " (log offset " + u64s(log_offset_bytes) + ")";
}

base::Result<Super> decode_super(base::ByteSpan first) {
  if (first.size() < kSuperBytesMin)
    return base::Status::error(EINVAL, "the log is " + u64s(first.size()) +
                                           " bytes long, shorter than a dm-log-writes super block; is it a log?");
  base::ByteReader r(first);
  const uint64_t magic = r.u64(), version = r.u64();
  Super s;
  s.nr_entries = r.u64();
  s.sector_bytes = r.u32();
  if (magic != kMagic)
    return base::Status::error(EINVAL, "the log does not start with the dm-log-writes magic (found " + hex(magic) +
                                           "); is it a dm-log-writes log?");
  if (version != kVersion)
    return base::Status::error(EINVAL,
                               "the log is dm-log-writes version " + u64s(version) + "; only version 1 is understood.");
  if (s.sector_bytes != 512 && s.sector_bytes != 4096)
    return base::Status::error(
        EINVAL, "the log's sector size is " + u64s(s.sector_bytes) + " bytes; only 512 and 4096 are understood.");
  return s;
}

base::Status decode_entry(const Super& s, base::ByteSpan header, uint64_t index, uint64_t log_offset, const Target& t,
                          Entry& out) {
  if (header.size() != s.sector_bytes)
    return refuse(index, log_offset, "is cut short: its header sector is incomplete");
  base::ByteReader r(header);
  const uint64_t sector = r.u64(), nr_sectors = r.u64(), flags = r.u64(), data_len = r.u64();
  out = Entry{};
  out.index = index;
  out.log_offset_bytes = log_offset;
  out.next_log_offset_bytes = log_offset + s.sector_bytes;
  if ((flags & ~kFlagsKnown) != 0) return refuse(index, log_offset, "has unknown flags " + hex(flags & ~kFlagsKnown));
  if (flags & kFlagMark) {
    if (flags & (kFlagDiscard | kFlagFlush | kFlagFua)) return refuse(index, log_offset, "is a mark with other flags");
    return decode_mark(s, header, nr_sectors, data_len, out);
  }
  if (!all_zero(header.subspan(kEntryHeaderBytes)))
    return refuse(index, log_offset, "has bytes after its header where only a mark keeps its name");
  out.flush_before = (flags & kFlagFlush) != 0;
  out.fua = (flags & kFlagFua) != 0;
  if (flags & kFlagDiscard) {
    if (data_len != 0 || out.fua) return refuse(index, log_offset, "is a discard with data or FUA");
    out.kind = Kind::discard;
    return decode_extent(s, sector, nr_sectors, t, out, index, log_offset);
  }
  if (nr_sectors == 0) {  // a bare flush
    if (data_len != 0 || sector != 0 || !out.flush_before)
      return refuse(
          index, log_offset,
          "covers no sectors but is not a bare flush (flags=" + u64s(flags) + " data_len=" + u64s(data_len) + ")");
    out.kind = Kind::flush;
    return base::Status::ok();
  }
  out.kind = Kind::write;
  BASE_TRY(decode_extent(s, sector, nr_sectors, t, out, index, log_offset));
  // The kernel leaves data_len 0 for writes; QEMU sets it to the bytes that follow.
  if (data_len != 0 && data_len != out.length_bytes)
    return refuse(index, log_offset,
                  "says data_len=" + u64s(data_len) + " but nr_sectors=" + u64s(nr_sectors) + " of " +
                      u64s(s.sector_bytes) + " bytes follow");
  out.data_log_offset_bytes = out.next_log_offset_bytes;
  out.next_log_offset_bytes += out.length_bytes;
  return base::Status::ok();
}

}  // namespace origin::log_writes
