// SPDX-License-Identifier: MIT
#include "cloned/stage/stage.h"

#include <sodium.h>

#include <cassert>
#include <cerrno>
#include <cstring>

#include "base/aligned_buffer.h"
#include "base/units.h"

namespace stage {
namespace {

using base::u64s;

constexpr char kHeaderMagic[8] = {'C', 'L', 'N', 'S', 'T', 'A', 'G', 'E'};
constexpr char kEntryMagic[4] = {'S', 'T', 'G', 'E'};
constexpr uint64_t kHeaderSummedBytes = kHeaderBytes - kChecksumBytes;
constexpr uint64_t kEntrySummedBytes = kEntryHeaderBytes - kChecksumBytes;
static_assert(kHeaderSummedBytes == 8 + 4 + 4 + 8 * 4);
static_assert(kEntrySummedBytes == 4 + 4 + 8 + 8 + kDigestBytes);
// How much the stage may grow before the free space on the stick is asked again.
constexpr uint64_t kFreeRecheckBytes = 16ull << 20;

void checksum(base::ByteSpan a, base::ByteSpan b, uint8_t out[kChecksumBytes]) {
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, kChecksumBytes);
  crypto_generichash_update(&st, a.data(), a.size());
  if (!b.empty()) crypto_generichash_update(&st, b.data(), b.size());
  crypto_generichash_final(&st, out, kChecksumBytes);
}

bool checksum_matches(base::ByteSpan a, base::ByteSpan b, const uint8_t* stored) {
  uint8_t sum[kChecksumBytes];
  checksum(a, b, sum);
  return sodium_memcmp(sum, stored, kChecksumBytes) == 0;
}

void encode_header(const Header& h, uint8_t out[kHeaderBytes]) {
  std::memset(out, 0, kHeaderBytes);
  std::memcpy(out, kHeaderMagic, 8);
  base::store_le32(out + 8, kVersion);
  base::store_le32(out + 12, static_cast<uint32_t>(kHeaderBytes));
  base::store_le64(out + 16, h.generation);
  base::store_le64(out + 24, h.base_generation);
  base::store_le64(out + 32, h.disk_bytes);
  checksum({out, kHeaderSummedBytes}, {}, out + kHeaderSummedBytes);
}

base::Result<Header> decode_header(const uint8_t in[kHeaderBytes], const std::string& where) {
  if (std::memcmp(in, kHeaderMagic, 8) != 0)
    return base::Status::error(EINVAL, where + " is not a stage file (no CLNSTAGE header); it was left as it is.");
  if (!checksum_matches({in, kHeaderSummedBytes}, {}, in + kHeaderSummedBytes))
    return base::Status::error(EBADMSG, where + ": the stage's header fails its checksum; the stick may be failing.");
  if (base::load_le32(in + 8) != kVersion || base::load_le32(in + 12) != kHeaderBytes)
    return base::Status::error(EINVAL, where + ": stage format version " + u64s(base::load_le32(in + 8)) +
                                           " is not the one this cloned writes (" + u64s(kVersion) + ").");
  return Header{base::load_le64(in + 16), base::load_le64(in + 24), base::load_le64(in + 32)};
}

void encode_entry_head(EntryKind kind, uint64_t offset_bytes, uint64_t length_bytes, base::ByteSpan digest,
                       uint8_t out[kEntryHeaderBytes]) {
  std::memset(out, 0, kEntryHeaderBytes);
  std::memcpy(out, kEntryMagic, 4);
  out[4] = static_cast<uint8_t>(kind);
  base::store_le64(out + 8, offset_bytes);
  base::store_le64(out + 16, length_bytes);
  assert(digest.empty() || digest.size() == kDigestBytes);
  if (!digest.empty()) std::memcpy(out + 24, digest.data(), kDigestBytes);
}

}  // namespace

// ------------------------------------------------------------------ opening

base::Result<Stage> Stage::create(std::unique_ptr<Medium> medium, const Header& header, const Limits& limits) {
  assert(header.generation >= header.base_generation && header.disk_bytes > 0);  // equal: a repair
  Stage s(std::move(medium), header, limits);
  uint8_t head[kHeaderBytes];
  encode_header(header, head);
  BASE_TRY(s.medium_->truncate(0));
  BASE_TRY(s.medium_->write(0, {head, kHeaderBytes}));
  BASE_TRY(s.medium_->sync());
  s.size_bytes_ = s.synced_bytes_ = kHeaderBytes;
  return s;
}

base::Result<Stage> Stage::open(std::unique_ptr<Medium> medium, uint64_t durable_bytes, const Limits& limits) {
  Stage s(std::move(medium), Header{}, limits);
  const std::string where = s.medium_->describe();
  uint8_t head[kHeaderBytes];
  base::Result<size_t> got = s.medium_->read(0, {head, kHeaderBytes});
  if (!got) return got.status();
  if (*got < kHeaderBytes)
    return base::Status::error(EBADMSG, where + " ends inside the stage's header (" + u64s(*got) +
                                            " bytes); the stage was lost, and the disk was left as it is.");
  base::Result<Header> h = decode_header(head, where);
  if (!h) return h.status();
  s.header_ = *h;
  BASE_TRY(s.scan(std::max(durable_bytes, kHeaderBytes)));
  return s;
}

