// SPDX-License-Identifier: MIT
// Unit tests: records, the workload generator, the retained log, the position file,
// the resync's descent levels.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <thread>

#include "origin/commands.h"
#include "origin/image.h"
#include "origin/log.h"
#include "origin/position.h"
#include "origin/rng.h"
#include "origin/scanner.h"
#include "origin/tests/test_util.h"
#include "origin/workload.h"

using origin::Record;
using origin::WorkloadGenerator;
using origin::WorkloadOptions;

namespace {

constexpr uint64_t kDiskBytes = 64ull << 20;
constexpr uint32_t kBlockBytes = 512;

std::vector<Record> generate_all(const WorkloadOptions& o, uint64_t first_seq = 1, uint64_t first_epoch = 1) {
  WorkloadGenerator gen(o, kDiskBytes, kBlockBytes, origin_test::test_digest_key(), first_seq, first_epoch);
  std::vector<Record> out;
  Record r;
  while (gen.next(r)) out.push_back(std::move(r));
  return out;
}

WorkloadOptions small_options(uint64_t seed) {
  WorkloadOptions o;
  o.seed = seed;
  o.total_bytes = 8ull << 20;
  o.write_min_bytes = 4096;
  o.write_max_bytes = 128 * 1024;
  o.epoch_records_max = 8;
  o.trim_percent = 20;
  return o;
}

}  // namespace

TEST_CASE("a workload is the same, byte for byte, for the same seed") {
  const std::vector<Record> a = generate_all(small_options(7));
  const std::vector<Record> b = generate_all(small_options(7));
  const std::vector<Record> c = generate_all(small_options(8));
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CAPTURE(i);
    CHECK(a[i].plain == b[i].plain);
  }
  bool differs = a.size() != c.size();
  for (size_t i = 0; !differs && i < a.size(); ++i) differs = a[i].plain != c[i].plain;
  CHECK(differs);
}

TEST_CASE("workload records stay inside their bounds, aligned, numbered and closed by barriers") {
  const WorkloadOptions o = small_options(42);
  const std::vector<Record> records = generate_all(o, 10, 3);
  REQUIRE(!records.empty());
  CHECK(records.back().header.type == proto::MsgType::barrier);
  uint64_t seq = 10, epoch = 3, in_epoch = 0, data = 0, trims = 0, writes = 0;
  for (const Record& r : records) {
    CAPTURE(r.header.seq);
    CHECK(r.header.seq == seq++);
    CHECK(r.header.epoch == epoch);
    if (r.header.type == proto::MsgType::barrier) {
      CHECK(in_epoch >= 1);
      CHECK(in_epoch <= o.epoch_records_max);
      in_epoch = 0;
      ++epoch;
      continue;
    }
    ++in_epoch;
    const proto::RecordHeader& h = r.header;
    CHECK(h.offset_bytes % kBlockBytes == 0);
    CHECK(h.length_bytes % kBlockBytes == 0);
    CHECK(h.length_bytes >= o.write_min_bytes);
    CHECK(h.length_bytes <= o.write_max_bytes);
    CHECK(h.offset_bytes + h.length_bytes <= kDiskBytes);
    data += h.length_bytes;
    if (h.type == proto::MsgType::trim) ++trims;
    if (h.type == proto::MsgType::write) {
      ++writes;
      CHECK(r.payload().size() == h.length_bytes);
      CHECK(digest::digest_equal(h.digest, digest::keyed_digest(origin_test::test_digest_key(), r.payload())));
    }
  }
  CHECK(data >= o.total_bytes);
  CHECK(data < o.total_bytes + o.write_max_bytes);
  CHECK(trims > 0);
  CHECK(writes > trims);  // 20 % trims
}

namespace {
WorkloadOptions sequential_options(uint64_t seed) {
  WorkloadOptions o = small_options(seed);
  o.pattern = origin::WorkloadPattern::sequential;
  o.total_bytes = 3 * kDiskBytes;  // wraps around the disk more than once
  o.write_min_bytes = 512 * 1024;
  o.write_max_bytes = 1u << 20;
  o.trim_percent = 0;
  return o;
}
// Data records between consecutive barriers.
std::vector<uint64_t> epoch_sizes(const std::vector<Record>& records) {
  std::vector<uint64_t> sizes;
  uint64_t in_epoch = 0;
  for (const Record& r : records) {
    if (r.header.type != proto::MsgType::barrier) {
      ++in_epoch;
      continue;
    }
    sizes.push_back(in_epoch);
    in_epoch = 0;
  }
  return sizes;
}
}  // namespace

