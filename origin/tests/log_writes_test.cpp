// SPDX-License-Identifier: MIT
// The dm-log-writes decoder: what each kind of entry becomes, and every bad
// input of issue 15 part 4 refused with the entry's index and log offset.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "origin/log_writes.h"
#include "origin/log_writes_file.h"

namespace lw = origin::log_writes;

namespace {

base::Bytes super_block(uint64_t magic, uint64_t version, uint64_t nr_entries, uint32_t sector_bytes) {
  base::Bytes out;
  base::ByteWriter w(out);
  w.u64(magic);
  w.u64(version);
  w.u64(nr_entries);
  w.u32(sector_bytes);
  out.resize(sector_bytes == 0 ? 512 : sector_bytes, 0);
  return out;
}

base::Bytes header(uint32_t sector_bytes, uint64_t sector, uint64_t nr_sectors, uint64_t flags, uint64_t data_len,
                   const std::string& name = "") {
  base::Bytes out;
  base::ByteWriter w(out);
  w.u64(sector);
  w.u64(nr_sectors);
  w.u64(flags);
  w.u64(data_len);
  out.insert(out.end(), name.begin(), name.end());
  out.resize(sector_bytes, 0);
  return out;
}

const lw::Super k512{10, 512};
const lw::Target kDisk{1 << 20, 512};

base::Status decode(const base::Bytes& h, lw::Entry& e, const lw::Super& s = k512, const lw::Target& t = kDisk) {
  return lw::decode_entry(s, base::ByteSpan(h), 7, 4096, t, e);
}

}  // namespace

TEST_CASE("the super block gives the entry count and the sector size") {
  base::Result<lw::Super> s = lw::decode_super(base::ByteSpan(super_block(lw::kMagic, 1, 5394, 4096)));
  REQUIRE(s.is_ok());
  CHECK(s->nr_entries == 5394);
  CHECK(s->sector_bytes == 4096);
}

TEST_CASE("a super block with a wrong magic, version or sector size, or cut short, is refused") {
  auto message = [](const base::Bytes& b) { return lw::decode_super(base::ByteSpan(b)).status().message(); };
  CHECK(message(super_block(0x1234, 1, 1, 512)).find("magic (found 0x1234)") != std::string::npos);
  CHECK(message(super_block(lw::kMagic, 2, 1, 512)).find("version 2") != std::string::npos);
  CHECK(message(super_block(lw::kMagic, 1, 1, 1024)).find("sector size is 1024") != std::string::npos);
  CHECK(message(base::Bytes(20, 0)).find("20 bytes long") != std::string::npos);
}

TEST_CASE("a write becomes an extent on the disk with its data after the header") {
  lw::Entry e;
  REQUIRE(decode(header(512, 8, 16, 0, 0), e).is_ok());  // the kernel's data_len: 0
  CHECK(e.kind == lw::Kind::write);
  CHECK(e.offset_bytes == 4096);
  CHECK(e.length_bytes == 8192);
  CHECK(e.data_log_offset_bytes == 4096 + 512);
  CHECK(e.next_log_offset_bytes == 4096 + 512 + 8192);
  CHECK_FALSE(e.fua);
  REQUIRE(decode(header(512, 8, 16, lw::kFlagFua | lw::kFlagMetadata, 8192), e).is_ok());  // QEMU's: the bytes
  CHECK(e.fua);
  const lw::Super k4096{3, 4096};
  REQUIRE(decode(header(4096, 2, 1, lw::kFlagFlush, 4096), e, k4096, {1 << 20, 4096}).is_ok());
  CHECK(e.offset_bytes == 8192);
  CHECK(e.flush_before);
  CHECK(e.next_log_offset_bytes == 4096 + 4096 + 4096);
}

