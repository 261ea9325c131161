// SPDX-License-Identifier: MIT
// The monitoring thread over the fake health source and a real sqlite store.
#include "cloned/daemon/health_monitor.h"
#include "test/support/temp_dir.h"

#include <doctest/doctest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <thread>

namespace {

struct Dir : test_support::TempDir {
  Dir() : test_support::TempDir("health_monitor_test") { REQUIRE(ok()); }
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
  cloned::HealthMonitor m({"/dev/fake", 3600, 86400, 16}, open_store(d.path()), std::move(fake), [&] { ++wakes; });
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

// Found in review: the I/O error is an event, so an hour later (the next
// poll) `clonectl health` said OK while the clone took no writes.
TEST_CASE("after the disk failed, every poll says so until a restart: the verdict stays critical, news once") {
  Dir d;
  // The changes of `got` of kind `kind` about finding `code`.
  const auto count = [](const std::vector<cloned::HealthOutgoing>& got, hwhealth::Change::Kind kind,
                        const std::string& code) {
    int n = 0;
    for (const cloned::HealthOutgoing& o : got) {
      for (const hwhealth::Change& c : decode(o).changes) n += c.kind == kind && c.finding.code == code ? 1 : 0;
    }
    return n;
  };
  {
    auto fake = std::make_unique<hwhealth::FakeHealthSource>();
    fake->set_memory_ecc({hwhealth::MemoryController{"mc0", "test", 0, 0}});
    cloned::HealthMonitor m({"/dev/fake", 1, 3600, 16}, open_store(d.path()), std::move(fake), nullptr);
    REQUIRE(wait_for(m, 2).size() == 2);
    const uint64_t polls = m.polls();
    m.io_error({"write", EIO, 4096, 512, "write at offset=4096 len=512 failed"});
    m.disk_failed("write at offset=4096 len=512 failed: Input/output error");
    m.disk_failed("a second failure says nothing new");
    for (int i = 0; i < 500 && m.polls() < polls + 4; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    REQUIRE(m.polls() >= polls + 4);  // three interval polls after the failure's, no I/O error since
    const std::vector<cloned::HealthOutgoing> got = wait_for(m, 1);
    CHECK(count(got, hwhealth::Change::Kind::finding_new, "cloned.disk_failed") == 1);  // news once, not each poll
    CHECK(count(got, hwhealth::Change::Kind::finding_new, "disk.io_error") == 1);
    base::Result<store::HealthAssessment> latest = open_store(d.path())->health_latest();
    REQUIRE(latest.is_ok());
    CHECK(latest->verdict == "critical");
    CHECK_MESSAGE(latest->text.find("Input/output error") != std::string::npos, latest->text);
    CHECK(latest->text.find("a second failure") == std::string::npos);
  }
  // A restart takes writes again: the next process clears it.
  auto fake = std::make_unique<hwhealth::FakeHealthSource>();
  fake->set_memory_ecc({hwhealth::MemoryController{"mc0", "test", 0, 0}});
  cloned::HealthMonitor again({"/dev/fake", 3600, 3600, 16}, open_store(d.path()), std::move(fake), nullptr);
  std::vector<cloned::HealthOutgoing> got;
  for (int i = 0; i < 5 && count(got, hwhealth::Change::Kind::finding_cleared, "cloned.disk_failed") == 0; ++i) {
    for (cloned::HealthOutgoing& o : wait_for(again, 1)) got.push_back(std::move(o));
  }
  CHECK(count(got, hwhealth::Change::Kind::finding_cleared, "cloned.disk_failed") == 1);
  CHECK(open_store(d.path())->health_latest().value().verdict != "critical");
}

namespace {

// The changes of kind `kind` about finding `code` in the reports `got`.
std::vector<hwhealth::Change> changes_of(const std::vector<cloned::HealthOutgoing>& got, hwhealth::Change::Kind kind,
                                         const std::string& code) {
  std::vector<hwhealth::Change> found;
  for (const cloned::HealthOutgoing& o : got) {
    for (const hwhealth::Change& c : decode(o).changes) {
      if (c.kind == kind && c.finding.code == code) found.push_back(c);
    }
  }
  return found;
}

// Whether `m` made its n-th poll within 5 s.
bool polled(cloned::HealthMonitor& m, uint64_t n) {
  for (int i = 0; i < 500 && m.polls() < n; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return m.polls() >= n;
}

std::unique_ptr<hwhealth::FakeHealthSource> ecc_fake() {
  auto fake = std::make_unique<hwhealth::FakeHealthSource>();
  fake->set_memory_ecc({hwhealth::MemoryController{"mc0", "test", 0, 0}});
  return fake;
}

}  // namespace

// Invariant 8: an inconsistent or Diverged clone says so in its health
// reports too, not only in clonectl status (found in review: it did not).
TEST_CASE("while the clone is inconsistent every poll says so; a new state polls at once, a new reason does not") {
  Dir d;
  const cloned::ReplicationNote resyncing{proto::CloneState::inconsistent,
                                          "resync of generation 2 in progress: not a bootable copy until it completes"};
  cloned::HealthMonitor m({"/dev/fake", 3600, 86400, 16}, open_store(d.path()), ecc_fake(), nullptr, resyncing);
  std::vector<cloned::HealthOutgoing> first = wait_for(m, 2);  // the first poll's changes and summary
  REQUIRE(first.size() == 2);
  const std::vector<hwhealth::Change> news =
      changes_of(first, hwhealth::Change::Kind::finding_new, "cloned.inconsistent");
  REQUIRE(news.size() == 1);
  CHECK(news[0].severity == hwhealth::Severity::warning);
  CHECK_MESSAGE(news[0].sentence.find("resync of generation 2 in progress") != std::string::npos, news[0].sentence);
  CHECK(hwhealth::figure(news[0].finding, "state") == "inconsistent");
  const hwhealth::Report summary = decode(first[1]);
  CHECK(std::any_of(summary.findings.begin(), summary.findings.end(),
                    [](const hwhealth::Finding& f) { return f.code == "cloned.inconsistent"; }));

  // A new reason for the same state is told by the next poll, not at once.
  m.replication({proto::CloneState::inconsistent, "resync complete; consistent once record 9 is durable"});
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(m.polls() == 1);

  m.replication({proto::CloneState::consistent, ""});  // at once: the next interval is an hour away
  REQUIRE(polled(m, 2));
  std::vector<cloned::HealthOutgoing> ended = wait_for(m, 1);
  CHECK(changes_of(ended, hwhealth::Change::Kind::finding_cleared, "cloned.inconsistent").size() == 1);
}

TEST_CASE(
    "a Diverged clone is critical in every poll; a state within the gap waits for it; a restart says nothing new") {
  Dir d;
  {
    cloned::HealthSettings settings{"/dev/fake", 3600, 86400, 16};
    settings.state_poll_gap_ms = 1500;
    cloned::HealthMonitor m(settings, open_store(d.path()), ecc_fake(), nullptr);
    REQUIRE(wait_for(m, 2).size() == 2);
    m.replication({proto::CloneState::inconsistent, "catching up after an unclean stop"});
    REQUIRE(polled(m, 2));  // the first state change: at once
    // Within the gap a new state waits for its end (a link that drops
    // mid-epoch flips it at every reconnect), then polls.
    m.replication({proto::CloneState::diverged, "the disk's first MiB changed"});
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    CHECK(m.polls() == 2);
    REQUIRE(polled(m, 3));
    std::vector<cloned::HealthOutgoing> got = wait_for(m, 2);
    const std::vector<hwhealth::Change> news = changes_of(got, hwhealth::Change::Kind::finding_new, "cloned.diverged");
    REQUIRE(news.size() == 1);
    CHECK(news[0].severity == hwhealth::Severity::critical);
    CHECK(decode(got.back()).verdict == hwhealth::Verdict::critical);
    base::Result<store::HealthAssessment> latest = open_store(d.path())->health_latest();
    REQUIRE(latest.is_ok());
    CHECK(latest->verdict == "critical");
    CHECK_MESSAGE(latest->text.find("DIVERGED") != std::string::npos, latest->text);
  }
  // A restarted daemon still Diverged reports nothing new: the stored baseline holds it.
  cloned::HealthMonitor again({"/dev/fake", 3600, 86400, 16}, open_store(d.path()), ecc_fake(), nullptr,
                              {proto::CloneState::diverged, "the disk's first MiB changed"});
  REQUIRE(polled(again, 1));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const std::vector<cloned::HealthOutgoing> restarted = again.take_outgoing();
  CHECK(changes_of(restarted, hwhealth::Change::Kind::finding_new, "cloned.diverged").empty());
  CHECK(changes_of(restarted, hwhealth::Change::Kind::finding_cleared, "cloned.diverged").empty());
  CHECK(open_store(d.path())->health_latest().value().verdict == "critical");
}

TEST_CASE("a poll the store could not keep is tried again, and the I/O error that caused it is reported then") {
  Dir d;
  cloned::HealthMonitor m({"/dev/fake", 3600, 86400, 16, 200}, open_store(d.path()),
                          std::make_unique<hwhealth::FakeHealthSource>(), nullptr);
  REQUIRE(wait_for(m, 2).size() == 2);
  // Another connection holds the store's write lock past its busy timeout
  // (a stuck reader; a full stick fails the same way).
  sqlite3* other = nullptr;
  const std::string db = d / "state.sqlite3";
  REQUIRE(sqlite3_open(db.c_str(), &other) == SQLITE_OK);
  REQUIRE(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) == SQLITE_OK);
  m.io_error({"write", EIO, 8192, 4096, "write at offset=8192 len=4096 failed"});
  // The poll it causes waits out the busy timeout and keeps nothing.
  for (int i = 0; i < 1000 && m.polls() < 3; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE(m.polls() == 3);
  CHECK(wait_for(m, 1).empty());
  REQUIRE(sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(other);
  // Tried again 200 ms later: the error was not lost with the failed poll.
  std::vector<cloned::HealthOutgoing> after = wait_for(m, 1);
  REQUIRE(after.size() == 1);
  const hwhealth::Report io = decode(after[0]);
  REQUIRE(!io.changes.empty());
  CHECK(io.changes[0].finding.code == "disk.io_error");
  CHECK(hwhealth::figure(io.changes[0].finding, "offset_bytes") == "8192");
}

TEST_CASE("a backlog larger than the outbox goes out a page at a time as the peer acks it") {
  Dir d;
  {
    auto s = open_store(d.path());
    for (int i = 0; i < 1500; ++i) {
      store::HealthReportRow r;
      r.created_unix_ms = i;
      r.bytes = "report " + std::to_string(i);
      REQUIRE(s->health_append(r, 5000).is_ok());
    }
  }
  cloned::HealthMonitor m({"/dev/fake", 3600, 86400, 5000}, open_store(d.path()),
                          std::make_unique<hwhealth::FakeHealthSource>(), nullptr);
  REQUIRE(wait_for(m, 2).size() == 2);  // the first poll's: ids 1501 and 1502
  m.want_backlog();
  std::vector<cloned::HealthOutgoing> page = wait_for(m, 1024);
  REQUIRE(page.size() == 1024);
  CHECK(page.front().id == 1);
  CHECK(page.back().id == 1024);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(m.take_outgoing().empty());  // the rest waits for this page's acks
  for (const auto& o : page) m.acked(o.id);
  std::vector<cloned::HealthOutgoing> rest = wait_for(m, 1502 - 1024);
  REQUIRE(rest.size() == 1502 - 1024);
  CHECK(rest.front().id == 1025);
  CHECK(rest.back().id == 1502);
}

TEST_CASE("acked reports leave the backlog; the backlog is posted again when a peer asks") {
  Dir d;
  {
    cloned::HealthMonitor m({"/dev/fake", 3600, 86400, 16}, open_store(d.path()),
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
  auto s = open_store(d.path());
  CHECK(s->health_backlog_count().value() == 1);
  base::Result<store::HealthAssessment> latest = s->health_latest();
  REQUIRE(latest.is_ok());
  CHECK(latest->verdict == "unknown");
  CHECK(latest->text.find("UNSUPPORTED") != std::string::npos);
}

namespace {

// The fake behind a lock, so that the test can change it while the monitor
// thread polls it.
struct SharedFake {
  std::mutex mutex;
  hwhealth::FakeHealthSource fake;
};

class LockedSource final : public hwhealth::HealthSource {
 public:
  explicit LockedSource(std::shared_ptr<SharedFake> shared) : shared_(std::move(shared)) {}
  template <class F>
  auto locked(F f) {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    return f(shared_->fake);
  }
  hwhealth::Reading<hwhealth::SmartReading> read_smart() override {
    return locked([](auto& f) { return f.read_smart(); });
  }
  hwhealth::Reading<std::vector<hwhealth::TemperatureSensor>> read_temperatures() override {
    return locked([](auto& f) { return f.read_temperatures(); });
  }
  hwhealth::Reading<std::vector<hwhealth::MemoryController>> read_memory_ecc() override {
    return locked([](auto& f) { return f.read_memory_ecc(); });
  }
  hwhealth::Reading<std::vector<hwhealth::Battery>> read_batteries() override {
    return locked([](auto& f) { return f.read_batteries(); });
  }
  hwhealth::Reading<std::optional<hwhealth::DiskErrorCounters>> read_disk_errors() override {
    return locked([](auto& f) { return f.read_disk_errors(); });
  }

 private:
  std::shared_ptr<SharedFake> shared_;
};

}  // namespace

TEST_CASE("a counter that rises between two polls is reported; unchanged polls make only the periodic summary") {
  Dir d;
  auto shared = std::make_shared<SharedFake>();
  shared->fake.set_memory_ecc({hwhealth::MemoryController{"mc0", "test", 0, 0}});
  // Polls and summaries every second.
  cloned::HealthMonitor m({"/dev/fake", 1, 1, 16}, open_store(d.path()), std::make_unique<LockedSource>(shared),
                          nullptr);
  std::vector<cloned::HealthOutgoing> got = wait_for(m, 2);  // changes + summary of poll 1
  REQUIRE(got.size() == 2);
  std::vector<cloned::HealthOutgoing> next = wait_for(m, 1);  // poll 2: nothing changed
  REQUIRE(next.size() == 1);
  const hwhealth::Report second = decode(next[0]);
  CHECK(second.kind == hwhealth::ReportKind::summary);
  CHECK(second.poll_number == 2);
  {
    std::lock_guard<std::mutex> lock(shared->mutex);
    shared->fake.memory_ecc.value[0].corrected_count = 5;
  }
  // The next changes report (a poll may have run before the change: its summary comes first).
  hwhealth::Report changes;
  for (int i = 0; i < 6 && changes.changes.empty(); ++i) {
    for (const cloned::HealthOutgoing& o : wait_for(m, 1)) {
      hwhealth::Report r = decode(o);
      if (r.kind == hwhealth::ReportKind::changes) changes = r;
    }
  }
  REQUIRE(!changes.changes.empty());
  bool counter = false, finding = false;
  for (const hwhealth::Change& c : changes.changes) {
    if (c.kind == hwhealth::Change::Kind::counter_rose && c.before == 0 && c.after == 5) counter = true;
    if (c.kind == hwhealth::Change::Kind::finding_new && c.finding.code == "memory_ecc.corrected_rose") finding = true;
  }
  CHECK(counter);
  CHECK(finding);
}

TEST_CASE("poll_now (after a resume from sleep) polls at once, not at the next interval") {
  Dir d;
  cloned::HealthMonitor m({"/dev/fake", 3600, 86400, 16}, open_store(d.path()),
                          std::make_unique<hwhealth::FakeHealthSource>(), [] {});
  for (int i = 0; i < 500 && m.polls() < 1; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE(m.polls() == 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(m.polls() == 1);  // the next one is an hour away
  m.poll_now();
  for (int i = 0; i < 500 && m.polls() < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(m.polls() == 2);
}

namespace {

// Starts a monitor on `dir` over `shared` and lets it make its first poll,
// then stops it (the poll completes before the thread is joined). Returns
// what it posted.
std::vector<hwhealth::Report> one_poll(const std::string& dir, const std::shared_ptr<SharedFake>& shared) {
  std::vector<hwhealth::Report> reports;
  cloned::HealthMonitor m({"/dev/fake", 3600, 86400, 16}, open_store(dir), std::make_unique<LockedSource>(shared),
                          nullptr);
  for (int i = 0; i < 500 && m.polls() < 1; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE(m.polls() == 1);
  // The poll posts after it stored; give it the moment it needs, then stop.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  for (const cloned::HealthOutgoing& o : m.take_outgoing()) reports.push_back(decode(o));
  return reports;
}

bool has_change(const hwhealth::Report& r, hwhealth::Change::Kind kind) {
  for (const hwhealth::Change& c : r.changes) {
    if (c.kind == kind) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("a restarted monitor compares with the stored baseline: nothing old again, a rise meanwhile is reported") {
  Dir d;
  auto shared = std::make_shared<SharedFake>();
  shared->fake.set_memory_ecc({hwhealth::MemoryController{"mc0", "test", 0, 0}});

  const std::vector<hwhealth::Report> first = one_poll(d.path(), shared);
  REQUIRE(first.size() == 2);  // SMART and three more sources are not there: news once; and the summary
  CHECK(has_change(first[0], hwhealth::Change::Kind::source_changed));
  const int64_t first_taken = open_store(d.path())->health_latest().value().taken_unix_ms;

  // A restart with nothing changed: no report at all (the summary is a day away).
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  CHECK(one_poll(d.path(), shared).empty());
  CHECK(open_store(d.path())->health_backlog_count().value() == 2);
  CHECK(open_store(d.path())->health_latest().value().taken_unix_ms > first_taken);  // it did poll

  // Corrected memory errors rose while the daemon was down.
  shared->fake.memory_ecc.value[0].corrected_count = 5;
  const std::vector<hwhealth::Report> third = one_poll(d.path(), shared);
  REQUIRE(third.size() == 1);
  CHECK(third[0].kind == hwhealth::ReportKind::changes);
  CHECK(third[0].poll_number == 3);  // numbering continues across restarts
  CHECK_FALSE(has_change(third[0], hwhealth::Change::Kind::source_changed));
  bool counter = false, finding = false;
  for (const hwhealth::Change& c : third[0].changes) {
    if (c.kind == hwhealth::Change::Kind::counter_rose && c.before == 0 && c.after == 5) counter = true;
    if (c.kind == hwhealth::Change::Kind::finding_new && c.finding.code == "memory_ecc.corrected_rose") finding = true;
  }
  CHECK(counter);
  CHECK(finding);
}

TEST_CASE("an unreadable stored baseline is no baseline: the first poll reports as on a new store") {
  Dir d;
  {
    auto s = open_store(d.path());
    store::HealthPoll damaged;
    damaged.latest = {1, "unknown", "", "{}"};
    damaged.baseline = {1, std::string("\x01garbage", 8)};
    REQUIRE(s->health_record_poll(damaged, 16).is_ok());
  }
  auto shared = std::make_shared<SharedFake>();
  const std::vector<hwhealth::Report> reports = one_poll(d.path(), shared);
  REQUIRE(reports.size() == 2);  // the summary was made at unix ms 1: long due
  CHECK(reports[0].kind == hwhealth::ReportKind::changes);
  CHECK(has_change(reports[0], hwhealth::Change::Kind::source_changed));
  CHECK(reports[0].poll_number == 1);
}
