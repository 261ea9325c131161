// SPDX-License-Identifier: MIT
// The health report backlog over a real sqlite file.
#include <doctest/doctest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>

#include "cloned/store/store.h"
#include "test/support/temp_dir.h"

namespace {

struct Dir : test_support::TempDir {
  Dir() : test_support::TempDir("health_backlog_test") { REQUIRE(ok()); }
};

proto::PairId pair() {
  proto::PairId id{};
  id[0] = 7;
  return id;
}

std::unique_ptr<store::Store> open_rw(const std::string& dir) {
  auto s = store::Store::open(dir, store::OpenMode::read_write, pair(), "test disk");
  REQUIRE_MESSAGE(s.is_ok(), s.status().message());
  return std::move(*s);
}

store::HealthReportRow row(const std::string& what, bool summary, bool critical) {
  return store::HealthReportRow{0, 1000, summary, critical, what};
}

std::vector<std::string> contents(store::Store& s) {
  auto rows = s.health_backlog(1000);
  REQUIRE(rows.is_ok());
  std::vector<std::string> out;
  for (const auto& r : *rows) out.push_back(r.bytes);
  return out;
}

}  // namespace

TEST_CASE("a full backlog drops the oldest summaries first, then old non-critical reports, never a critical one") {
  Dir d;
  auto s = open_rw(d.path());
  const size_t max = 4;
  REQUIRE(s->health_append(row("crit1", false, true), max).is_ok());
  REQUIRE(s->health_append(row("sum1", true, false), max).is_ok());
  REQUIRE(s->health_append(row("chg1", false, false), max).is_ok());
  REQUIRE(s->health_append(row("sum2", true, false), max).is_ok());
  size_t dropped = 99;
  REQUIRE(s->health_append(row("chg2", false, false), max, &dropped).is_ok());
  CHECK(dropped == 1);
  CHECK(contents(*s) == std::vector<std::string>{"crit1", "chg1", "sum2", "chg2"});
  REQUIRE(s->health_append(row("crit2", false, true), max).is_ok());
  CHECK(contents(*s) == std::vector<std::string>{"crit1", "chg1", "chg2", "crit2"});
  REQUIRE(s->health_append(row("chg3", false, false), max).is_ok());
  CHECK(contents(*s) == std::vector<std::string>{"crit1", "chg2", "crit2", "chg3"});
  // Only critical reports left to keep: they stay, even above the bound.
  for (int i = 0; i < 4; ++i) REQUIRE(s->health_append(row("critx", false, true), max).is_ok());
  std::vector<std::string> now = contents(*s);
  CHECK(now.size() == 6);
  CHECK(std::count(now.begin(), now.end(), std::string("crit1")) == 1);
  CHECK(std::count(now.begin(), now.end(), std::string("crit2")) == 1);
  CHECK(std::count(now.begin(), now.end(), std::string("critx")) == 4);
  // A new non-critical report over a bound full of critical ones is kept
  // (its poll's baseline moved on with it); the next one takes its place.
  size_t gone = 99;
  REQUIRE(s->health_append(row("warn1", false, false), max, &gone).is_ok());
  CHECK(gone == 0);  // nothing older to drop: it was dropped itself until 2026-12-07
  now = contents(*s);
  CHECK(now.size() == 7);
  CHECK(now.back() == "warn1");
  REQUIRE(s->health_append(row("sum9", true, false), max).is_ok());
  now = contents(*s);
  CHECK(now.size() == 7);
  CHECK(now.back() == "sum9");
  CHECK(std::count(now.begin(), now.end(), std::string("warn1")) == 0);
}

TEST_CASE("report ids are monotonic and survive reopening the store; acked reports leave the backlog") {
  Dir d;
  uint64_t first = 0, second = 0;
  {
    auto s = open_rw(d.path());
    first = s->health_append(row("a", false, false), 16).value();
    second = s->health_append(row("b", true, false), 16).value();
    CHECK(second > first);
    REQUIRE(s->health_acked(second).is_ok());
    REQUIRE(s->health_acked(second).is_ok());  // a second ack is harmless
  }
  auto s = open_rw(d.path());
  CHECK(s->health_backlog_count().value() == 1);
  auto rows = s->health_backlog(10);
  REQUIRE(rows.is_ok());
  REQUIRE(rows->size() == 1);
  CHECK(rows->front().id == first);
  CHECK(rows->front().bytes == "a");
  const uint64_t third = s->health_append(row("c", false, false), 16).value();
  CHECK(third > second);  // the acked id is not reused
}

