// SPDX-License-Identifier: MIT
// Level 3, black box: clone-origin replay --log-writes (issue 15) with the
// real binaries. Logs made here byte by byte (marks, resume, every bad input)
// run anywhere; the suite "requires root and qemu-storage-daemon" captures a
// real ext4 workload through scripts/capture-log-writes.sh and checks the
// clone at 20 kill -9 cut points, and --follow on a log still being written.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <random>
#include <thread>

#include "base/bytes.h"
#include "origin/log_writes.h"
#include "test/support/harness.h"
#include "test/support/requires.h"

using harness::Process;
using harness::TempDir;
namespace lw = origin::log_writes;

namespace {

// A dm-log-writes log written the way the kernel and QEMU write one, and the
// disk it describes after each entry (discards read back as zeros here: the
// clone's file target punches holes).
struct LogBuilder {
  uint32_t sector;
  uint64_t entries = 0;
  base::Bytes body;                              // everything after the super block
  std::vector<uint8_t> image;                    // the original's disk after the last entry
  std::vector<std::vector<uint8_t>> at_barrier;  // the disk at each flush, FUA or mark

  LogBuilder(uint32_t sector_bytes, uint64_t disk_bytes) : sector(sector_bytes), image(disk_bytes, 0) {}

  void header(uint64_t first_sector, uint64_t nr_sectors, uint64_t flags, uint64_t data_len,
              const std::string& name = "") {
    base::Bytes h;
    base::ByteWriter w(h);
    w.u64(first_sector);
    w.u64(nr_sectors);
    w.u64(flags);
    w.u64(data_len);
    h.insert(h.end(), name.begin(), name.end());
    h.resize(sector, 0);
    body.insert(body.end(), h.begin(), h.end());
    ++entries;
  }
  void write(uint64_t offset, const std::vector<uint8_t>& data, uint64_t flags = 0) {
    header(offset / sector, data.size() / sector, flags, data.size());
    body.insert(body.end(), data.begin(), data.end());
    std::copy(data.begin(), data.end(), image.begin() + static_cast<long>(offset));
    if (flags & lw::kFlagFua) at_barrier.push_back(image);
  }
  void discard(uint64_t offset, uint64_t length) {
    header(offset / sector, length / sector, lw::kFlagDiscard, 0);
    std::fill_n(image.begin() + static_cast<long>(offset), length, 0);
  }
  void flush() {
    header(0, 0, lw::kFlagFlush, 0);
    at_barrier.push_back(image);
  }
  void mark(const std::string& name) {
    header(0, 0, lw::kFlagMark, name.size(), name);
    at_barrier.push_back(image);
  }
  // Random writes (1..64 sectors) with a flush every `per_epoch`.
  void random_epochs(std::mt19937_64& rng, int epochs, int per_epoch) {
    for (int e = 0; e < epochs; ++e) {
      for (int i = 0; i < per_epoch; ++i) {
        const uint64_t sectors = 1 + rng() % 64;
        const uint64_t at = (rng() % (image.size() / sector - sectors)) * sector;
        std::vector<uint8_t> data(sectors * sector);
        for (auto& b : data) b = static_cast<uint8_t>(rng());
        if (rng() % 8 == 0)
          discard(at, sectors * sector);
        else
          write(at, data);
      }
      flush();
    }
  }
  base::Bytes bytes(uint64_t nr_entries) const {
    base::Bytes out;
    base::ByteWriter w(out);
    w.u64(lw::kMagic);
    w.u64(lw::kVersion);
    w.u64(nr_entries);
    w.u32(sector);
    out.resize(sector, 0);
    out.insert(out.end(), body.begin(), body.end());
    return out;
  }
  bool save(const std::string& path) const { return save_bytes(path, bytes(entries)); }
  static bool save_bytes(const std::string& path, const base::Bytes& b) {
    return harness::write_file(path, std::string(b.begin(), b.end()));
  }
};

struct Clone {
  TempDir dir;
  harness::Pair pair;
  std::unique_ptr<Process> cloned;
  uint64_t disk_bytes;

