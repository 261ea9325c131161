// SPDX-License-Identifier: MIT
// Level 3, black box: clone-origin replay --log-writes (issue 15) with the
// real binaries. Logs made here byte by byte (marks, resume, every bad input)
// run anywhere; the suite "requires root and qemu-storage-daemon" captures a
// real ext4 workload through scripts/capture-log-writes.sh and checks the
// clone at 20 kill -9 cut points, and --follow on a log still being written.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <random>
#include <thread>

#include "base/bytes.h"
#include "origin/log_writes.h"
#include "origin/log_writes_file.h"
#include "test/scenario/sim.h"
#include "test/support/harness.h"
#include "test/support/netns.h"
#include "test/support/requires.h"
#include "test/support/sanitizer.h"

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

std::string ip_path() {
  for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"})
    if (::access(p, X_OK) == 0) return p;
  return "ip";
}

// Runs argv in network namespace `ns` ("" = here).
std::vector<std::string> in_ns(const std::string& ns, std::vector<std::string> argv) {
  if (!ns.empty()) argv.insert(argv.begin(), {ip_path(), "netns", "exec", ns});
  return argv;
}

// Where each side runs: here, or the clone in one namespace and the original
// in another (test/support/netns.h), so the link between them can be slowed.
struct Net {
  std::string clone_ns, origin_ns, clone_address;
};

struct Clone {
  TempDir dir;
  harness::Pair pair;
  std::unique_ptr<Process> cloned;
  uint64_t disk_bytes;
  Net net;

