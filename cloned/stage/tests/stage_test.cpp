// SPDX-License-Identifier: MIT
// The stage file (stage.h): round trip on a real file with real fsync, a torn
// tail cut off, damage inside the durable part refused, bounds and a full or
// failing stick refused with nothing written, and the copy to a disk that is
// idempotent across power cuts. Fakes (FaultyMedium, FaultyDevice) only for
// fault injection.
#include <doctest/doctest.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>

#include "base/aligned_buffer.h"
#include "blockio/faulty_device.h"
#include "blockio/memory_device.h"
#include "cloned/stage/stage.h"
#include "test/support/temp_dir.h"

namespace {

constexpr uint64_t kDiskBytes = 1 << 20;
const stage::Header kHeader{3, 2, kDiskBytes};
constexpr stage::Limits kRoomy{64ull << 20, 0};

base::Bytes pattern(size_t n, uint8_t seed) {
  base::Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed + i * 7);
  return b;
}

// Devices take aligned buffers only.
base::Status write_aligned(blockio::BlockDevice& d, uint64_t offset_bytes, const base::Bytes& data) {
  base::AlignedBuffer buf(data.size());
  std::memcpy(buf.data(), data.data(), data.size());
  return d.write(offset_bytes, {buf.data(), data.size()});
}

base::Bytes digest_of(uint8_t v) { return base::Bytes(stage::kDigestBytes, v); }

std::unique_ptr<stage::Medium> file(const std::string& path) {
  base::Result<std::unique_ptr<stage::Medium>> m = stage::open_file(path, true);
  REQUIRE(m.is_ok());
  return std::move(m).value();
}

stage::Stage fresh(std::unique_ptr<stage::Medium> m, const stage::Limits& limits = kRoomy) {
  base::Result<stage::Stage> s = stage::Stage::create(std::move(m), kHeader, limits);
  REQUIRE_MESSAGE(s.is_ok(), s.status().message());
  return std::move(s).value();
}

struct Seen {
  stage::EntryKind kind;
  uint64_t offset_bytes;
  uint64_t length_bytes;
  base::Bytes payload;
  base::Bytes digest;
};

std::vector<Seen> entries(const stage::Stage& s) {
  std::vector<Seen> out;
  base::Status st = s.for_each([&](const stage::Entry& e, base::ByteSpan payload) {
    out.push_back({e.kind, e.offset_bytes, e.length_bytes, base::Bytes(payload.begin(), payload.end()),
                   base::Bytes(e.digest, e.digest + stage::kDigestBytes)});
    return base::Status::ok();
  });
  REQUIRE_MESSAGE(st.is_ok(), st.message());
  return out;
}

void corrupt_byte(const std::string& path, uint64_t at) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(at));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x5a);
  f.seekp(static_cast<std::streamoff>(at));
  f.write(&c, 1);
}

}  // namespace

TEST_CASE("staged extents read back in order, with their data, digests and kinds, after a reopen") {
  test_support::TempDir dir;
  REQUIRE(dir.ok());
  const std::string path = dir / "stage";
  uint64_t durable = 0;
  {
    stage::Stage s = fresh(file(path));
    REQUIRE(s.append_data(4096, pattern(8192, 1), digest_of(0xaa)).is_ok());
    REQUIRE(s.append_zero(65536, 131072).is_ok());
    REQUIRE(s.append_data(4096, pattern(4096, 9), digest_of(0xbb)).is_ok());
    CHECK(s.synced_bytes() == stage::kHeaderBytes);
    REQUIRE(s.sync().is_ok());
    durable = s.synced_bytes();
    CHECK(durable == stage::kHeaderBytes + 3 * stage::kEntryHeaderBytes + 8192 + 4096);
    CHECK(s.staged_disk_bytes() == 8192 + 131072 + 4096);
  }
  base::Result<stage::Stage> s = stage::Stage::open(file(path), durable, kRoomy);
  REQUIRE_MESSAGE(s.is_ok(), s.status().message());
  CHECK(s->header().generation == 3);
  CHECK(s->header().base_generation == 2);
  CHECK(s->entry_count() == 3);
  std::vector<Seen> seen = entries(*s);
  REQUIRE(seen.size() == 3);
  CHECK(seen[0].kind == stage::EntryKind::data);
  CHECK(seen[0].offset_bytes == 4096);
  CHECK(seen[0].payload == pattern(8192, 1));
  CHECK(seen[0].digest == digest_of(0xaa));
  CHECK(seen[1].kind == stage::EntryKind::zero);
  CHECK(seen[1].length_bytes == 131072);
  CHECK(seen[1].payload.empty());
  CHECK(seen[2].payload == pattern(4096, 9));
}