TEST_CASE("flushes, discards and marks") {
  lw::Entry e;
  REQUIRE(decode(header(512, 0, 0, lw::kFlagFlush, 0), e).is_ok());
  CHECK(e.kind == lw::Kind::flush);
  CHECK(e.next_log_offset_bytes == 4096 + 512);
  REQUIRE(decode(header(512, 100, 50, lw::kFlagDiscard, 0), e).is_ok());
  CHECK(e.kind == lw::Kind::discard);
  CHECK(e.offset_bytes == 51200);
  CHECK(e.length_bytes == 25600);
  CHECK(e.next_log_offset_bytes == 4096 + 512);  // no data follows a discard
  REQUIRE(decode(header(512, 0, 0, lw::kFlagMark, 14, "before-upgrade"), e).is_ok());
  CHECK(e.kind == lw::Kind::mark);
  CHECK(e.mark == "before-upgrade");
}

TEST_CASE("an epoch never flushed is cut by a barrier before the record that would take it past 64 MiB") {
  const auto entry = [](lw::Kind kind, uint64_t length, bool flush_before = false) {
    lw::Entry e;
    e.kind = kind;
    e.length_bytes = length;
    e.flush_before = flush_before;
    return e;
  };
  const auto barriers = [](const std::vector<lw::Planned>& out) {
    return std::count_if(out.begin(), out.end(),
                         [](const lw::Planned& p) { return p.type == lw::Planned::Type::barrier; });
  };
  // 1 MiB writes cost 1 MiB + 256 bytes each: 63 fit, the 64th starts a new epoch.
  lw::EpochState epoch;
  std::vector<lw::Planned> out;
  for (int i = 0; i < 63; ++i) lw::plan_entry(entry(lw::Kind::write, 1 << 20), epoch, out);
  CHECK(barriers(out) == 0);
  CHECK(epoch.bytes == 63 * ((1u << 20) + lw::kPlannedRecordCostBytes));
  out.clear();
  lw::plan_entry(entry(lw::Kind::write, 1 << 20), epoch, out);
  REQUIRE(out.size() == 2);
  CHECK(out[0].type == lw::Planned::Type::barrier);
  CHECK(out[1].type == lw::Planned::Type::write);
  CHECK(epoch.bytes == (1u << 20) + lw::kPlannedRecordCostBytes);
  // A preflush on a full epoch: one barrier, not two; a flush closes the epoch.
  for (int i = 0; i < 62; ++i) lw::plan_entry(entry(lw::Kind::write, 1 << 20), epoch, out);
  out.clear();
  lw::plan_entry(entry(lw::Kind::write, 1 << 20, true), epoch, out);
  CHECK(barriers(out) == 1);
  CHECK(out.front().type == lw::Planned::Type::barrier);
  out.clear();
  lw::plan_entry(entry(lw::Kind::flush, 0), epoch, out);
  CHECK(barriers(out) == 1);
  CHECK_FALSE(epoch.open);
  CHECK(epoch.bytes == 0);
  // Discards carry no data, but each trim is a record the retained log keeps.
  const uint64_t trims = lw::kEpochSplitBytes / lw::kPlannedRecordCostBytes;
  for (uint64_t i = 0; i < trims; ++i) {
    out.clear();
    lw::plan_entry(entry(lw::Kind::discard, 4096), epoch, out);
    REQUIRE(barriers(out) == 0);
  }
  out.clear();
  lw::plan_entry(entry(lw::Kind::discard, 4096), epoch, out);
  REQUIRE(out.size() == 2);
  CHECK(out[0].type == lw::Planned::Type::barrier);
  CHECK(out[1].type == lw::Planned::Type::trim);
}