// Walks the entries below `durable_bytes`: each must be whole and intact, and
// the last must end exactly there. What lies past it was never acknowledged
// (a torn append, or extents after the last mark, which the resumed resync
// sends again, compared against the disk and not against them) and is cut off.
base::Status Stage::scan(uint64_t durable_bytes) {
  const std::string where = medium_->describe();
  base::Result<uint64_t> file_bytes = medium_->size_bytes();
  if (!file_bytes) return file_bytes.status();
  if (*file_bytes < durable_bytes)
    return base::Status::error(EBADMSG, where + " holds " + u64s(*file_bytes) + " bytes but " + u64s(durable_bytes) +
                                            " were recorded as durable: the stick lost staged data; the disk was "
                                            "left as it is and the resync must start again.");
  uint64_t pos = kHeaderBytes;
  base::Bytes payload;
  while (pos < durable_bytes) {
    uint8_t head[kEntryHeaderBytes];
    base::Result<size_t> got = medium_->read(pos, {head, kEntryHeaderBytes});
    if (!got) return got.status();
    const uint64_t offset = base::load_le64(head + 8), length = base::load_le64(head + 16);
    const auto kind = static_cast<EntryKind>(head[4]);
    bool whole = *got == kEntryHeaderBytes && std::memcmp(head, kEntryMagic, 4) == 0 &&
                 (kind == EntryKind::data || kind == EntryKind::zero) && length > 0 && offset <= header_.disk_bytes &&
                 length <= header_.disk_bytes - offset && (kind == EntryKind::zero || length <= kEntryPayloadBytesMax);
    const uint64_t payload_bytes = whole && kind == EntryKind::data ? length : 0;
    whole = whole && pos + kEntryHeaderBytes + payload_bytes <= durable_bytes;
    if (whole) {
      payload.resize(payload_bytes);
      got = medium_->read(pos + kEntryHeaderBytes, payload);
      if (!got) return got.status();
      whole = *got == payload_bytes && checksum_matches({head, kEntrySummedBytes}, payload, head + kEntrySummedBytes);
    }
    if (!whole)
      return base::Status::error(EBADMSG, where + ": the staged entry at byte " + u64s(pos) +
                                              " is damaged (checksum or framing), inside what was recorded as "
                                              "durable; the stage is refused and the disk was left as it is.");
    pos += kEntryHeaderBytes + payload_bytes;
    ++entry_count_;
    staged_disk_bytes_ += length;
  }
  if (pos < *file_bytes) {
    BASE_TRY(medium_->truncate(pos));
    BASE_TRY(medium_->sync());
  }
  size_bytes_ = synced_bytes_ = pos;
  return base::Status::ok();
}

// ---------------------------------------------------------------- appending

base::Status Stage::check_room(uint64_t bytes) {
  if (size_bytes_ + bytes > limits_.max_bytes)
    return base::Status::error(
        ENOSPC, "the stage would grow past its bound ([resync] stage_max_bytes = " + u64s(limits_.max_bytes) +
                    " bytes; it holds " + u64s(size_bytes_) + " and the next extent needs " + u64s(bytes) +
                    "). Raise the bound or use a larger stick.");
  if (free_checked_at_bytes_ == 0 || size_bytes_ + bytes > free_checked_at_bytes_ + kFreeRecheckBytes) {
    base::Result<uint64_t> free = medium_->free_bytes();
    if (!free) return free.status();
    free_bytes_ = *free;
    free_checked_at_bytes_ = size_bytes_;
  }
  const uint64_t used_since = size_bytes_ - free_checked_at_bytes_;
  if (free_bytes_ < used_since + bytes + limits_.free_reserve_bytes)
    return base::Status::error(
        ENOSPC, "the stick is too full for the stage (" + u64s(free_bytes_ - std::min(free_bytes_, used_since)) +
                    " bytes free, " + u64s(limits_.free_reserve_bytes) + " kept for the state store, the next " +
                    "extent needs " + u64s(bytes) + "). Free space on the stick or use a " + "larger one.");
  return base::Status::ok();
}

