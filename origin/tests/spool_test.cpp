// SPDX-License-Identifier: MIT
// Unit tests: the commit-log spool file, its round trip and its corruption checks.
#include <doctest/doctest.h>

#include <cstring>

#include "origin/spool.h"
#include "origin/workload.h"
#include "origin/tests/test_util.h"

namespace {

const proto::PairId kPair = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

std::vector<origin::Record> sample_records(uint64_t first_seq) {
  origin::WorkloadOptions o;
  o.seed = 99;
  o.total_bytes = 1u << 20;
  o.write_min_bytes = 4096;
  o.write_max_bytes = 64 * 1024;
  o.epoch_records_max = 4;
  o.trim_percent = 25;
  origin::WorkloadGenerator gen(o, 16u << 20, 512, origin_test::test_digest_key(), first_seq, 1);
  std::vector<origin::Record> out;
  origin::Record r;
  while (gen.next(r)) out.push_back(std::move(r));
  return out;
}

// Writes the records and returns each entry's byte offset.
std::vector<uint64_t> write_spool(const std::string& path, const std::vector<origin::Record>& records) {
  auto w = origin::SpoolWriter::create(path, kPair, records.front().header.seq, origin_test::test_digest_key());
  REQUIRE(w.is_ok());
  std::vector<uint64_t> offsets;
  for (const origin::Record& r : records) {
    offsets.push_back((*w)->size_bytes());
    REQUIRE((*w)->append(r).is_ok());
  }
  REQUIRE((*w)->finish().is_ok());
  return offsets;
}

// One entry with a correct entry digest around arbitrary record bytes.
base::Bytes raw_entry(const base::Bytes& record) {
  base::Bytes e(4);
  base::store_le32(e.data(), static_cast<uint32_t>(record.size()));
  e.insert(e.end(), record.begin(), record.end());
  const digest::Digest d = digest::keyed_digest(origin_test::test_digest_key(), e);
  e.insert(e.end(), d.begin(), d.end());
  return e;
}

base::Status read_all(const std::string& path, std::vector<origin::Record>* out = nullptr,
                      bool payload_digests = true) {
  auto r = origin::SpoolReader::open(path, kPair, origin_test::test_digest_key(), payload_digests);
  if (!r) return r.status();
  for (;;) {
    origin::Record rec;
    bool has = false;
    BASE_TRY((*r)->next(rec, has));
    if (!has) return base::Status::ok();
    if (out != nullptr) out->push_back(std::move(rec));
  }
}

// Reads the spool whole and checks that it hands out exactly `records`.
void check_reads_back(const std::string& path, const std::vector<origin::Record>& records) {
  std::vector<origin::Record> back;
  REQUIRE(read_all(path, &back).is_ok());
  REQUIRE(back.size() == records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    CAPTURE(i);
    CHECK(back[i].plain == records[i].plain);
    CHECK(back[i].header.seq == records[i].header.seq);
  }
}

bool mentions_offset(const base::Status& s, uint64_t offset) {
  return s.message().find("byte offset " + std::to_string(offset)) != std::string::npos;
}

}  // namespace

TEST_CASE("a spool reads back exactly the records written to it") {
  origin_test::TempDir dir;
  const std::vector<origin::Record> records = sample_records(17);
  write_spool(dir / "a.spool", records);
  check_reads_back(dir / "a.spool", records);
  base::Result<origin::SpoolSummary> sum = origin::scan_spool(dir / "a.spool", kPair, origin_test::test_digest_key());
  REQUIRE(sum.is_ok());
  CHECK(sum->first_seq == 17);
  CHECK(sum->last_seq == 17 + records.size() - 1);
  CHECK(sum->record_count == records.size());
  CHECK(sum->ends_with_barrier);
}

TEST_CASE("a spool is never overwritten") {
  origin_test::TempDir dir;
  write_spool(dir / "a.spool", sample_records(1));
  auto again = origin::SpoolWriter::create(dir / "a.spool", kPair, 1, origin_test::test_digest_key());
  REQUIRE_FALSE(again.is_ok());
  CHECK(again.status().message().find("never overwritten") != std::string::npos);
}