TEST_CASE("a sequential workload puts each record right after the previous one and wraps at the end of the disk") {
  const std::vector<Record> records = generate_all(sequential_options(11));
  uint64_t expected = 0, wraps = 0;
  for (const Record& r : records) {
    if (r.header.type == proto::MsgType::barrier) continue;
    CAPTURE(r.header.seq);
    if (expected + r.header.length_bytes > kDiskBytes) {
      expected = 0;
      ++wraps;
    }
    CHECK(r.header.offset_bytes == expected);
    CHECK(r.header.offset_bytes + r.header.length_bytes <= kDiskBytes);
    expected += r.header.length_bytes;
  }
  CHECK(wraps >= 2);
  CHECK(records.front().header.offset_bytes == 0);
}

TEST_CASE("a sequential workload with a fixed epoch size is the same, byte for byte, for the same seed") {
  WorkloadOptions o = sequential_options(5);
  o.epoch_records = 7;
  o.trim_percent = 10;
  const std::vector<Record> a = generate_all(o);
  const std::vector<Record> b = generate_all(o);
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CAPTURE(i);
    CHECK(a[i].plain == b[i].plain);
  }
}

TEST_CASE("--epoch-records puts exactly that many records in every epoch but the last") {
  WorkloadOptions o = small_options(9);
  o.epoch_records = 32;
  o.write_min_bytes = o.write_max_bytes = 4096;
  o.total_bytes = 100 * 32 * 4096 + 5 * 4096;  // 100 whole epochs and a short one
  std::vector<uint64_t> sizes = epoch_sizes(generate_all(o));
  REQUIRE(sizes.size() == 101);
  for (size_t i = 0; i + 1 < sizes.size(); ++i) {
    CAPTURE(i);
    CHECK(sizes[i] == 32);
  }
  CHECK(sizes.back() == 5);

  o.total_bytes = 10 * 32 * 4096;  // whole epochs: no short one at the end
  sizes = epoch_sizes(generate_all(o));
  CHECK(sizes == std::vector<uint64_t>(10, 32));
}

TEST_CASE("a record's encoding decodes back to its header") {
  const std::vector<Record> records = generate_all(small_options(3));
  for (size_t i = 0; i < std::min<size_t>(records.size(), 50); ++i) {
    CAPTURE(i);
    proto::RecordHeader h;
    base::ByteSpan payload;
    REQUIRE(proto::decode_record(records[i].plain, h, payload).is_ok());
    CHECK(h.seq == records[i].header.seq);
    CHECK(h.type == records[i].header.type);
    CHECK(payload.size() == records[i].payload().size());
  }
}

TEST_CASE("workload options that do not fit the disk or the protocol are refused with a sentence") {
  WorkloadOptions o = small_options(1);
  CHECK(origin::check_workload_options(o, kDiskBytes, kBlockBytes).is_ok());
  o.write_min_bytes = 1000;
  CHECK(origin::check_workload_options(o, kDiskBytes, kBlockBytes).message().find("multiples") != std::string::npos);
  o = small_options(1);
  o.write_max_bytes = 2u << 20;
  CHECK_FALSE(origin::check_workload_options(o, kDiskBytes, kBlockBytes).is_ok());
  o = small_options(1);
  o.write_min_bytes = 256 * 1024;
  CHECK_FALSE(origin::check_workload_options(o, kDiskBytes, kBlockBytes).is_ok());
  o = small_options(1);
  o.total_bytes = 0;
  CHECK_FALSE(origin::check_workload_options(o, kDiskBytes, kBlockBytes).is_ok());
  o = small_options(1);
  o.trim_percent = 101;
  CHECK_FALSE(origin::check_workload_options(o, kDiskBytes, kBlockBytes).is_ok());
}

TEST_CASE("a workload whose largest epoch does not fit half the retained log is refused with a sentence") {
  WorkloadOptions o = small_options(1);
  o.write_max_bytes = 1u << 20;
  o.epoch_records_max = 64;  // the defaults: 64 MiB against the default 256 MiB
  CHECK(origin::check_epoch_fits_retention(o, 256u << 20).is_ok());
  CHECK(origin::check_epoch_fits_retention(o, 128u << 20).is_ok());
  const base::Status s = origin::check_epoch_fits_retention(o, (128u << 20) - 1);
  CHECK(s.message().find("retention_bytes_max") != std::string::npos);
  o.epoch_records = 200;  // a fixed epoch counts, not the maximum
  CHECK_FALSE(origin::check_epoch_fits_retention(o, 256u << 20).is_ok());
}