TEST_CASE("the latest assessment is kept and read back by a read-only store") {
  Dir d;
  {
    auto s = open_rw(d.path());
    auto none = s->health_latest();
    REQUIRE(none.is_ok());
    CHECK(none->taken_unix_ms == 0);
    REQUIRE(s->health_set_latest({5, "unknown", "text 1", "{}"}).is_ok());
    REQUIRE(s->health_set_latest({6, "warning", "text 2", "{\"a\":1}"}).is_ok());
  }
  auto ro = store::Store::open(d.path(), store::OpenMode::read_only);
  REQUIRE(ro.is_ok());
  auto latest = (*ro)->health_latest();
  REQUIRE(latest.is_ok());
  CHECK(latest->taken_unix_ms == 6);
  CHECK(latest->verdict == "warning");
  CHECK(latest->text == "text 2");
  CHECK(latest->json == "{\"a\":1}");
}

TEST_CASE("a read-only store made before the health tables existed reads as empty") {
  Dir d;
  { auto s = open_rw(d.path()); }
  auto ro = store::Store::open(d.path(), store::OpenMode::read_only);
  REQUIRE(ro.is_ok());
  CHECK((*ro)->health_latest()->taken_unix_ms == 0);
  CHECK((*ro)->health_backlog_count().value() == 0);
  CHECK((*ro)->health_backlog(10)->empty());
}

TEST_CASE("a poll's reports, assessment and baseline are kept together; the reports get the next ids") {
  Dir d;
  uint64_t before = 0;
  {
    auto s = open_rw(d.path());
    CHECK(s->health_baseline()->bytes.empty());  // a new store has none
    before = s->health_append(row("old", false, false), 16).value();
    store::HealthPoll poll;
    poll.reports = {row("chg", false, false), row("sum", true, false)};
    poll.latest = {7, "ok", "text", "{}"};
    poll.baseline = {6, std::string("base\0line", 9)};
    REQUIRE(s->health_record_poll(poll, 16).is_ok());
    CHECK(poll.reports[0].id == before + 1);
    CHECK(poll.reports[1].id == before + 2);
    // A poll without reports still replaces the assessment and the baseline.
    store::HealthPoll quiet;
    quiet.latest = {8, "ok", "text 2", "{}"};
    quiet.baseline = {6, "second"};
    REQUIRE(s->health_record_poll(quiet, 16).is_ok());
  }
  auto ro = store::Store::open(d.path(), store::OpenMode::read_only);
  REQUIRE(ro.is_ok());
  CHECK(contents(**ro) == std::vector<std::string>{"old", "chg", "sum"});
  CHECK((*ro)->health_latest()->taken_unix_ms == 8);
  base::Result<store::HealthBaseline> baseline = (*ro)->health_baseline();
  REQUIRE(baseline.is_ok());
  CHECK(baseline->summary_unix_ms == 6);
  CHECK(baseline->bytes == "second");
}

TEST_CASE("a poll trims the backlog like an append, and a store without the baseline table reads none") {
  Dir d;
  auto s = open_rw(d.path());
  for (int i = 0; i < 3; ++i) REQUIRE(s->health_append(row("sum", true, false), 3).is_ok());
  store::HealthPoll poll;
  poll.reports = {row("chg", false, false)};
  size_t dropped = 0;
  REQUIRE(s->health_record_poll(poll, 3, &dropped).is_ok());
  CHECK(dropped == 1);
  CHECK(contents(*s) == std::vector<std::string>{"sum", "sum", "chg"});

  Dir fresh;
  auto ro_new = store::Store::open(fresh.path(), store::OpenMode::read_only);
  CHECK_FALSE(ro_new.is_ok());  // nothing there: a read-only store never creates one
  { auto made = open_rw(fresh.path()); }
  auto ro = store::Store::open(fresh.path(), store::OpenMode::read_only);
  REQUIRE(ro.is_ok());
  base::Result<store::HealthBaseline> none = (*ro)->health_baseline();
  REQUIRE(none.is_ok());
  CHECK(none->bytes.empty());
  CHECK(none->summary_unix_ms == 0);
}
