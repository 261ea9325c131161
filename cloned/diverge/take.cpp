// SPDX-License-Identifier: MIT
#include <cassert>
#include <chrono>
#include <cstring>
#include <ctime>

#include "base/aligned_buffer.h"
#include "cloned/diverge/internal.h"

namespace diverge {
namespace detail {

RegionReader::RegionReader(blockio::BlockDevice& dev, const digest::DigestKey& key, Fingerprint& out)
    : dev_(dev), key_(key), out_(out) {
  const blockio::Geometry g = dev.geometry();
  disk_bytes_ = g.size_bytes;
  block_bytes_ = g.logical_block_bytes == 0 ? 512 : g.logical_block_bytes;
}

bool RegionReader::inside(uint64_t offset_bytes, uint64_t length_bytes) const {
  return offset_bytes <= disk_bytes_ && length_bytes <= disk_bytes_ - offset_bytes;
}

base::Status RegionReader::read_blocks(uint64_t offset_bytes, uint64_t length_bytes, base::AlignedBuffer& buffer,
                                      base::ByteSpan& view) {
  assert(inside(offset_bytes, length_bytes));
  assert(length_bytes <= 4 * kMiB);  // every region is small by construction
  const uint64_t first = offset_bytes / block_bytes_ * block_bytes_;
  const uint64_t end = offset_bytes + length_bytes;
  uint64_t last = (end + block_bytes_ - 1) / block_bytes_ * block_bytes_;
  if (last > disk_bytes_) last = disk_bytes_;  // a disk is whole blocks; belt and braces
  buffer = base::AlignedBuffer(last - first);
  if (last > first) {
    base::Status st = dev_.read(first, buffer.span());
    if (!st) {
      return st.with_context("cannot read the disk for its fingerprint (offset=" + std::to_string(first) +
                             " len=" + std::to_string(last - first) + ")");
    }
    out_.bytes_read += last - first;
  }
  view = base::ByteSpan(buffer.data() + (offset_bytes - first), length_bytes);
  return base::Status::ok();
}

base::Result<base::Bytes> RegionReader::read(uint64_t offset_bytes, uint64_t length_bytes) {
  base::AlignedBuffer buffer;
  base::ByteSpan view;
  BASE_TRY(read_blocks(offset_bytes, length_bytes, buffer, view));
  return base::Bytes(view.begin(), view.end());
}

base::Status RegionReader::digest_region(RegionKind kind, std::string name, std::string where,
                                         uint64_t offset_bytes, uint64_t length_bytes, std::vector<Fact> facts) {
  base::AlignedBuffer buffer;
  base::ByteSpan view;
  BASE_TRY(read_blocks(offset_bytes, length_bytes, buffer, view));
  add(kind, std::move(name), std::move(where), offset_bytes, view, std::move(facts));
  return base::Status::ok();
}

void RegionReader::add(RegionKind kind, std::string name, std::string where, uint64_t offset_bytes,
                       base::ByteSpan bytes, std::vector<Fact> facts) {
  Region r;
  r.kind = kind;
  r.name = std::move(name);
  r.where = std::move(where);
  r.offset_bytes = offset_bytes;
  r.length_bytes = bytes.size();
  r.digest = digest::keyed_digest(key_, bytes);
  r.facts = std::move(facts);
  out_.regions.push_back(std::move(r));
}

base::Result<base::Bytes> RegionReader::read_region(RegionKind kind, std::string name, std::string where,
                                                    uint64_t offset_bytes, uint64_t length_bytes) {
  base::Result<base::Bytes> bytes = read(offset_bytes, length_bytes);
  if (!bytes) return bytes;
  add(kind, std::move(name), std::move(where), offset_bytes, bytes.value());
  return bytes;
}

std::string format_utc(int64_t unix_s) {
  if (unix_s == 0) return "never";
  const time_t t = static_cast<time_t>(unix_s);
  struct tm tm {};
  if (::gmtime_r(&t, &tm) == nullptr) return std::to_string(unix_s) + " (unix time)";
  char text[64] = {};
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return text;
}

}  // namespace detail

namespace {

using detail::kMiB;

base::Status fingerprint_disk_ends(detail::RegionReader& reader) {
  const uint64_t size = reader.disk_bytes();
  const uint64_t head = size < kMiB ? size : kMiB;
  BASE_TRY(reader.digest_region(RegionKind::disk_head, "first 1 MiB", "", 0, head));
  if (size > kMiB) BASE_TRY(reader.digest_region(RegionKind::disk_tail, "last 1 MiB", "", size - kMiB, kMiB));
  return base::Status::ok();
}

}  // namespace

base::Result<Fingerprint> take_fingerprint(blockio::BlockDevice& dev, const digest::DigestKey& key) {
  const auto started = std::chrono::steady_clock::now();
  Fingerprint fp;
  detail::RegionReader reader(dev, key, fp);
  fp.disk_bytes = reader.disk_bytes();
  BASE_TRY(fingerprint_disk_ends(reader));
  base::Result<detail::PartitionTable> table = detail::fingerprint_partition_table(reader);
  if (!table) return table.status();
  if (table->kind == detail::TableKind::none) {
    BASE_TRY(detail::fingerprint_filesystem(reader, {0, 0, fp.disk_bytes}, "the whole disk"));
  } else {
    for (const detail::Partition& p : table->partitions) {
      BASE_TRY(detail::fingerprint_filesystem(reader, p, "partition " + std::to_string(p.number)));
    }
  }
  fp.elapsed_us = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                            std::chrono::steady_clock::now() - started)
                                            .count());
  return fp;
}

}  // namespace diverge