TEST_CASE("a flipped byte in a payload is reported at its entry's offset") {
  origin_test::TempDir dir;
  const std::vector<origin::Record> records = sample_records(1);
  const std::vector<uint64_t> offsets = write_spool(dir / "a.spool", records);
  size_t k = 0;
  while (records[k].header.type != proto::MsgType::write || k < 3) ++k;  // a write, not the first entry
  base::Bytes bytes = origin_test::read_file(dir / "a.spool");
  bytes[offsets[k] + 4 + proto::kWriteHeaderBytes + 100] ^= 0x01;
  origin_test::write_file(dir / "a.spool", bytes);
  std::vector<origin::Record> before;
  base::Status s = read_all(dir / "a.spool", &before);
  REQUIRE_FALSE(s.is_ok());
  CHECK(mentions_offset(s, offsets[k]));
  CHECK(s.message().find("digest") != std::string::npos);
  CHECK(before.size() == k);  // the records before it were delivered intact
}

TEST_CASE("flipped bytes in the file header are refused with a sentence") {
  origin_test::TempDir dir;
  write_spool(dir / "a.spool", sample_records(1));
  const base::Bytes good = origin_test::read_file(dir / "a.spool");
  struct Case { size_t index; const char* expect; };
  for (Case c : {Case{0, "not a clone-origin spool"}, Case{8, "version"}, Case{12, "another pair"},
                 Case{28, "byte offset 36"}}) {
    CAPTURE(c.index);
    base::Bytes bad = good;
    bad[c.index] ^= 0x04;
    origin_test::write_file(dir / "b.spool", bad);
    base::Status s = read_all(dir / "b.spool");
    REQUIRE_FALSE(s.is_ok());
    CHECK(s.message().find(c.expect) != std::string::npos);
  }
}

TEST_CASE("a flipped byte in an entry's length is caught before allocating or by the digest") {
  origin_test::TempDir dir;
  const std::vector<uint64_t> offsets = write_spool(dir / "a.spool", sample_records(1));
  base::Bytes bytes = origin_test::read_file(dir / "a.spool");
  bytes[offsets[2] + 3] ^= 0x80;  // length's top byte: ~2 GiB announced
  origin_test::write_file(dir / "b.spool", bytes);
  base::Status s = read_all(dir / "b.spool");
  REQUIRE_FALSE(s.is_ok());
  CHECK(mentions_offset(s, offsets[2]));
  CHECK(s.message().find("outside") != std::string::npos);
}

TEST_CASE("a truncated tail is reported as truncated at the last entry's offset") {
  origin_test::TempDir dir;
  const std::vector<uint64_t> offsets = write_spool(dir / "a.spool", sample_records(1));
  base::Bytes bytes = origin_test::read_file(dir / "a.spool");
  for (size_t cut : {size_t{2}, size_t{10}, size_t{31}}) {
    CAPTURE(cut);
    base::Bytes shorter(bytes.begin(), bytes.end() - static_cast<std::ptrdiff_t>(cut));
    origin_test::write_file(dir / "b.spool", shorter);
    base::Status s = read_all(dir / "b.spool");
    REQUIRE_FALSE(s.is_ok());
    CHECK(mentions_offset(s, offsets.back()));
    CHECK(s.message().find("truncated") != std::string::npos);
  }
}