  explicit Clone(uint64_t disk, const std::map<std::string, std::string>& over = {}, const Net& n = {})
      : disk_bytes(disk), net(n) {
    REQUIRE(harness::make_zero_file(dir / "clone.img", disk));
    std::map<std::string, std::string> clone_over = over, origin_over;
    if (!net.clone_address.empty()) {
      clone_over["listen.address"] = "\"" + net.clone_address + "\"";
      origin_over["clone.address"] = "\"" + net.clone_address + "\"";
      origin_over["origin.reconnect_initial_ms"] = "50";
      origin_over["origin.reconnect_max_ms"] = "200";
    }
    pair = harness::make_pair(dir.path(), dir / "clone.img", clone_over, origin_over);
    REQUIRE(!pair.clone_config.empty());
    start();
  }
  void start() {
    cloned = std::make_unique<Process>(
        in_ns(net.clone_ns, {harness::binary("CLONED_BIN"), "--config", pair.clone_config}), dir / "cloned.log");
    if (net.clone_ns.empty()) {
      REQUIRE_MESSAGE(harness::wait_for_listener(pair.port, 10000), harness::read_file(dir / "cloned.log"));
      return;
    }
    bool up = false;  // its port is in another namespace: ask its control socket
    for (int i = 0; i < 500 && !up; ++i) {
      up = clonectl({"status", "--json"}).find("\"daemon\":\"running\"") != std::string::npos;
      if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    REQUIRE_MESSAGE(up, harness::read_file(dir / "cloned.log"));
  }
  std::vector<std::string> replay_argv(const std::string& log, const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> argv = {
        harness::binary("ORIGIN_BIN"), "--config", pair.origin_config, "replay", "--log-writes", log};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return in_ns(net.origin_ns, argv);
  }
  int replay(const std::string& log, std::string& out, const std::vector<std::string>& extra = {}) {
    return harness::run(replay_argv(log, extra), out, 300000);
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

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  const std::string s = harness::read_file(path);
  return std::vector<uint8_t>(s.begin(), s.end());
}

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

TEST_CASE("an epoch larger than the original's retained log is cut by barriers, not waited on for ever") {
  // 150 MiB written with no flush (a large copy between two journal
  // commits) against a retained log of 128 MiB: it frees records only once
  // a barrier after them is committed, so the epoch is cut every 64 MiB.
  Clone c(160ull << 20);
  harness::set_config_keys(c.pair.origin_config, {{"origin.retention_bytes_max", std::to_string(128u << 20)}});
  LogBuilder b(512, c.disk_bytes);
  std::mt19937_64 rng(17);
  std::vector<uint8_t> data(1 << 20);
  for (uint64_t i = 0; i < 150; ++i) {
    for (uint8_t& x : data) x = static_cast<uint8_t>(rng());
    b.write(i << 20, data);
  }
  b.flush();
  REQUIRE(b.save(c.dir / "log.bin"));
  std::string out;
  CHECK_MESSAGE(c.replay(c.dir / "log.bin", out) == 0, out);
  CHECK(first_difference(c.disk(), b.image) == -1);
}

TEST_CASE("one write entry larger than the retained log is cut by barriers too; a cut mid-entry resumes at it") {
  // One 150 MiB write (a write-zeroes as QEMU logs it is one entry of its
  // whole size) against a retained log of 128 MiB: barriers between its
  // records, every 64 MiB; before, the run waited for ever. A slow state
  // store makes each barrier's acknowledgement late enough to cut between
  // (1 s: at 200 ms a fresh machine once ran the whole entry before the cut).
  Clone c(160ull << 20, {{"apply.store_commit_delay_ms", "1000"}});
  harness::set_config_keys(c.pair.origin_config, {{"origin.retention_bytes_max", std::to_string(128u << 20)}});
  LogBuilder b(512, c.disk_bytes);
  std::mt19937_64 rng(23);
  std::vector<uint8_t> data(150ull << 20);
  for (size_t i = 0; i < data.size(); i += 8) {
    const uint64_t x = rng();
    std::memcpy(data.data() + i, &x, 8);
  }
  b.write(0, data);
  b.flush();
  REQUIRE(b.save(c.dir / "log.bin"));
  {
    Process origin(
        {harness::binary("ORIGIN_BIN"), "--config", c.pair.origin_config, "replay", "--log-writes", c.dir / "log.bin"},
        c.dir / "origin1.log");
    // The first cut inside the entry is durable on the clone: kill -9.
    for (int i = 0; i < 3000 && position_value(c.position(), "next_seq") <= 1; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    origin.signal(SIGKILL);
    origin.wait(10000);
  }
  REQUIRE_MESSAGE(position_value(c.position(), "next_seq") > 1, c.position());
  CHECK_MESSAGE(position_value(c.position(), "log_writes_next_entry") == 0, c.position());  // the entry again
  std::string out;
  CHECK_MESSAGE(c.replay(c.dir / "log.bin", out) == 0, out);
  CHECK_MESSAGE(out.find("sent from entry 0") != std::string::npos, out);
  CHECK(first_difference(c.disk(), b.image) == -1);
  CHECK(position_value(c.position(), "log_writes_next_entry") == 2);
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

namespace {

// Writes `bytes` at `offset` of `path` in place (no truncation, as a log's
// writer does): a follower never sees the file emptied in between.
void write_in_place(const std::string& path, uint64_t offset, const base::Bytes& bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  const ssize_t n = ::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset));
  ::close(fd);
  REQUIRE(n == static_cast<ssize_t>(bytes.size()));
}

// The clone's disk equals `want` within `timeout_ms`.
bool reaches(const Clone& c, const std::vector<uint8_t>& want, int timeout_ms) {
  for (int waited = 0; waited < timeout_ms; waited += 20) {
    if (first_difference(c.disk(), want) == -1) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return first_difference(c.disk(), want) == -1;
}

}  // namespace

// QEMU 7.2's blklogwrites (Debian 12) rewrites nr_entries at a flush while
// earlier requests' entries are still being written, and dm-log-writes writes
// its super block without waiting for the entries before it: a follower can
// find entries counted whose bytes are not in the log yet.
// A log of a few epochs at `log`, and `clone-origin replay --follow` on it
// (its output in follow.log) once the clone holds all of it.
std::unique_ptr<Process> follow_new_log(Clone& c, LogBuilder& b, std::mt19937_64& rng, const std::string& log) {
  b.random_epochs(rng, 3, 4);
  REQUIRE(b.save(log));
  auto follower = std::make_unique<Process>(c.replay_argv(log, {"--follow", "--poll-ms", "20"}), c.dir / "follow.log");
  REQUIRE_MESSAGE(reaches(c, b.image, 10000), harness::read_file(c.dir / "follow.log"));
  return follower;
}

TEST_CASE("--follow ends with the reason once the replicator gives up, though the log is quiet") {
  std::mt19937_64 rng(1818);
  Clone c(8ull << 20);
  harness::set_config_keys(c.pair.origin_config, {{"origin.reconnect_attempts_max", "2"},
                                                  {"origin.reconnect_initial_ms", "50"},
                                                  {"origin.reconnect_max_ms", "100"}});
  LogBuilder b(512, c.disk_bytes);
  std::unique_ptr<Process> follower = follow_new_log(c, b, rng, c.dir / "log.bin");
  c.cloned->signal(SIGKILL);  // the clone is gone, and nothing new is written to the log
  c.cloned->wait(10000);
  const int rc = follower->wait(20000);
  const std::string said = harness::read_file(c.dir / "follow.log");
  CHECK_MESSAGE(rc != 0, said);
  CHECK_MESSAGE(rc != -1, "still following 20 s after the replicator gave up: " << said);
  CHECK_MESSAGE(said.find("failed attempts") != std::string::npos, said);
}

TEST_CASE("--follow waits for entries counted before their bytes are in the log, and refuses one that never comes") {
  std::mt19937_64 rng(1717);
  Clone c(8ull << 20);
  LogBuilder b(512, c.disk_bytes);
  const std::string log = c.dir / "log.bin";
  std::unique_ptr<Process> started = follow_new_log(c, b, rng, log);
  Process& follower = *started;

  // Counted, then written: first into zeros past the old end (a preallocated
  // log), then past the file's end (a log that grows as it is written).
  std::vector<uint8_t> data(64 * 1024);
  for (const bool preallocated : {true, false}) {
    CAPTURE(preallocated);
    const std::vector<uint8_t> before = b.image;
    const size_t old_size = b.bytes(b.entries).size();
    for (auto& x : data) x = static_cast<uint8_t>(rng());
    b.write(1 << 20, data);
    b.flush();
    const base::Bytes full = b.bytes(b.entries);
    if (preallocated) write_in_place(log, old_size, base::Bytes(full.size() - old_size, 0));
    write_in_place(log, 0, base::Bytes(full.begin(), full.begin() + 512));  // the super block counts them
    std::this_thread::sleep_for(std::chrono::milliseconds(600));            // 30 polls
    REQUIRE_MESSAGE(follower.running(), harness::read_file(c.dir / "follow.log"));
    CHECK(first_difference(c.disk(), before) == -1);  // nothing of them was sent
    write_in_place(log, old_size, base::Bytes(full.begin() + static_cast<long>(old_size), full.end()));
    CHECK_MESSAGE(reaches(c, b.image, 10000), harness::read_file(c.dir / "follow.log"));
  }

  // An entry counted that never comes is refused once the grace has passed,
  // with its name, and nothing of it is sent.
  const std::vector<uint8_t> before = b.image;
  const size_t old_size = b.bytes(b.entries).size();
  b.write(2 << 20, data);
  b.flush();
  const base::Bytes full = b.bytes(b.entries);
  write_in_place(log, old_size, base::Bytes(full.size() - old_size, 0));
  write_in_place(log, 0, base::Bytes(full.begin(), full.begin() + 512));
  const auto counted = std::chrono::steady_clock::now();
  const int rc = follower.wait(30000);
  const auto after_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - counted).count();
  const std::string said = harness::read_file(c.dir / "follow.log");
  CHECK_MESSAGE(rc != 0, said);
  CHECK_MESSAGE(rc != -1, said);  // it ended by itself
  CHECK_MESSAGE(after_ms >= 5000, after_ms);
  CHECK_MESSAGE(said.find("entry " + std::to_string(b.entries - 2)) != std::string::npos, said);
  CHECK_MESSAGE(said.find("did not pass for") != std::string::npos, said);
  CHECK(first_difference(c.disk(), before) == -1);
}

// ---------------------------------------------------------------------------
// A real filesystem's write stream, captured through qemu-storage-daemon.

namespace {

constexpr uint64_t kImageBytes = 128ull << 20;

std::string source_dir() {
  const char* s = std::getenv("CLONED_SOURCE");
  return s != nullptr ? s : "..";
}

// Captures test/e2e/ext4_workload.sh into dir/orig.img and dir/log.bin;
// `delay` seconds between its steps. Returns the capture's exit code (output in `out`).
int capture(const TempDir& d, const std::string& delay, std::string& out) {
  std::string tar_out;
  if (harness::run({"/usr/bin/env", "tar", "-C", "/usr/include", "-czf", d / "include.tgz", "linux"}, tar_out) != 0)
    return -1;
  return harness::run({"/usr/bin/env", "MNT=" + (d / "mnt"), "ARCHIVE=" + (d / "include.tgz"), "STEP_DELAY=" + delay,
                       "bash", source_dir() + "/scripts/capture-log-writes.sh", "--size", "128M", d / "orig.img",
                       d / "log.bin", "bash", source_dir() + "/test/e2e/ext4_workload.sh"},
                      out, 300000);
}

// Whether the disk image passes e2fsck as a power-cut survivor: a copy is
// repaired (journal replay; exit 0 or 1), then must check clean.
bool fsck_clean(const TempDir& d, const std::string& image, std::string& why) {
  std::string out;
  if (harness::run({"/usr/bin/env", "cp", "--sparse=always", image, d / "fsck.img"}, out) != 0) return why = out, false;
  const int fix = harness::run({"/usr/bin/env", "e2fsck", "-fy", d / "fsck.img"}, out);
  if (fix != 0 && fix != 1) return why = "e2fsck -fy exited " + std::to_string(fix) + ": " + out, false;
  const int check = harness::run({"/usr/bin/env", "e2fsck", "-fn", d / "fsck.img"}, out);
  if (check != 0) return why = "e2fsck -fn exited " + std::to_string(check) + ": " + out, false;
  return true;
}

// The original's disk at each barrier the replay rule puts in the log, one
// barrier at a time (the same rule as clone-origin's: log_writes_file.h).
class Model {
 public:
  Model(lw::LogFile& file, uint64_t disk_bytes)
      : file_(file), target_{disk_bytes, 512}, image_(disk_bytes, 0), at_{0, file.super().sector_bytes, {}, {}} {}

  uint64_t barrier_seq() const { return barrier_seq_; }
  const std::vector<uint8_t>& image() const { return image_; }

  // Applies records up to and including the next barrier.
  bool advance() {
    while (true) {
      if (at_.pending.empty() && !fill(at_)) return false;
      const lw::Planned p = at_.pending.front();
      at_.pending.erase(at_.pending.begin());
      ++seq_;
      if (p.type == lw::Planned::Type::barrier) {
        barrier_seq_ = seq_;
        return true;
      }
      apply(p);
    }
  }
  // The byte ranges the epoch after the current barrier writes or trims (for
  // the crash check). Reads ahead on a copy of the position, not of the image.
  std::vector<std::pair<uint64_t, uint64_t>> next_epoch_ranges() {
    std::vector<std::pair<uint64_t, uint64_t>> out;
    Position probe = at_;
    while (true) {
      if (probe.pending.empty() && !fill(probe)) break;
      const lw::Planned p = probe.pending.front();
      probe.pending.erase(probe.pending.begin());
      if (p.type == lw::Planned::Type::barrier) break;
      out.push_back({p.offset_bytes, p.length_bytes});
    }
    return out;
  }

 private:
  // Where in the log the model stands: the next entry and what is planned of the last one.
  struct Position {
    uint64_t index, offset;
    lw::EpochState epoch;
    std::vector<lw::Planned> pending;
  };

  bool fill(Position& at) {
    if (at.index >= file_.super().nr_entries) return false;
    lw::Entry e;
    REQUIRE(file_.read_entry(at.index, at.offset, target_, e).is_ok());
    lw::plan_entry(e, at.epoch, at.pending);
    at.offset = e.next_log_offset_bytes;
    ++at.index;
    return true;
  }
  void apply(const lw::Planned& p) {
    if (p.type == lw::Planned::Type::trim) {
      std::fill_n(image_.begin() + static_cast<long>(p.offset_bytes), p.length_bytes, 0);
      return;
    }
    REQUIRE(
        file_.read(base::MutableByteSpan(image_.data() + p.offset_bytes, p.length_bytes), p.data_log_offset).is_ok());
  }

  lw::LogFile& file_;
  lw::Target target_;
  std::vector<uint8_t> image_;
  Position at_;
  uint64_t seq_ = 0, barrier_seq_ = 0;
};

// The disk equals `image` except inside `ranges` (the next epoch's writes).
bool equal_except(const std::vector<uint8_t>& disk, const std::vector<uint8_t>& image,
                  const std::vector<std::pair<uint64_t, uint64_t>>& ranges) {
  std::vector<uint8_t> allowed(disk.size() / 512, 0);
  for (auto [off, len] : ranges)
    for (uint64_t b = off / 512; b < (off + len) / 512; ++b) allowed[b] = 1;
  for (uint64_t b = 0; b < allowed.size(); ++b) {
    if (allowed[b]) continue;
    if (std::memcmp(disk.data() + b * 512, image.data() + b * 512, 512) != 0) return false;
  }
  return true;
}

void save_prefix(const std::string& full, const std::string& path, uint64_t nr_entries) {
  std::string bytes = harness::read_file(full);
  base::store_le64(reinterpret_cast<uint8_t*>(bytes.data()) + 16, nr_entries);
  REQUIRE(harness::write_file(path, bytes));
}

struct Cut {
  bool explained = false;  // a barrier at or past the committed one explains the disk
  bool mid_epoch = false;  // the disk holds part of the epoch after it
};

// Ships a prefix of the log (up to its last flush; never less than is
// shipped), then starts shipping the next one and kills cloned a moment
// later: the cut falls between entries ~k/(n+1) and ~(k+1)/(n+1). Then
// checks the disk against the model, and e2fsck on a copy.
Cut cut_once(const TempDir& d, Clone& c, Model& model, uint64_t entries, int k, int n, std::mt19937_64& rng) {
  std::string out;
  const uint64_t prefix = std::max(entries * static_cast<uint64_t>(k) / static_cast<uint64_t>(n + 1),
                                   position_value(c.position(), "log_writes_next_entry"));
  save_prefix(d / "log.bin", c.dir / "ship.bin", prefix);
  REQUIRE_MESSAGE(c.replay(c.dir / "ship.bin", out) == 0, out);
  // The next prefix, not the whole log: a log only grows, so the clone must
  // never hold more of it than the next run is offered.
  save_prefix(d / "log.bin", c.dir / "ship.bin",
              std::max(prefix, entries * static_cast<uint64_t>(k + 1) / static_cast<uint64_t>(n + 1)));
  {
    Process origin(c.replay_argv(c.dir / "ship.bin"), c.dir / "origin.log");
    // From the moment the session is up (a sanitizer build starts slower),
    // a random 10-160 ms: about 0-0.8 MB of the link's 40 Mbit/s. A run with
    // nothing to send (no flush in the new entries) ends before that.
    for (int i = 0; i < 500 && origin.running() &&
                    c.clonectl({"status", "--json"}).find("\"link\":\"connected\"") == std::string::npos;
         ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::this_thread::sleep_for(std::chrono::milliseconds(10 + rng() % 150));
    c.cloned->signal(SIGKILL);
    c.cloned->wait(10000);
    origin.signal(SIGKILL);
    origin.wait(10000);
  }
  const std::string json = c.clonectl({"status", "--json"});
  const size_t at = json.find("\"committed_seq\":");
  REQUIRE(at != std::string::npos);
  const uint64_t committed = std::strtoull(json.c_str() + at + 16, nullptr, 10);
  // The disk is the original's at some barrier at or past the committed one,
  // plus part of the epoch after it: what a power cut could leave.
  const std::vector<uint8_t> disk = c.disk();
  Cut cut;
  while (!cut.explained) {
    if (model.barrier_seq() >= committed && equal_except(disk, model.image(), model.next_epoch_ranges())) {
      cut.explained = true;
      break;
    }
    if (!model.advance()) break;
  }
  CHECK_MESSAGE(cut.explained, "cut " << k << ": no barrier at or past record " << committed << " explains the disk");
  cut.mid_epoch = cut.explained && first_difference(disk, model.image()) != -1;
  std::string why;
  CHECK_MESSAGE(fsck_clean(d, c.dir / "clone.img", why),
                "cut " << k << " at barrier " << model.barrier_seq() << ": " << why);
  return cut;
}

void require_capture() {
  test_support::require({test_support::root(), test_support::program("qemu-storage-daemon", "qemu-system-common"),
                         test_support::device("/dev/fuse", "the capture's FUSE export (modprobe fuse)"),
                         test_support::program("mkfs.ext4", "e2fsprogs"), test_support::program("sqlite3", "sqlite3"),
                         test_support::program("fstrim", "util-linux")});
}

}  // namespace

// Cases that need root and the capture tools: their own meson test (SKIP where missing).
constexpr const char* kCaptureSuite = "requires root and qemu-storage-daemon";

TEST_CASE("a log on a block device (dm-log-writes' log device) replays identical" *
          doctest::test_suite(kCaptureSuite)) {
  test_support::require({test_support::root()});
  std::mt19937_64 rng(16);
  Clone c(8ull << 20);
  LogBuilder b(512, c.disk_bytes);
  b.random_epochs(rng, 4, 5);
  REQUIRE(b.save(c.dir / "log.bin"));
  // The device is larger than the log, as a log device is: the super block says where it ends.
  REQUIRE(std::filesystem::file_size(c.dir / "log.bin") < (4u << 20));
  std::filesystem::resize_file(c.dir / "log.bin", 4u << 20);
  harness::LoopDevice loop(c.dir / "log.bin");
  REQUIRE_MESSAGE(loop.attached(), loop.why());
  std::string out;
  CHECK_MESSAGE(c.replay(loop.device(), out) == 0, out);
  CHECK_MESSAGE(out.find("the clone holds its first " + std::to_string(b.entries) + " entries") != std::string::npos,
                out);
  CHECK(first_difference(c.disk(), b.image) == -1);
}

TEST_CASE("a real ext4 workload replays identical, and at 20 kill -9 cut points the clone is a crash state" *
          doctest::test_suite(kCaptureSuite)) {
  require_capture();
  test_support::require({test_support::network_namespaces(), test_support::program("tc", "iproute2")});
  test_support::NetnsPair ns;
  REQUIRE_MESSAGE(ns.ready(), ns.error());
  TempDir d;
  std::string out;
  REQUIRE_MESSAGE(capture(d, "0", out) == 0, out);
  base::Result<lw::LogFile> log = lw::LogFile::open(d / "log.bin");
  REQUIRE(log.is_ok());
  const uint64_t entries = log->super().nr_entries;
  MESSAGE("captured " << entries << " entries, " << harness::read_file(d / "log.bin").size() << " log bytes");
  REQUIRE(entries > 100);

  // The original's side of the link runs at 40 Mbit/s, so that a kill a
  // moment after a run starts falls in the middle of the stream.
  REQUIRE(harness::run(in_ns(ns.a(), {"/usr/bin/env", "tc", "qdisc", "add", "dev", test_support::NetnsPair::kVethA,
                                      "root", "tbf", "rate", "40mbit", "burst", "64kb", "latency", "200ms"}),
                       out) == 0);
  const Net net{ns.b(), ns.a(),
                std::string(test_support::NetnsPair::kAddressB) + ":" + std::to_string(harness::free_port())};
  Clone c(kImageBytes, {}, net);
  Model model(*log, kImageBytes);
  std::mt19937_64 rng(1515);
  const int kCuts = 20;
  int checked = 0, mid_epoch = 0;
  for (int k = 1; k <= kCuts; ++k) {
    CAPTURE(k);
    const Cut cut = cut_once(d, c, model, entries, k, kCuts, rng);
    checked += cut.explained ? 1 : 0;
    mid_epoch += cut.mid_epoch ? 1 : 0;
    c.start();
  }
  CHECK(checked == kCuts);
  MESSAGE(kCuts << " cuts, " << mid_epoch << " of them mid-epoch (the disk past its last durable barrier)");
  CHECK(mid_epoch > 0);
  // Finally the whole log: identical to the original's disk, and clean.
  save_prefix(d / "log.bin", c.dir / "ship.bin", entries);
  REQUIRE_MESSAGE(c.replay(c.dir / "ship.bin", out) == 0, out);
  MESSAGE(out);
  uint64_t diff = 0;
  CHECK_MESSAGE(harness::files_equal(d / "orig.img", c.dir / "clone.img", &diff), "first difference at " << diff);
  std::string fsck;
  CHECK(harness::run({"/usr/bin/env", "e2fsck", "-fn", c.dir / "clone.img"}, fsck) == 0);
}

TEST_CASE("--follow ships a log while the workload still writes it, and stops cleanly on SIGTERM" *
          doctest::test_suite(kCaptureSuite)) {
  require_capture();
  TempDir d;
  Clone c(kImageBytes);
  std::string capture_out;
  std::thread capturing([&] { capture(d, "1", capture_out); });
  // Start following once the log has its super block.
  struct stat st {};
  for (int i = 0; i < 1000 && (::stat((d / "log.bin").c_str(), &st) != 0 || st.st_size < 512); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  Process follower({harness::binary("ORIGIN_BIN"), "--config", c.pair.origin_config, "replay", "--log-writes",
                    d / "log.bin", "--follow", "--poll-ms", "100"},
                   c.dir / "follow.log");
  capturing.join();
  const auto ended = std::chrono::steady_clock::now();
  bool same = false;
  for (int i = 0; i < 100 && !same; ++i) {
    same = harness::files_equal(d / "orig.img", c.dir / "clone.img");
    if (!same) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - ended).count();
  CHECK_MESSAGE(same, "the clone did not reach the log's final flush within 5 s; "
                          << capture_out << "\nthe follower said: " << harness::read_file(c.dir / "follow.log"));
  // How soon is a figure, not a pass mark (it ran 81-1,223 ms here, the
  // slow end beside a build and a sweep): docs/ORIGINS.md records it.
  MESSAGE("the clone was identical " << ms << " ms after the capture ended (poll interval 100 ms)");
  REQUIRE_MESSAGE(follower.running(),
                  "the follower ended before SIGTERM: " << harness::read_file(c.dir / "follow.log"));
  follower.signal(SIGTERM);
  CHECK(follower.wait(30000) == 0);
  const std::string said = harness::read_file(c.dir / "follow.log");
  CHECK_MESSAGE(said.find("stopped by a signal, position saved") != std::string::npos, said);
  CHECK(position_value(c.position(), "log_writes_next_entry") > 0);
}

// ---------------------------------------------------------------------------
// Power cuts on the same real stream: the real apply machine over the
// fault-injecting device (test/scenario/sim.h), which loses unflushed writes.

namespace {

// The log's records, numbered as replay --log-writes numbers them.
sim::Original records_of(lw::LogFile& log, uint64_t disk_bytes) {
  sim::Original o;
  const lw::Target target{disk_bytes, 512};
  uint64_t offset = log.super().sector_bytes, seq = 0, epoch = 1;
  lw::EpochState open;
  std::vector<lw::Planned> planned;
  for (uint64_t i = 0; i < log.super().nr_entries; ++i) {
    lw::Entry e;
    REQUIRE(log.read_entry(i, offset, target, e).is_ok());
    planned.clear();
    lw::plan_entry(e, open, planned);
    for (const lw::Planned& p : planned) {
      sim::Rec r;
      r.h.seq = ++seq;
      r.h.epoch = epoch;
      if (p.type == lw::Planned::Type::barrier) {
        r.h.type = proto::MsgType::barrier;
        if (!p.mark.empty()) r.h.flags = proto::kBarrierFlagMark;
        r.payload.assign(p.mark.begin(), p.mark.end());
        ++epoch;
      } else {
        r.h.type = p.type == lw::Planned::Type::write ? proto::MsgType::write : proto::MsgType::trim;
        r.h.offset_bytes = p.offset_bytes;
        r.h.length_bytes = p.length_bytes;
        if (p.type == lw::Planned::Type::write) {
          r.payload.resize(p.length_bytes);
          REQUIRE(log.read(base::MutableByteSpan(r.payload.data(), r.payload.size()), p.data_log_offset).is_ok());
        }
      }
      o.log.push_back(std::move(r));
    }
    offset = e.next_log_offset_bytes;
  }
  return o;
}

// One process of the clone: a session from its position that runs until
// record `cut_at` is durable (and, with `consistent`, the store no longer
// marks the disk inconsistent) and then `extra_steps` more steps (the cut
// falls somewhere after it, often mid-epoch), or to the end, whichever comes
// first. True once the whole log is durable and no cut is due.
bool run_process(sim::Clone& c, const sim::Original& o, uint64_t disk_bytes, uint64_t cut_at, bool consistent,
                 uint64_t extra_steps, uint64_t& now) {
  proto::Hello h;
  h.role = proto::Role::original;
  h.pair_id = proto::PairId{7};
  h.disk_size_bytes = disk_bytes;
  h.logical_block_bytes = 512;
  h.generation = 1;
  h.log_start_seq = 1;
  h.log_end_seq = o.log.size();
  h.applied_seq = c.original_saw.seq;
  h.applied_epoch = c.original_saw.epoch;
  apply::Actions a;
  c.machine.start_session(h, a);
  REQUIRE(a.hello_reply);
  c.handle(a);
  uint64_t next = a.hello_reply->applied_seq + 1;
  auto cut_due = [&] {
    return c.machine.durable().seq >= cut_at && (!consistent || c.stored.state != proto::CloneState::inconsistent);
  };
  for (uint64_t step = 0; step < 10'000'000 && !c.failed; ++step) {
    if (cut_due() && extra_steps-- == 0) return false;
    apply::Actions t;
    now += 7;
    c.machine.on_tick(now, t);
    c.handle(t);
    for (int k = 0; k < 4 && next <= o.log.size() && c.machine.can_accept(); ++k, ++next) {
      const sim::Rec& r = o.log[next - 1];
      apply::Actions ra;
      apply::RecordId id = 0;
      c.machine.on_record(r.h, id, ra,
                          r.h.type == proto::MsgType::barrier
                              ? std::string_view(reinterpret_cast<const char*>(r.payload.data()), r.payload.size())
                              : std::string_view());
      if (id != 0) c.id_to_index[id] = next - 1;
      c.handle(ra);
    }
    if (!c.step(o) && next > o.log.size()) {
      // A due cut whose extra steps would outlast the replay falls at its
      // end instead: a real capture's last durable points can be far apart,
      // and the replay would otherwise end before its last cut.
      if (cut_due()) return false;
      return c.machine.durable().seq == o.log.size();
    }
  }
  return false;
}

}  // namespace

TEST_CASE(
    "power cuts that lose unflushed writes, at 24 points of a real ext4 stream: a crash state, clean under e2fsck" *
    doctest::test_suite(kCaptureSuite)) {
  require_capture();
  TempDir d;
  std::string out;
  REQUIRE_MESSAGE(capture(d, "0", out) == 0, out);
  base::Result<lw::LogFile> log = lw::LogFile::open(d / "log.bin");
  REQUIRE(log.is_ok());
  const sim::Original o = records_of(*log, kImageBytes);
  std::mt19937_64 rng(2424);
  blockio::FaultyDevice disk(std::make_unique<blockio::MemoryDevice>(kImageBytes, 512), 2424);
  apply::ReplicaState stored;
  stored.pair_id = proto::PairId{7};
  apply::SendBarrierAck saw{0, 0};
  apply::Limits limits;
  limits.reserve_ahead_records = 8;  // a short replay window after each cut
  Model model(*log, kImageBytes);
  uint64_t now = 1000;
  int cuts = 0, checked = 0, replaying = 0, partial = 0;
  bool done = false;
  for (int process = 0; process < 60 && !done; ++process) {
    sim::Clone c(disk, rng, stored, saw, limits);
    const bool cut = cuts < 24;
    const uint64_t cut_at = cut ? o.log.size() * static_cast<uint64_t>(cuts + 1) / 25 : o.log.size() + 1;
    // Two cuts in four (one of each power-cut mode below) wait until the
    // replay after the last cut is over, so that at least half the cuts leave
    // a disk to check as a crash state, in both modes.
    done = run_process(c, o, kImageBytes, cut_at, cuts % 4 < 2, rng() % 60, now);
    if (done || !cut) break;
    // The power goes: every unflushed write is lost, or (every other cut) each survives with probability 1/2.
    disk.power_cut(cuts % 2 == 0 ? blockio::PowerCutMode::drop_unflushed : blockio::PowerCutMode::keep_random);
    disk.revive();
    ++cuts;
    if (stored.state == proto::CloneState::inconsistent) {  // replaying after an earlier cut: marked, not a copy
      ++replaying;
      continue;
    }
    const std::vector<uint8_t> after = sim::disk_image(disk);
    bool found = false;
    while (!found) {
      found =
          model.barrier_seq() >= stored.committed_seq && equal_except(after, model.image(), model.next_epoch_ranges());
      if (!found && !model.advance()) break;
    }
    CHECK_MESSAGE(found, "cut " << cuts << ": no barrier at or past record " << stored.committed_seq);
    if (!found) continue;
    partial += first_difference(after, model.image()) != -1 ? 1 : 0;
    REQUIRE(harness::write_file(d / "cut.img", std::string(after.begin(), after.end())));
    std::string why;
    CHECK_MESSAGE(fsck_clean(d, d / "cut.img", why), "cut " << cuts << ": " << why);
    ++checked;
  }
  REQUIRE(done);
  MESSAGE(cuts << " power cuts: " << checked << " checked as a crash state and by e2fsck (" << partial
               << " of them differing from that barrier's image inside the next epoch's blocks), " << replaying
               << " while replaying (marked inconsistent)");
  CHECK(cuts == 24);
  CHECK(checked >= 12);
  CHECK(sim::disk_image(disk) == read_file_bytes(d / "orig.img"));
}