TEST_CASE("a torn tail past the durable length is cut off, and appending continues after it") {
  test_support::TempDir dir;
  REQUIRE(dir.ok());
  const std::string path = dir / "stage";
  auto faulty = std::make_unique<stage::FaultyMedium>(file(path));
  stage::FaultyMedium* f = faulty.get();
  uint64_t durable = 0;
  {
    stage::Stage s = fresh(std::move(faulty));
    REQUIRE(s.append_data(0, pattern(4096, 1), digest_of(1)).is_ok());
    REQUIRE(s.sync().is_ok());
    durable = s.synced_bytes();
    REQUIRE(s.append_data(8192, pattern(4096, 2), digest_of(2)).is_ok());
    REQUIRE(s.append_data(16384, pattern(4096, 3), digest_of(3)).is_ok());
    f->power_cut(true, 1000);  // the last entry survives in part, the one before not at all
  }
  base::Result<stage::Stage> s = stage::Stage::open(file(path), durable, kRoomy);
  REQUIRE_MESSAGE(s.is_ok(), s.status().message());
  CHECK(s->entry_count() == 1);
  CHECK(s->size_bytes() == durable);
  REQUIRE(s->append_data(8192, pattern(4096, 4), digest_of(4)).is_ok());
  REQUIRE(s->sync().is_ok());
  std::vector<Seen> seen = entries(*s);
  REQUIRE(seen.size() == 2);
  CHECK(seen[1].payload == pattern(4096, 4));
}

TEST_CASE("a torn write of an entry that was never synced is a tail, wherever it was cut") {
  for (size_t torn : {size_t{1}, size_t{40}, size_t{71}, size_t{72}, size_t{2000}, size_t{4167}}) {
    CAPTURE(torn);
    test_support::TempDir dir;
    REQUIRE(dir.ok());
    const std::string path = dir / "stage";
    auto faulty = std::make_unique<stage::FaultyMedium>(file(path));
    stage::FaultyMedium* f = faulty.get();
    uint64_t durable = 0;
    {
      stage::Stage s = fresh(std::move(faulty));
      REQUIRE(s.append_zero(0, 4096).is_ok());
      REQUIRE(s.sync().is_ok());
      durable = s.synced_bytes();
      REQUIRE(s.append_data(8192, pattern(4096, 2), digest_of(2)).is_ok());
      f->power_cut(true, torn);
    }
    base::Result<stage::Stage> s = stage::Stage::open(file(path), durable, kRoomy);
    REQUIRE_MESSAGE(s.is_ok(), s.status().message());
    CHECK(s->entry_count() == 1);
  }
}

TEST_CASE("whole entries past the durable length are cut off too: the resumed resync sends them again") {
  test_support::TempDir dir;
  REQUIRE(dir.ok());
  const std::string path = dir / "stage";
  uint64_t durable = 0;
  {
    stage::Stage s = fresh(file(path));
    REQUIRE(s.append_data(0, pattern(4096, 1), digest_of(1)).is_ok());
    REQUIRE(s.sync().is_ok());
    durable = s.synced_bytes();
    REQUIRE(s.append_data(4096, pattern(4096, 2), digest_of(2)).is_ok());
    REQUIRE(s.sync().is_ok());  // on the stick, but no mark acknowledged it
  }
  base::Result<stage::Stage> s = stage::Stage::open(file(path), durable, kRoomy);
  REQUIRE_MESSAGE(s.is_ok(), s.status().message());
  CHECK(s->entry_count() == 1);
  CHECK(std::filesystem::file_size(path) == durable);
  SUBCASE("a durable length inside an entry is damage") {
    base::Result<stage::Stage> bad = stage::Stage::open(file(path), durable - 100, kRoomy);
    REQUIRE_FALSE(bad.is_ok());
    CHECK(bad.status().message().find("byte 64") != std::string::npos);
  }
}