base::Status Stage::append(EntryKind kind, uint64_t offset_bytes, uint64_t length_bytes, base::ByteSpan data,
                           base::ByteSpan digest) {
  assert(length_bytes > 0 && offset_bytes <= header_.disk_bytes && length_bytes <= header_.disk_bytes - offset_bytes);
  assert(kind == EntryKind::zero || (data.size() == length_bytes && length_bytes <= kEntryPayloadBytesMax));
  const uint64_t bytes = entry_bytes(kind, length_bytes);
  BASE_TRY(check_room(bytes));
  uint8_t head[kEntryHeaderBytes];
  encode_entry_head(kind, offset_bytes, length_bytes, digest, head);
  checksum({head, kEntrySummedBytes}, data, head + kEntrySummedBytes);
  // One write per entry: a torn one is cut off by the next open.
  base::Bytes buf(head, head + kEntryHeaderBytes);
  buf.insert(buf.end(), data.begin(), data.end());
  base::Status st = medium_->write(size_bytes_, buf);
  if (!st) return st.with_context("staging offset=" + u64s(offset_bytes) + " len=" + u64s(length_bytes));
  size_bytes_ += bytes;
  ++entry_count_;
  staged_disk_bytes_ += length_bytes;
  return base::Status::ok();
}

base::Status Stage::append_data(uint64_t offset_bytes, base::ByteSpan data, base::ByteSpan digest) {
  return append(EntryKind::data, offset_bytes, data.size(), data, digest);
}

base::Status Stage::append_zero(uint64_t offset_bytes, uint64_t length_bytes) {
  return append(EntryKind::zero, offset_bytes, length_bytes, {}, {});
}

base::Status Stage::sync() {
  if (synced_bytes_ == size_bytes_) return base::Status::ok();
  BASE_TRY(medium_->sync());
  synced_bytes_ = size_bytes_;
  return base::Status::ok();
}

// ------------------------------------------------------------------ reading

base::Status Stage::for_each(const Visitor& visit) const {
  const std::string where = medium_->describe();
  base::Bytes payload;
  for (uint64_t pos = kHeaderBytes; pos < size_bytes_;) {
    uint8_t head[kEntryHeaderBytes];
    base::Result<size_t> got = medium_->read(pos, {head, kEntryHeaderBytes});
    if (!got) return got.status();
    Entry e;
    e.kind = static_cast<EntryKind>(head[4]);
    e.offset_bytes = base::load_le64(head + 8);
    e.length_bytes = base::load_le64(head + 16);
    std::memcpy(e.digest, head + 24, kDigestBytes);
    e.at_bytes = pos;
    const uint64_t payload_bytes = e.kind == EntryKind::data ? e.length_bytes : 0;
    bool intact = *got == kEntryHeaderBytes && std::memcmp(head, kEntryMagic, 4) == 0 &&
                  (e.kind == EntryKind::data || e.kind == EntryKind::zero) && payload_bytes <= kEntryPayloadBytesMax &&
                  e.offset_bytes <= header_.disk_bytes && e.length_bytes <= header_.disk_bytes - e.offset_bytes;
    if (intact) {
      payload.resize(payload_bytes);
      got = medium_->read(pos + kEntryHeaderBytes, payload);
      if (!got) return got.status();
      intact = *got == payload_bytes && checksum_matches({head, kEntrySummedBytes}, payload, head + kEntrySummedBytes);
    }
    if (!intact)
      return base::Status::error(EBADMSG, where + ": the staged entry at byte " + u64s(pos) +
                                              " fails its checksum; the stick may be failing. Nothing more of the "
                                              "stage was used.");
    BASE_TRY(visit(e, payload));
    pos += kEntryHeaderBytes + payload_bytes;
  }
  return base::Status::ok();
}

base::Status apply_stage(const Stage& stage, blockio::BlockDevice& device, DiskFault* disk_fault) {
  const auto on_disk = [disk_fault](base::Status s, const char* op, uint64_t offset, uint64_t length) {
    if (!s.is_ok() && disk_fault != nullptr) *disk_fault = DiskFault{op, offset, length};
    return s;
  };
  const uint64_t disk_bytes = device.geometry().size_bytes;
  if (disk_bytes != stage.header().disk_bytes)
    return base::Status::error(EINVAL, "the stage was made for a disk of " + u64s(stage.header().disk_bytes) +
                                           " bytes but this disk has " + u64s(disk_bytes) + "; nothing was written.");
  const uint64_t lbs = device.geometry().logical_block_bytes;
  base::AlignedBuffer buf(kEntryPayloadBytesMax);
  BASE_TRY(stage.for_each([&](const Entry& e, base::ByteSpan payload) -> base::Status {
    if (e.offset_bytes % lbs != 0 || e.length_bytes % lbs != 0)
      return base::Status::error(EINVAL, "the staged entry at byte " + u64s(e.at_bytes) +
                                             " (offset=" + u64s(e.offset_bytes) + " len=" + u64s(e.length_bytes) +
                                             ") is not aligned to the disk's " + u64s(lbs) + "-byte blocks.");
    if (e.kind == EntryKind::zero)
      return on_disk(device.write_zeroes(e.offset_bytes, e.length_bytes), "write zeroes", e.offset_bytes,
                     e.length_bytes);
    std::memcpy(buf.data(), payload.data(), payload.size());
    return on_disk(device.write(e.offset_bytes, {buf.data(), payload.size()}), "write", e.offset_bytes, payload.size());
  }));
  return on_disk(device.flush(), "flush", 0, 0);
}

}  // namespace stage