  explicit Clone(uint64_t disk, const std::map<std::string, std::string>& over = {}) : disk_bytes(disk) {
    REQUIRE(harness::make_zero_file(dir / "clone.img", disk));
    pair = harness::make_pair(dir.path(), dir / "clone.img", over);
    REQUIRE(!pair.clone_config.empty());
    start();
  }
  void start() {
    cloned = std::make_unique<Process>(
        std::vector<std::string>{harness::binary("CLONED_BIN"), "--config", pair.clone_config}, dir / "cloned.log");
    REQUIRE_MESSAGE(harness::wait_for_listener(pair.port, 10000), harness::read_file(dir / "cloned.log"));
  }
  int replay(const std::string& log, std::string& out, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {
        harness::binary("ORIGIN_BIN"), "--config", pair.origin_config, "replay", "--log-writes", log};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return harness::run(argv, out, 300000);
  }
  std::string clonectl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {harness::binary("CLONECTL_BIN")};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("--config");
    argv.push_back(pair.clone_config);
    std::string out;
    harness::run(argv, out);
    return out;
  }
  std::string position() const { return harness::read_file(dir / "origin/state/origin.position"); }
  std::vector<uint8_t> disk() const {
    const std::string s = harness::read_file(dir / "clone.img");
    return std::vector<uint8_t>(s.begin(), s.end());
  }
};

uint64_t position_value(const std::string& position, const std::string& key) {
  const size_t at = position.find(key + "=");
  if (at == std::string::npos) return 0;
  return std::strtoull(position.c_str() + at + key.size() + 1, nullptr, 10);
}

// The first offset where the clone's disk differs from `want`, or -1.
int64_t first_difference(const std::vector<uint8_t>& got, const std::vector<uint8_t>& want) {
  if (got.size() != want.size()) return 0;
  auto m = std::mismatch(got.begin(), got.end(), want.begin());
  return m.first == got.end() ? -1 : m.first - got.begin();
}

}  // namespace

TEST_CASE("a log with marks replays identical, the clone names the mark it holds, and a grown log continues") {
  std::mt19937_64 rng(15);
  Clone c(8ull << 20);
  LogBuilder b(512, c.disk_bytes);
  b.random_epochs(rng, 5, 6);
  b.mark("before-upgrade");
  b.random_epochs(rng, 3, 4);
  const uint64_t first_entries = b.entries;
  REQUIRE(b.save(c.dir / "log.bin"));
  std::string out;
  CHECK_MESSAGE(c.replay(c.dir / "log.bin", out) == 0, out);
  CHECK_MESSAGE(
      out.find("the clone holds its first " + std::to_string(first_entries) + " entries") != std::string::npos, out);
  CHECK(out.find("1 marks") != std::string::npos);
  CHECK(first_difference(c.disk(), b.image) == -1);
  std::string status = c.clonectl({"status"});
  CHECK_MESSAGE(status.find("mark:       before-upgrade") != std::string::npos, status);
  CHECK(c.clonectl({"status", "--json"}).find("\"last_mark\":\"before-upgrade\"") != std::string::npos);
  std::string events = c.clonectl({"events"});
  CHECK_MESSAGE(events.find("reached mark before-upgrade") != std::string::npos, events);

  // The log grows: a FUA write, a discard, a second mark, then writes whose
  // flush has not come yet. Only what a flush or mark closed is sent.
  std::vector<uint8_t> data(64 * 1024, 0x5c);
  b.write(1 << 20, data, lw::kFlagFua);
  b.discard(2 << 20, 256 * 1024);
  b.mark("after-upgrade");
  const std::vector<uint8_t> at_mark = b.image;
  const uint64_t closed_entries = b.entries;
  b.write(3 << 20, data);  // no flush after it yet
  REQUIRE(b.save(c.dir / "log.bin"));
  CHECK_MESSAGE(c.replay(c.dir / "log.bin", out) == 0, out);
  CHECK_MESSAGE(out.find("sent from entry " + std::to_string(first_entries)) != std::string::npos, out);
  CHECK(out.find("the clone holds its first " + std::to_string(closed_entries) + " entries") != std::string::npos);
  CHECK(first_difference(c.disk(), at_mark) == -1);
  CHECK(c.clonectl({"status"}).find("mark:       after-upgrade") != std::string::npos);
  CHECK_MESSAGE(c.replay(c.dir / "log.bin", out) == 0, out);
  CHECK_MESSAGE(out.find("nothing to send") != std::string::npos, out);

  // The flush arrives.
  b.flush();
  REQUIRE(b.save(c.dir / "log.bin"));
  CHECK_MESSAGE(c.replay(c.dir / "log.bin", out) == 0, out);
  CHECK(first_difference(c.disk(), b.image) == -1);

  // The same path now holds another log: refused, nothing sent.
  LogBuilder other(512, c.disk_bytes);
  other.random_epochs(rng, 2, 2);
  REQUIRE(other.save(c.dir / "log.bin"));
  CHECK(c.replay(c.dir / "log.bin", out) != 0);
  CHECK_MESSAGE(out.find("does not start as the log this original was shipping") != std::string::npos, out);
  CHECK(first_difference(c.disk(), b.image) == -1);
}