TEST_CASE("damage inside the durable part of the stage is refused with a sentence naming the byte") {
  test_support::TempDir dir;
  REQUIRE(dir.ok());
  const std::string path = dir / "stage";
  uint64_t durable = 0;
  {
    stage::Stage s = fresh(file(path));
    REQUIRE(s.append_data(0, pattern(4096, 1), digest_of(1)).is_ok());
    REQUIRE(s.append_data(4096, pattern(4096, 2), digest_of(2)).is_ok());
    REQUIRE(s.sync().is_ok());
    durable = s.synced_bytes();
  }
  const uint64_t second = stage::kHeaderBytes + stage::kEntryHeaderBytes + 4096;
  corrupt_byte(path, second + stage::kEntryHeaderBytes + 100);  // the second entry's payload
  base::Result<stage::Stage> s = stage::Stage::open(file(path), durable, kRoomy);
  REQUIRE_FALSE(s.is_ok());
  CHECK(s.status().code() == EBADMSG);
  CHECK(s.status().message().find("byte " + std::to_string(second)) != std::string::npos);
  CHECK(s.status().message().find("disk was left as it is") != std::string::npos);
  // The file was not cut: what it holds stays for a person to look at.
  CHECK(std::filesystem::file_size(path) == durable);
}

TEST_CASE("a damaged header, a missing header and a stage shorter than recorded are refused") {
  test_support::TempDir dir;
  REQUIRE(dir.ok());
  const std::string path = dir / "stage";
  { stage::Stage s = fresh(file(path)); }
  SUBCASE("header checksum") {
    corrupt_byte(path, 20);
    base::Result<stage::Stage> s = stage::Stage::open(file(path), 0, kRoomy);
    REQUIRE_FALSE(s.is_ok());
    CHECK(s.status().message().find("header fails its checksum") != std::string::npos);
  }
  SUBCASE("not a stage") {
    corrupt_byte(path, 0);
    base::Result<stage::Stage> s = stage::Stage::open(file(path), 0, kRoomy);
    REQUIRE_FALSE(s.is_ok());
    CHECK(s.status().message().find("not a stage file") != std::string::npos);
  }
  SUBCASE("shorter than its recorded durable length") {
    base::Result<stage::Stage> s = stage::Stage::open(file(path), 10'000, kRoomy);
    REQUIRE_FALSE(s.is_ok());
    CHECK(s.status().message().find("recorded as durable") != std::string::npos);
  }
  SUBCASE("empty file") {
    std::filesystem::resize_file(path, 0);
    base::Result<stage::Stage> s = stage::Stage::open(file(path), 0, kRoomy);
    REQUIRE_FALSE(s.is_ok());
    CHECK(s.status().message().find("ends inside the stage's header") != std::string::npos);
  }
}

TEST_CASE("the stage's bound and the stick's free space refuse an append before it writes anything") {
  test_support::TempDir dir;
  REQUIRE(dir.ok());
  SUBCASE("stage_max_bytes") {
    stage::Stage s = fresh(file(dir / "stage"), {stage::kHeaderBytes + stage::kEntryHeaderBytes + 4096, 0});
    REQUIRE(s.append_data(0, pattern(4096, 1), digest_of(1)).is_ok());
    base::Status st = s.append_zero(4096, 4096);
    CHECK(st.code() == ENOSPC);
    CHECK(st.message().find("stage_max_bytes") != std::string::npos);
    CHECK(st.message().find("it holds 4232 and the next extent needs 72") != std::string::npos);
    CHECK(s.entry_count() == 1);
  }
  SUBCASE("free space on the stick, with the reserve for the state store") {
    auto faulty = std::make_unique<stage::FaultyMedium>(file(dir / "stage"));
    faulty->set_faults({.free_bytes = 20'000});
    stage::Stage s = fresh(std::move(faulty), {1ull << 30, 8192});
    REQUIRE(s.append_data(0, pattern(4096, 1), digest_of(1)).is_ok());
    base::Status st = s.append_data(4096, pattern(8192, 2), digest_of(2));
    CHECK(st.code() == ENOSPC);
    CHECK(st.message().find("too full") != std::string::npos);
    CHECK(s.size_bytes() == stage::kHeaderBytes + stage::kEntryHeaderBytes + 4096);
  }
}

TEST_CASE("ENOSPC and EIO from the stick reach the caller as sentences, and what was synced stays") {
  for (int code : {ENOSPC, EIO}) {
    CAPTURE(code);
    test_support::TempDir dir;
    REQUIRE(dir.ok());
    const std::string path = dir / "stage";
    auto faulty = std::make_unique<stage::FaultyMedium>(file(path));
    stage::FaultyMedium* f = faulty.get();
    uint64_t durable = 0;
    {
      stage::Stage s = fresh(std::move(faulty));
      REQUIRE(s.append_data(0, pattern(4096, 1), digest_of(1)).is_ok());
      REQUIRE(s.sync().is_ok());
      durable = s.synced_bytes();
      f->set_faults({.fail_write_after = 0, .error_code = code});
      base::Status st = s.append_data(4096, pattern(4096, 2), digest_of(2));
      CHECK(st.code() == code);
      CHECK(st.message().find("staging offset=4096 len=4096") != std::string::npos);
      CHECK(st.message().find(std::strerror(code)) != std::string::npos);
      f->set_faults({.fail_sync_after = 0, .error_code = code});
      f->set_faults({.fail_sync_after = 0, .error_code = code});
      REQUIRE(s.append_zero(8192, 4096).is_ok());
      CHECK(s.sync().code() == code);
      CHECK(s.synced_bytes() == durable);
      f->power_cut();
    }
    base::Result<stage::Stage> s = stage::Stage::open(file(path), durable, kRoomy);
    REQUIRE(s.is_ok());
    CHECK(s->entry_count() == 1);
  }
}

TEST_CASE("applying a stage writes its extents in order and flushes; a power cut during it is finished by a repeat") {
  std::vector<uint64_t> seeds;
  for (uint64_t seed = 1; seed <= 40; ++seed) seeds.push_back(seed);
  test_support::TempDir dir;
  REQUIRE(dir.ok());
  int cut_count = 0;
  for (uint64_t seed : seeds) {
    CAPTURE(seed);
    std::mt19937_64 rng(seed);
    const std::string path = dir / ("stage-" + std::to_string(seed));
    auto disk = std::make_unique<blockio::MemoryDevice>(kDiskBytes, 512);
    blockio::MemoryDevice* inner = disk.get();
    REQUIRE(write_aligned(*inner, 0, pattern(kDiskBytes, 77)).is_ok());
    const std::vector<uint8_t> before = inner->contents();
    blockio::FaultyDevice faulty(std::move(disk), seed);
    // The expected image: the stage's extents, in order, over the old one.
    std::vector<uint8_t> expected = before;
    stage::Stage s = fresh(file(path));
    const int n = 5 + static_cast<int>(rng() % 20);
    for (int i = 0; i < n; ++i) {
      const uint64_t off = (rng() % (kDiskBytes / 512 - 64)) * 512;
      const uint64_t len = (1 + rng() % 64) * 512;
      if (rng() % 4 == 0) {
        REQUIRE(s.append_zero(off, len).is_ok());
        std::fill_n(expected.begin() + static_cast<long>(off), len, 0);
      } else {
        base::Bytes data = pattern(len, static_cast<uint8_t>(rng()));
        REQUIRE(s.append_data(off, data, digest_of(1)).is_ok());
        std::copy(data.begin(), data.end(), expected.begin() + static_cast<long>(off));
      }
    }
    REQUIRE(s.sync().is_ok());
    // Cut the power after a random number of the apply's writes.
    blockio::FaultPlan plan;
    plan.fail_write_after = static_cast<int64_t>(rng() % static_cast<uint64_t>(n));
    faulty.set_plan(plan);
    const base::Status first = stage::apply_stage(s, faulty);
    const blockio::PowerCutMode mode = seed % 2 ? blockio::PowerCutMode::keep_random : blockio::PowerCutMode::tear_one;
    faulty.power_cut(mode);
    faulty.revive();
    faulty.set_plan({});
    if (!first.is_ok()) ++cut_count;  // else the cut came after the apply's flush
    // The next start opens the stage again and applies all of it.
    base::Result<stage::Stage> again = stage::Stage::open(file(path), s.synced_bytes(), kRoomy);
    REQUIRE(again.is_ok());
    REQUIRE(stage::apply_stage(*again, faulty).is_ok());
    CHECK(inner->contents() == expected);
  }
  CHECK(cut_count >= 20);  // most seeds cut the apply midway
}

TEST_CASE("an apply that fails says whether the disk failed or the stick: the machine retries only the stick") {
  test_support::TempDir dir;
  REQUIRE(dir.ok());
  auto medium = std::make_unique<stage::FaultyMedium>(file(dir / "stage"));
  stage::FaultyMedium* stick = medium.get();
  stage::Stage s = fresh(std::move(medium));
  REQUIRE(s.append_data(0, pattern(4096, 1), digest_of(1)).is_ok());
  REQUIRE(s.append_zero(8192, 4096).is_ok());
  REQUIRE(s.sync().is_ok());
  blockio::FaultyDevice disk(std::make_unique<blockio::MemoryDevice>(kDiskBytes, 512), 1);
  disk.set_plan({.fail_write_after = 0});
  stage::DiskFault fault;
  CHECK(stage::apply_stage(s, disk, &fault).code() == EIO);
  REQUIRE(fault.op != nullptr);  // the disk's, and where: for the health monitor
  CHECK(std::string(fault.op) == "write");
  CHECK(fault.offset_bytes == 0);
  CHECK(fault.length_bytes == 4096);
  disk.set_plan({.fail_flush_after = 0});
  fault = {};
  CHECK_FALSE(stage::apply_stage(s, disk, &fault).is_ok());
  REQUIRE(fault.op != nullptr);
  CHECK(std::string(fault.op) == "flush");
  disk.set_plan({});
  stick->power_cut();  // every read of the stick fails from here
  fault = {};
  const base::Status st = stage::apply_stage(s, disk, &fault);
  CHECK(st.code() == EIO);
  CHECK(fault.op == nullptr);
  stick->revive();
  CHECK(stage::apply_stage(s, disk, &fault).is_ok());
}

TEST_CASE("a stage made for another disk size is refused before anything is written") {
  test_support::TempDir dir;
  REQUIRE(dir.ok());
  stage::Stage s = fresh(file(dir / "stage"));
  REQUIRE(s.append_zero(0, 4096).is_ok());
  blockio::MemoryDevice disk(kDiskBytes * 2, 512);
  REQUIRE(write_aligned(disk, 0, pattern(4096, 5)).is_ok());
  base::Status st = stage::apply_stage(s, disk);
  CHECK(st.code() == EINVAL);
  CHECK(st.message().find("nothing was written") != std::string::npos);
  CHECK(disk.contents()[1] == pattern(4096, 5)[1]);
}

TEST_CASE("removing the stage file removes it, and removing a missing one is fine") {
  test_support::TempDir dir;
  REQUIRE(dir.ok());
  { stage::Stage s = fresh(file(dir / "stage")); }
  CHECK(std::filesystem::exists(dir / "stage"));
  CHECK(stage::remove_file(dir / "stage").is_ok());
  CHECK_FALSE(std::filesystem::exists(dir / "stage"));
  CHECK(stage::remove_file(dir / "stage").is_ok());
}