TEST_CASE("an entry larger than an epoch is cut by barriers between its records; a discard's preflush is kept") {
  const auto barriers = [](const std::vector<lw::Planned>& out) {
    return std::count_if(out.begin(), out.end(),
                         [](const lw::Planned& p) { return p.type == lw::Planned::Type::barrier; });
  };
  // 150 MiB in one write entry: 1 MiB records, no epoch past 64 MiB.
  lw::Entry big;
  big.kind = lw::Kind::write;
  big.offset_bytes = 1 << 20;
  big.length_bytes = 150ull << 20;
  big.data_log_offset_bytes = 8192;
  lw::EpochState epoch;
  std::vector<lw::Planned> out;
  lw::plan_entry(big, epoch, out);
  CHECK(out.front().type == lw::Planned::Type::write);  // an empty epoch: nothing to close first
  CHECK(barriers(out) == 2);                            // 63 + 63 + 24 records
  uint64_t in_epoch = 0, written = 0, next_offset = big.offset_bytes;
  for (const lw::Planned& p : out) {
    if (p.type == lw::Planned::Type::barrier) {
      in_epoch = 0;
      continue;
    }
    CHECK(p.offset_bytes == next_offset);  // in order, nothing skipped or twice
    CHECK(p.data_log_offset == big.data_log_offset_bytes + (p.offset_bytes - big.offset_bytes));
    next_offset += p.length_bytes;
    written += p.length_bytes;
    in_epoch += p.length_bytes + lw::kPlannedRecordCostBytes;
    CHECK(in_epoch <= lw::kEpochSplitBytes);
  }
  CHECK(written == big.length_bytes);
  CHECK(epoch.bytes == 24 * ((1u << 20) + lw::kPlannedRecordCostBytes));

  // A discard with FLUSH: the writes before it are durable first.
  lw::Entry discard;
  discard.kind = lw::Kind::discard;
  discard.length_bytes = 4096;
  discard.flush_before = true;
  out.clear();
  lw::plan_entry(discard, epoch, out);
  REQUIRE(out.size() == 2);
  CHECK(out[0].type == lw::Planned::Type::barrier);
  CHECK(out[1].type == lw::Planned::Type::trim);
}

TEST_CASE("every bad entry is refused with its index and log offset, never rounded") {
  struct Bad {
    const char* what;
    base::Bytes bytes;
    lw::Target target;
    const char* says;
  };
  const lw::Target disk4k{1 << 20, 4096};
  const Bad bad[] = {
      {"data_len that disagrees", header(512, 8, 16, 0, 4096), kDisk, "data_len=4096 but nr_sectors=16"},
      {"past the end", header(512, 2040, 16, 0, 0), kDisk, "past the end of the clone's disk"},
      {"sector overflow", header(512, UINT64_MAX - 1, 4, 0, 0), kDisk, "past the end"},
      {"misaligned for a 4K disk", header(512, 3, 1, 0, 0), disk4k, "refused, not rounded"},
      {"a discard past the end", header(512, 2047, 2, lw::kFlagDiscard, 0), kDisk, "past the end"},
      {"a discard with data", header(512, 0, 2, lw::kFlagDiscard, 1024), kDisk, "discard with data"},
      {"a mark too long", header(512, 0, 0, lw::kFlagMark, 300, std::string(300, 'm')), kDisk, "longer than 255"},
      {"a mark with sectors", header(512, 0, 4, lw::kFlagMark, 3, "abc"), kDisk, "mark that covers sectors"},
      {"a mark not printable", header(512, 0, 0, lw::kFlagMark, 3, "a\nb"), kDisk, "not printable"},
      {"unknown flags", header(512, 0, 1, 64, 0), kDisk, "unknown flags 0x40"},
      {"no sectors, not a flush", header(512, 0, 0, 0, 0), kDisk, "not a bare flush"},
      {"junk after a header", header(512, 0, 1, 0, 0, "junk"), kDisk, "bytes after its header"},
  };
  for (const Bad& b : bad) {
    CAPTURE(b.what);
    lw::Entry e;
    const base::Status s = decode(b.bytes, e, k512, b.target);
    REQUIRE_FALSE(s.is_ok());
    CHECK(s.message().find("entry 7 (log offset 4096)") != std::string::npos);
    CHECK(s.message().find(b.says) != std::string::npos);
  }
  lw::Entry e;
  const base::Bytes cut(100, 0);
  CHECK(lw::decode_entry(k512, base::ByteSpan(cut), 7, 4096, kDisk, e).message().find("cut short") !=
        std::string::npos);
}