TEST_CASE("kill -9 of either side mid-replay: the run resumes with no entry lost or sent twice") {
  // Marks make the clone commit before each of their barriers; a slow state
  // store then makes the replay slow enough to cut in the middle.
  std::mt19937_64 rng(1515);
  LogBuilder b(4096, 16ull << 20);
  for (int m = 0; m < 40; ++m) {
    b.random_epochs(rng, 1, 6);
    b.mark("m" + std::to_string(m));
  }
  const std::map<std::string, std::string> slow = {{"apply.store_commit_delay_ms", "60"}};

  // The reference: one run that nobody interrupts.
  Clone ref(16ull << 20, slow);
  REQUIRE(b.save(ref.dir / "log.bin"));
  std::string out;
  REQUIRE_MESSAGE(ref.replay(ref.dir / "log.bin", out) == 0, out);
  const uint64_t ref_next_seq = position_value(ref.position(), "next_seq");
  CHECK(first_difference(ref.disk(), b.image) == -1);

  Clone c(16ull << 20, slow);
  REQUIRE(b.save(c.dir / "log.bin"));
  // 1. kill -9 of clone-origin once the clone has made part of the log durable.
  {
    Process origin(
        {harness::binary("ORIGIN_BIN"), "--config", c.pair.origin_config, "replay", "--log-writes", c.dir / "log.bin"},
        c.dir / "origin1.log");
    for (int i = 0; i < 1500 && position_value(c.position(), "log_writes_next_entry") == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    origin.signal(SIGKILL);
    origin.wait(10000);
  }
  const uint64_t saved = position_value(c.position(), "log_writes_next_entry");
  REQUIRE_MESSAGE(saved > 0, c.position());
  REQUIRE_MESSAGE(saved < b.entries, "the run ended before the kill: " << c.position());
  // 2. A second run, during which cloned is killed and started again.
  {
    Process origin(
        {harness::binary("ORIGIN_BIN"), "--config", c.pair.origin_config, "replay", "--log-writes", c.dir / "log.bin"},
        c.dir / "origin2.log");
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    REQUIRE(origin.running());
    c.cloned->signal(SIGKILL);
    c.cloned->wait(10000);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    c.start();
    CHECK_MESSAGE(origin.wait(120000) == 0, harness::read_file(c.dir / "origin2.log"));
  }
  const std::string log2 = harness::read_file(c.dir / "origin2.log");
  CHECK_MESSAGE(log2.find("sent from entry " + std::to_string(saved)) != std::string::npos, log2);
  CHECK_MESSAGE(log2.find(" 0 reconnects") == std::string::npos, log2);  // the clone went away and came back
  CHECK(first_difference(c.disk(), b.image) == -1);
  // Numbered exactly as the run nobody interrupted: nothing lost, nothing twice.
  CHECK(position_value(c.position(), "next_seq") == ref_next_seq);
  const std::string clone_log = harness::read_file(c.dir / "cloned.log");
  CHECK_MESSAGE(clone_log.find("sequence_gap") == std::string::npos, clone_log);
  CHECK(c.clonectl({"status"}).find("mark:       m39") != std::string::npos);
}

TEST_CASE("every bad log is refused with the entry it names, nothing is sent, and the clone keeps serving") {
  Clone c(1ull << 20);
  std::mt19937_64 rng(4);
  LogBuilder good(512, c.disk_bytes);
  good.random_epochs(rng, 2, 3);
  const base::Bytes g = good.bytes(good.entries);
  const uint64_t entry0 = 512;  // the first entry's header offset
  const uint64_t entry0_data = g.size() > 600 ? base::load_le64(g.data() + entry0 + 8) * 512 : 0;

  struct Bad {
    const char* what;
    base::Bytes bytes;
    const char* says;
  };
  std::vector<Bad> bad;
  auto with = [&](size_t at, uint64_t value) {
    base::Bytes b = g;
    base::store_le64(b.data() + at, value);
    return b;
  };
  bad.push_back({"wrong magic", with(0, 0x1234), "magic (found 0x1234)"});
  bad.push_back({"version 2", with(8, 2), "version 2"});
  {
    base::Bytes b = g;
    base::store_le32(b.data() + 24, 1024);
    bad.push_back({"sector size 1024", b, "sector size is 1024"});
  }
  {
    base::Bytes b = g;
    b.resize(entry0 + 512 + entry0_data / 2);  // entry 0's data cut in the middle
    bad.push_back({"truncated entry", b, "entry 0 (log offset 512) is cut short"});
  }
  bad.push_back({"data_len disagrees", with(entry0 + 24, 12345), "entry 0 (log offset 512) says data_len=12345"});
  bad.push_back({"past the end of the disk", with(entry0, (1u << 20) / 512), "entry 0 (log offset 512) reaches past"});
  {
    LogBuilder m(512, c.disk_bytes);
    m.random_epochs(rng, 1, 1);
    m.header(0, 0, lw::kFlagMark, 256, std::string(256, 'x'));
    bad.push_back({"mark name too long", m.bytes(m.entries), "entry 2 (log offset"});
  }
  const std::string before_status = c.clonectl({"status", "--json"});
  for (const Bad& x : bad) {
    CAPTURE(x.what);
    const std::string path = c.dir / "bad.bin";
    REQUIRE(LogBuilder::save_bytes(path, x.bytes));
    std::string out;
    CHECK(c.replay(path, out) != 0);
    CHECK_MESSAGE(out.find(x.says) != std::string::npos, out);
    CHECK(harness::read_file(path) == std::string(x.bytes.begin(), x.bytes.end()));  // the log is left as it was
    CHECK(c.position().find("log_writes") == std::string::npos);
  }
  // Nothing reached the clone: no session was even opened.
  const std::string after_status = c.clonectl({"status", "--json"});
  CHECK(after_status.find("\"committed_seq\":0") != std::string::npos);
  CHECK(c.clonectl({"status"}).find("over 0 sessions") != std::string::npos);
  CHECK(first_difference(c.disk(), std::vector<uint8_t>(c.disk_bytes, 0)) == -1);
  // And the daemon still serves a good log.
  REQUIRE(good.save(c.dir / "good.bin"));
  std::string out;
  CHECK_MESSAGE(c.replay(c.dir / "good.bin", out) == 0, out);
  CHECK(first_difference(c.disk(), good.image) == -1);
}