TEST_CASE("the bounded draw covers its whole range and nothing outside it") {
  origin::Rng rng(5);
  bool seen[7] = {};
  for (int i = 0; i < 1000; ++i) {
    const uint64_t v = rng.uniform(3, 9);
    REQUIRE(v >= 3);
    REQUIRE(v <= 9);
    seen[v - 3] = true;
  }
  for (bool s : seen) CHECK(s);
  CHECK(rng.uniform(4, 4) == 4);
}

TEST_CASE("a payload is splitmix64's words from its seed, little-endian, whatever its length") {
  // The known first output for seed 0 (Vigna's splitmix64.c) pins the words themselves.
  uint64_t state = 0;
  CHECK(origin::splitmix64(state) == 0xe220a8397b1dcdafull);
  for (const uint64_t seed : {uint64_t{0}, uint64_t{7}, ~uint64_t{0} - 3}) {
    for (const size_t bytes : {size_t{0}, size_t{8}, size_t{24}, size_t{4096}, size_t{4104}}) {
      base::Bytes got(bytes + 8, 0x5a);
      origin::fill_splitmix64(seed, got.data(), bytes);
      state = seed;
      for (size_t i = 0; i < bytes; i += 8) REQUIRE(base::load_le64(got.data() + i) == origin::splitmix64(state));
      for (size_t i = bytes; i < bytes + 8; ++i) REQUIRE(got[i] == 0x5a);  // nothing past the end
    }
  }
}

namespace {
origin::RecordPtr barrier_ptr(uint64_t seq) { return std::make_shared<const Record>(origin::make_barrier(seq, seq)); }
origin::RecordPtr write_ptr(uint64_t seq, size_t bytes) {
  base::Bytes payload(bytes, 0xab);
  return std::make_shared<const Record>(origin::make_write(seq, 1, 0, payload, origin_test::test_digest_key()));
}
}  // namespace