TEST_CASE("an entry with a wrong seq, or a write whose payload does not match its digest, is refused") {
  origin_test::TempDir dir;
  const std::vector<origin::Record> records = sample_records(1);
  const std::vector<uint64_t> offsets = write_spool(dir / "a.spool", records);
  const base::Bytes good = origin_test::read_file(dir / "a.spool");

  SUBCASE("wrong seq") {
    base::Bytes bad(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(offsets[2]));
    origin::Record skip = origin::make_barrier(records[2].header.seq + 1, records[2].header.epoch);
    const base::Bytes e = raw_entry(skip.plain);
    bad.insert(bad.end(), e.begin(), e.end());
    origin_test::write_file(dir / "b.spool", bad);
    base::Status s = read_all(dir / "b.spool");
    REQUIRE_FALSE(s.is_ok());
    CHECK(mentions_offset(s, offsets[2]));
    CHECK(s.message().find("record 4 stands where record 3 belongs") != std::string::npos);
  }
  SUBCASE("payload digest") {
    size_t k = 0;
    while (records[k].header.type != proto::MsgType::write) ++k;
    base::Bytes bad(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(offsets[k]));
    base::Bytes record = records[k].plain;
    record[proto::kWriteHeaderBytes] ^= 0xff;  // payload changed, entry digest recomputed
    const base::Bytes e = raw_entry(record);
    bad.insert(bad.end(), e.begin(), e.end());
    origin_test::write_file(dir / "b.spool", bad);
    base::Status s = read_all(dir / "b.spool");
    REQUIRE_FALSE(s.is_ok());
    CHECK(mentions_offset(s, offsets[k]));
    CHECK(s.message().find("does not match its digest") != std::string::npos);
    // A pass without payload digests (replay's second, after a first with
    // them) takes it: only its entry digest, which is right, is checked.
    std::vector<origin::Record> back;
    CHECK(read_all(dir / "b.spool", &back, /*payload_digests=*/false).is_ok());
    REQUIRE(back.size() == k + 1);
    CHECK(back[k].plain == record);
  }
}

TEST_CASE("a spool of many read-ahead batches reads back whole, and a flaw in a later batch comes after every "
          "record before it") {
  origin_test::TempDir dir;
  origin::WorkloadOptions o;
  o.seed = 5;
  o.total_bytes = 2u << 20;  // 512 writes of 4 KiB and their barriers: several batches
  o.write_min_bytes = 4096;
  o.write_max_bytes = 4096;
  o.epoch_records_max = 8;
  origin::WorkloadGenerator gen(o, 16u << 20, 512, origin_test::test_digest_key(), 1, 1);
  std::vector<origin::Record> records;
  origin::Record r;
  while (gen.next(r)) records.push_back(std::move(r));
  REQUIRE(records.size() > 3 * origin::SpoolReader::kAheadEntries);
  const std::vector<uint64_t> offsets = write_spool(dir / "a.spool", records);
  const base::Bytes good = origin_test::read_file(dir / "a.spool");
  check_reads_back(dir / "a.spool", records);

  // Each flaw at a write in the third batch (not its first entry) and at
  // the last write of the first batch; the records before it come out first.
  const auto write_at_or_after = [&](size_t i) {
    while (records[i].header.type != proto::MsgType::write) ++i;
    return i;
  };
  const auto write_at_or_before = [&](size_t i) {
    while (records[i].header.type != proto::MsgType::write) --i;
    return i;
  };
  const auto refused_at = [&](const base::Bytes& file, size_t at, const char* why) {
    origin_test::write_file(dir / "b.spool", file);
    std::vector<origin::Record> before;
    base::Status s = read_all(dir / "b.spool", &before);
    REQUIRE_FALSE(s.is_ok());
    CHECK(mentions_offset(s, offsets[at]));
    CHECK(s.message().find(why) != std::string::npos);
    CHECK(before.size() == at);
  };
  for (size_t at : {write_at_or_after(2 * origin::SpoolReader::kAheadEntries + 5),
                    write_at_or_before(origin::SpoolReader::kAheadEntries - 1)}) {
    CAPTURE(at);
    base::Bytes bad = good;
    bad[offsets[at] + 4 + records[at].plain.size() - 1] ^= 0x10;  // the record's last byte
    refused_at(bad, at, "entry's digest");

    const base::Bytes shorter(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(offsets[at] + 9));
    refused_at(shorter, at, "truncated");

    // The payload changed and the entry digest made anew: only the write's
    // own digest tells.
    base::Bytes record = records[at].plain;
    record[proto::kWriteHeaderBytes + 7] ^= 0x01;
    const base::Bytes e = raw_entry(record);
    bad.assign(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(offsets[at]));
    bad.insert(bad.end(), e.begin(), e.end());
    bad.insert(bad.end(), good.begin() + static_cast<std::ptrdiff_t>(offsets[at + 1]), good.end());
    refused_at(bad, at, "does not match its digest");
    std::vector<origin::Record> all;
    CHECK(read_all(dir / "b.spool", &all, /*payload_digests=*/false).is_ok());
    CHECK(all.size() == records.size());
  }
}
