// SPDX-License-Identifier: MIT
// The monitoring thread over the fake health source and a real sqlite store.
#include "cloned/daemon/health_monitor.h"

#include <doctest/doctest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

namespace {

struct Dir {
  std::string path;
  Dir() {
    char name[] = "/tmp/health_monitor_test.XXXXXX";
    REQUIRE(::mkdtemp(name) != nullptr);
    path = name;
  }
  ~Dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

std::unique_ptr<store::Store> open_store(const std::string& dir) {
  auto s = store::Store::open(dir, store::OpenMode::read_write, proto::PairId{1}, "disk");
  REQUIRE(s.is_ok());
  return std::move(*s);
}

// Takes the outbox until `want` reports arrived or 5 s passed.
std::vector<cloned::HealthOutgoing> wait_for(cloned::HealthMonitor& m, size_t want) {
  std::vector<cloned::HealthOutgoing> got;
  for (int i = 0; i < 500 && got.size() < want; ++i) {
    for (auto& o : m.take_outgoing()) got.push_back(std::move(o));
    if (got.size() < want) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return got;
}

hwhealth::Report decode(const cloned::HealthOutgoing& o) {
  base::Result<hwhealth::Report> r = hwhealth::decode_report(*o.report);
  REQUIRE(r.is_ok());
  return *r;
}

}  // namespace

TEST_CASE("the monitor reports at once: changes and a summary at the first poll, then an I/O error as critical") {
  Dir d;
  auto fake = std::make_unique<hwhealth::FakeHealthSource>();
  fake->set_memory_ecc({hwhealth::MemoryController{"mc0", "test", 0, 0}});
  std::atomic<int> wakes{0};
  cloned::HealthMonitor m({"/dev/fake", 3600, 86400, 16}, open_store(d.path), std::move(fake), [&] { ++wakes; });
  std::vector<cloned::HealthOutgoing> first = wait_for(m, 2);
  REQUIRE(first.size() == 2);
  CHECK(wakes.load() >= 1);
  CHECK(first[0].id < first[1].id);
  const hwhealth::Report changes = decode(first[0]);
  CHECK(changes.kind == hwhealth::ReportKind::changes);
  CHECK(changes.verdict == hwhealth::Verdict::unknown);  // SMART is not there: never "ok"
  CHECK(decode(first[1]).kind == hwhealth::ReportKind::summary);

  m.io_error({"write", EIO, 4096, 512, "write at offset=4096 len=512 failed"});
  std::vector<cloned::HealthOutgoing> after = wait_for(m, 1);
  REQUIRE(after.size() == 1);
  const hwhealth::Report io = decode(after[0]);
  CHECK(io.worst() == hwhealth::Severity::critical);
  REQUIRE(!io.changes.empty());
  CHECK(io.changes[0].finding.code == "disk.io_error");
  CHECK(hwhealth::figure(io.changes[0].finding, "errno") == "5");
  CHECK(hwhealth::figure(io.changes[0].finding, "offset_bytes") == "4096");
  CHECK(m.polls() == 2);  // the I/O error polled at once, not after 3600 s
}

TEST_CASE("acked reports leave the backlog; the backlog is posted again when a peer asks") {
  Dir d;
  {
    cloned::HealthMonitor m({"/dev/fake", 3600, 86400, 16}, open_store(d.path),
                            std::make_unique<hwhealth::FakeHealthSource>(), nullptr);
    std::vector<cloned::HealthOutgoing> first = wait_for(m, 2);
    REQUIRE(first.size() == 2);
    m.acked(first[0].id);
    m.want_backlog();
    std::vector<cloned::HealthOutgoing> again = wait_for(m, 1);
    REQUIRE(again.size() == 1);
    CHECK(again[0].id == first[1].id);
    CHECK(*again[0].report == *first[1].report);
  }
  auto s = open_store(d.path);
  CHECK(s->health_backlog_count().value() == 1);
  base::Result<store::HealthAssessment> latest = s->health_latest();
  REQUIRE(latest.is_ok());
  CHECK(latest->verdict == "unknown");
  CHECK(latest->text.find("UNSUPPORTED") != std::string::npos);
}