TEST_CASE("the retained log blocks appends while full and trimming frees space") {
  const uint64_t record_cost = 64 + 4096 + origin::kRecordOverheadBytes;
  origin::RetainedLog log(3 * record_cost, 1);
  for (uint64_t s = 1; s <= 3; ++s) REQUIRE(log.append(write_ptr(s, 4096)));
  CHECK(log.held_bytes() == 3 * record_cost);
  std::atomic<bool> appended{false};
  std::thread producer([&] { appended = log.append(write_ptr(4, 4096)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK_FALSE(appended.load());  // still blocked: the clone has committed nothing
  log.trim_upto(1);
  producer.join();
  CHECK(appended.load());
  CHECK(log.start_seq() == 2);
  CHECK(log.end_seq() == 4);
  CHECK(log.get(1) == nullptr);
  REQUIRE(log.get(4) != nullptr);
  CHECK(log.get(4)->header.seq == 4);
  CHECK(log.get(5) == nullptr);
}

TEST_CASE("closing the retained log wakes a blocked producer") {
  origin::RetainedLog log(1, 1);
  REQUIRE(log.append(barrier_ptr(1)));  // an empty log admits one record over the bound
  std::atomic<int> result{-1};
  std::thread producer([&] { result = log.append(barrier_ptr(2)) ? 1 : 0; });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(result.load() == -1);
  log.close();
  producer.join();
  CHECK(result.load() == 0);
}

TEST_CASE("records the clone committed already are counted but not kept") {
  origin::RetainedLog log(1 << 20, 5);
  log.trim_upto(6);  // the clone is ahead of this log (a replay started behind it)
  REQUIRE(log.append(barrier_ptr(5)));
  REQUIRE(log.append(barrier_ptr(6)));
  REQUIRE(log.append(barrier_ptr(7)));
  CHECK(log.start_seq() == 7);
  CHECK(log.end_seq() == 7);
  CHECK(log.get(6) == nullptr);
  CHECK(log.get(7) != nullptr);
  log.set_known_end_seq(20);
  CHECK(log.advertised_end_seq() == 20);
}

TEST_CASE("the position survives a save and a load, and a fresh state dir starts at record 1") {
  origin_test::TempDir dir;
  const std::string state = dir / "state";
  base::Result<origin::OriginPosition> fresh = origin::load_position(state);
  REQUIRE(fresh.is_ok());
  CHECK(fresh->next_seq == 1);
  CHECK(fresh->next_epoch == 1);
  CHECK(fresh->clean);
  REQUIRE(origin::save_position(state, {1234, 56, false}).is_ok());
  base::Result<origin::OriginPosition> back = origin::load_position(state);
  REQUIRE(back.is_ok());
  CHECK(back->next_seq == 1234);
  CHECK(back->next_epoch == 56);
  CHECK_FALSE(back->clean);
  CHECK(back->resync_source.empty());
  origin::OriginPosition resyncing{1234, 56, false, 1, 2};
  resyncing.resync_source = "file:2049:12:67108864:1733557000123456789";
  REQUIRE(origin::save_position(state, resyncing).is_ok());
  back = origin::load_position(state);
  REQUIRE(back.is_ok());
  CHECK(back->resync_generation == 2);
  CHECK(back->resync_source == resyncing.resync_source);
  origin_test::write_file(origin::position_path(state), base::Bytes{'x', '\n'});
  CHECK_FALSE(origin::load_position(state).is_ok());
}

// Found in review: 0.7 s of quiet after the session opened ended it, while a
// clone busy in a poll (a failing disk's SMART commands) had sent nothing yet.
TEST_CASE("a collecting session waits its whole time for the first report, then 0.7 s after the last") {
  const uint64_t deadline = 10'000;
  CHECK_FALSE(origin::collect_done(5'000, deadline, true, 0, 100));  // long quiet, nothing came: it waits
  CHECK(origin::collect_done(deadline, deadline, true, 0, 100));
  CHECK(origin::collect_done(deadline, deadline, false, 0, 0));  // never established
  CHECK_FALSE(origin::collect_done(5'000, deadline, true, 3, 4'500));
  CHECK(origin::collect_done(5'200, deadline, true, 3, 4'500));  // the backlog's burst is over
}

TEST_CASE("a source's identity: a file's changes with its content, a device's is its number") {
  origin_test::TempDir dir;
  const std::string image = dir / "image";
  origin_test::write_file(image, base::Bytes(8192, 1));
  base::Result<std::string> first = origin::source_identity(image);
  REQUIRE(first.is_ok());
  CHECK(first->starts_with("file:"));
  CHECK(origin::source_identity(image).value() == *first);  // reading changes nothing
  struct timespec later[2] = {{0, UTIME_OMIT}, {1'700'000'000, 5}};
  REQUIRE(::utimensat(AT_FDCWD, image.c_str(), later, 0) == 0);  // as a write would
  CHECK(origin::source_identity(image).value() != *first);
  CHECK(origin::source_identity(dir / "missing").status().code() == ENOENT);
  CHECK(origin::source_identity(dir.path()).status().code() == EINVAL);  // a directory
}

TEST_CASE("a position left unclean or mid-resync is refused to the commands that number records, saying what to run") {
  origin_test::TempDir dir;
  const std::string state = dir / "state";
  CHECK(origin::load_clean_position(state).is_ok());  // a fresh pair
  auto refusal = [&](const origin::OriginPosition& p) {
    REQUIRE(origin::save_position(state, p).is_ok());
    base::Result<origin::OriginPosition> r = origin::load_clean_position(state);
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == EBUSY);
    return r.status().message();
  };
  origin::OriginPosition p{10, 3, false};
  CHECK(refusal(p).find("an earlier run stopped before the clone acknowledged") != std::string::npos);
  p.log_writes.first_digest = "ab";
  p.log_writes.first_bytes = 1;
  const std::string log_writes = refusal(p);
  CHECK_MESSAGE(log_writes.find("clone-origin replay --log-writes LOG") != std::string::npos, log_writes);
  p.clean = true;
  REQUIRE(origin::save_position(state, p).is_ok());
  CHECK(origin::load_clean_position(state).is_ok());  // a log replay at a barrier: clean
  p.resync_generation = 2;
  CHECK(refusal(p).find("a resync to generation 2 is under way") != std::string::npos);
}

TEST_CASE("a resync descends 16 times smaller per level down to the finest extent") {
  using V = std::vector<uint32_t>;
  CHECK(origin::descent_levels(64u << 10, 4096) == V{64u << 10, 4096});
  CHECK(origin::descent_levels(1u << 20, 4096) == V{1u << 20, 64u << 10, 4096});
  CHECK(origin::descent_levels(256u << 10, 4096) == V{256u << 10, 16u << 10, 4096});
  CHECK(origin::descent_levels(32u << 10, 4096) == V{32u << 10, 4096});
  CHECK(origin::descent_levels(4096, 4096) == V{4096});  // --extent 4K: one level, as before
}
