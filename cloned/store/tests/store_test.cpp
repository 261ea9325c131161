// SPDX-License-Identifier: MIT
#include "cloned/store/store.h"
#include "test/support/temp_dir.h"

#include <doctest/doctest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>

namespace {

// A scratch directory under /tmp, removed with everything in it.
struct TempDir : test_support::TempDir {
  TempDir() : test_support::TempDir("store_test") { REQUIRE(ok()); }
};

proto::PairId pair_of(uint8_t seed) {
  proto::PairId id{};
  for (size_t i = 0; i < id.size(); ++i) id[i] = static_cast<uint8_t>(seed + i);
  return id;
}

std::unique_ptr<store::Store> open_rw(const std::string& dir, uint8_t seed = 1) {
  auto opened = store::Store::open(dir, store::OpenMode::read_write, pair_of(seed), "file /x (1 MiB)");
  REQUIRE_MESSAGE(opened.is_ok(), opened.status().message());
  return std::move(opened).value();
}

apply::ReplicaState sample_state() {
  apply::ReplicaState s;
  s.pair_id = pair_of(1);
  s.disk_identity = "file /x (1 MiB)";
  s.generation = 3;
  s.committed_seq = 12345;
  s.committed_epoch = 77;
  s.reserved_seq = (uint64_t{1} << 63) + 5;  // above INT64_MAX: must round-trip exactly
  s.state = proto::CloneState::inconsistent;
  s.state_reason = "catching up after an unclean stop";
  s.consistent_at_seq = 12400;
  s.resync = {9, 12000, 70, 1ull << 40, 65536, 2};
  s.needs_resync = true;
  s.fingerprint = {1, 2, 3, 0, 255};
  s.fingerprint_valid = true;
  s.decision = "keep-diverged at 2026-11-22 by root";
  s.mark = {"after-upgrade", 3, 901, 44};
  s.mark_before = {"before-upgrade", 3, 850, 40};
  s.stage = {apply::StagePhase::applying, (1ull << 40) + 64, 3ull << 30, 12001};
  return s;
}

void check_same(const apply::ReplicaState& a, const apply::ReplicaState& b) {
  CHECK(a.pair_id == b.pair_id);
  CHECK(a.disk_identity == b.disk_identity);
  CHECK(a.generation == b.generation);
  CHECK(a.committed_seq == b.committed_seq);
  CHECK(a.committed_epoch == b.committed_epoch);
  CHECK(a.reserved_seq == b.reserved_seq);
  CHECK(a.state == b.state);
  CHECK(a.state_reason == b.state_reason);
  CHECK(a.consistent_at_seq == b.consistent_at_seq);
  CHECK(a.resync.generation == b.resync.generation);
  CHECK(a.resync.target_seq == b.resync.target_seq);
  CHECK(a.resync.target_epoch == b.resync.target_epoch);
  CHECK(a.resync.cursor_bytes == b.resync.cursor_bytes);
  CHECK(a.resync.extent_bytes == b.resync.extent_bytes);
  CHECK(a.resync.flags == b.resync.flags);
  CHECK(a.needs_resync == b.needs_resync);
  CHECK(a.fingerprint == b.fingerprint);
  CHECK(a.fingerprint_valid == b.fingerprint_valid);
  CHECK(a.decision == b.decision);
  for (auto [x, y] : {std::pair{&a.mark, &b.mark}, std::pair{&a.mark_before, &b.mark_before}}) {
    CHECK(x->name == y->name);
    CHECK(x->generation == y->generation);
    CHECK(x->seq == y->seq);
    CHECK(x->epoch == y->epoch);
  }
  CHECK(a.stage.phase == b.stage.phase);
  CHECK(a.stage.durable_bytes == b.stage.durable_bytes);
  CHECK(a.stage.staged_disk_bytes == b.stage.staged_disk_bytes);
  CHECK(a.stage.consistent_at_seq == b.stage.consistent_at_seq);
}

}  // namespace

TEST_CASE("a new store starts fresh at generation 1 with the pair it was opened for") {
  TempDir tmp;
  const std::string dir = tmp.path() + "/a/b/state";  // parents are created too
  auto store = open_rw(dir);
  auto loaded = store->load();
  REQUIRE(loaded.is_ok());
  CHECK(loaded->pair_id == pair_of(1));
  CHECK(loaded->disk_identity == "file /x (1 MiB)");
  CHECK(loaded->generation == 1);
  CHECK(loaded->committed_seq == 0);
  CHECK(loaded->reserved_seq == 0);
  CHECK(loaded->state == proto::CloneState::fresh);
  CHECK(loaded->updated_unix_ms > 0);
  CHECK((std::filesystem::status(dir).permissions() & std::filesystem::perms::others_all) ==
        std::filesystem::perms::none);
}

TEST_CASE("what was saved is loaded back after reopening") {
  TempDir tmp;
  {
    auto store = open_rw(tmp.path());
    REQUIRE(store->save(sample_state()).is_ok());
    CHECK(store->commit_count() == 1);
  }
  auto store = open_rw(tmp.path());
  auto loaded = store->load();
  REQUIRE(loaded.is_ok());
  check_same(*loaded, sample_state());
}

TEST_CASE("a store of another pair is refused, naming both pair ids") {
  TempDir tmp;
  open_rw(tmp.path(), 1);
  auto other = store::Store::open(tmp.path(), store::OpenMode::read_write, pair_of(9), "");
  REQUIRE_FALSE(other.is_ok());
  const std::string& message = other.status().message();
  CHECK(message.find("belongs to pair 0102030405060708090a0b0c0d0e0f10") != std::string::npos);
  CHECK(message.find("not 090a0b0c0d0e0f101112131415161718") != std::string::npos);
  CHECK(message.find(tmp.path()) != std::string::npos);
}

TEST_CASE("opening a missing store read-only says the daemon has not run") {
  TempDir tmp;
  auto opened = store::Store::open(tmp.path() + "/state", store::OpenMode::read_only);
  REQUIRE_FALSE(opened.is_ok());
  CHECK(opened.status().message() ==
        "no state store at " + tmp.path() + "/state yet: the daemon has not run");
  CHECK_FALSE(std::filesystem::exists(tmp.path() + "/state"));
}

TEST_CASE("a read-only reader sees what a writer saved, and cannot write") {
  TempDir tmp;
  auto writer = open_rw(tmp.path());
  REQUIRE(writer->save(sample_state()).is_ok());
  REQUIRE(writer->append_event("notice", "start", "cloned started").is_ok());

  auto reader = store::Store::open(tmp.path(), store::OpenMode::read_only);
  REQUIRE_MESSAGE(reader.is_ok(), reader.status().message());
  auto loaded = (*reader)->load();
  REQUIRE(loaded.is_ok());
  check_same(*loaded, sample_state());
  auto events = (*reader)->recent_events(10);
  REQUIRE(events.is_ok());
  REQUIRE(events->size() == 1);
  CHECK(events->front().message == "cloned started");

  apply::ReplicaState later = sample_state();
  later.committed_seq = 99999;
  REQUIRE(writer->save(later).is_ok());
  CHECK((*reader)->load()->committed_seq == 99999);
  CHECK_FALSE((*reader)->save(later).is_ok());
}

TEST_CASE("a read-only reader opens a store whose writer has closed") {
  TempDir tmp;
  REQUIRE(open_rw(tmp.path())->save(sample_state()).is_ok());
  auto reader = store::Store::open(tmp.path(), store::OpenMode::read_only, pair_of(1));
  REQUIRE_MESSAGE(reader.is_ok(), reader.status().message());
  CHECK((*reader)->load()->committed_seq == sample_state().committed_seq);
}

TEST_CASE("a store written by a newer schema version is refused") {
  TempDir tmp;
  open_rw(tmp.path());
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open((tmp.path() + "/state.sqlite3").c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, "PRAGMA user_version = 5", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  auto opened = store::Store::open(tmp.path(), store::OpenMode::read_write, pair_of(1));
  REQUIRE_FALSE(opened.is_ok());
  CHECK(opened.status().message().find("schema version 5, newer than") != std::string::npos);
}

TEST_CASE("events come back oldest first, and long texts are cut") {
  TempDir tmp;
  auto store = open_rw(tmp.path());
  for (int i = 0; i < 5; ++i) {
    REQUIRE(store->append_event("info", "test", "event " + std::to_string(i)).is_ok());
  }
  REQUIRE(store->append_event("info", "test", std::string(100000, 'x')).is_ok());
  auto events = store->recent_events(3);
  REQUIRE(events.is_ok());
  REQUIRE(events->size() == 3);
  CHECK((*events)[0].message == "event 3");
  CHECK((*events)[1].message == "event 4");
  CHECK((*events)[2].message.size() < 100000);
  CHECK((*events)[0].id < (*events)[1].id);
  CHECK((*events)[0].kind == "test");
  CHECK((*events)[0].unix_ms > 0);
}

TEST_CASE("the event log never holds more than kMaxEvents events") {
  TempDir tmp;
  const size_t inserted = store::kMaxEvents + 150;
  {
    auto store = open_rw(tmp.path());
    for (size_t i = 0; i < inserted; ++i) {
      CAPTURE(i);
      REQUIRE(store->append_event("info", "test", "event " + std::to_string(i)).is_ok());
    }
    auto events = store->recent_events(store::kMaxEvents + 1000);
    REQUIRE(events.is_ok());
    CHECK(events->size() <= store::kMaxEvents);
    CHECK(events->back().message == "event " + std::to_string(inserted - 1));
  }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open((tmp.path() + "/state.sqlite3").c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT count(*) FROM events", -1, &stmt, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
  const int64_t count = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  CHECK(count <= static_cast<int64_t>(store::kMaxEvents));
  CHECK(count >= static_cast<int64_t>(store::kMaxEvents) - 200);
}

TEST_CASE("a commit delay slows every save and each save is counted") {
  TempDir tmp;
  auto store = open_rw(tmp.path());
  store->set_commit_delay_ms(30);
  const auto start = std::chrono::steady_clock::now();
  REQUIRE(store->save(sample_state()).is_ok());
  REQUIRE(store->save(sample_state()).is_ok());
  const auto elapsed = std::chrono::steady_clock::now() - start;
  CHECK(store->commit_count() == 2);
  CHECK(elapsed >= std::chrono::milliseconds(60));
}

TEST_CASE("a schema 1 store is upgraded in place and keeps its state") {
  TempDir tmp;
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open((tmp.path() + "/state.sqlite3").c_str(), &db) == SQLITE_OK);
    const proto::PairId id = pair_of(1);
    std::string hex;
    for (uint8_t b : id) {
      char two[3];
      std::snprintf(two, sizeof two, "%02x", b);
      hex += two;
    }
    const std::string sql =
        "CREATE TABLE replica (id INTEGER PRIMARY KEY CHECK (id = 1), pair_id BLOB NOT NULL, disk_identity TEXT NOT NULL,"
        " generation INTEGER NOT NULL, committed_seq INTEGER NOT NULL, committed_epoch INTEGER NOT NULL,"
        " reserved_seq INTEGER NOT NULL, state INTEGER NOT NULL, state_reason TEXT NOT NULL,"
        " consistent_at_seq INTEGER NOT NULL, updated_unix_ms INTEGER NOT NULL);"
        "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, unix_ms INTEGER NOT NULL, level TEXT NOT NULL,"
        " kind TEXT NOT NULL, message TEXT NOT NULL);"
        "INSERT INTO replica VALUES (1, x'" + hex + "', 'old disk', 4, 900, 30, 900, 1, '', 0, 1);"
        "PRAGMA user_version = 1;";
    REQUIRE(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  // A reader does not upgrade: it asks for the daemon to run first.
  auto reader = store::Store::open(tmp.path(), store::OpenMode::read_only);
  REQUIRE_FALSE(reader.is_ok());
  CHECK(reader.status().message().find("start cloned once to upgrade it") != std::string::npos);
  auto store = open_rw(tmp.path());
  auto loaded = store->load();
  REQUIRE(loaded.is_ok());
  CHECK(loaded->generation == 4);
  CHECK(loaded->committed_seq == 900);
  CHECK(loaded->state == proto::CloneState::consistent);
  CHECK_FALSE(loaded->resync.active());
  CHECK_FALSE(loaded->fingerprint_valid);
  CHECK(loaded->fingerprint.empty());
  CHECK(loaded->mark.empty());  // schema 3: no mark yet
  CHECK_FALSE(loaded->stage.active());  // schema 4: no staged resync
  apply::ReplicaState next = *loaded;
  next.resync.generation = 5;
  REQUIRE(store->save(next).is_ok());
  CHECK(store->load()->resync.generation == 5);
}

TEST_CASE("out-of-sync ranges go in by the batch, in one transaction, up to the bound") {
  TempDir tmp;
  auto store = open_rw(tmp.path());
  std::vector<store::OutOfSyncRange> batch;
  for (uint64_t i = 0; i < store::kMaxOutOfSyncRanges - 2; ++i) batch.push_back({i * 8192, 4096, 0});
  REQUIRE(store->add_out_of_sync(batch).is_ok());
  CHECK(store->out_of_sync_count().value() == store::kMaxOutOfSyncRanges - 2);
  // One at an offset already recorded replaces it (the count stays), two
  // more fill the store, and the next is refused: those before it stay.
  batch = {{0, 8192, 0}, {1ull << 40, 4096, 0}, {(1ull << 40) + 8192, 4096, 0}, {(1ull << 40) + 16384, 4096, 0}};
  const base::Status full = store->add_out_of_sync(batch);
  CHECK(full.code() == ENOSPC);
  CHECK(store->out_of_sync_count().value() == store::kMaxOutOfSyncRanges);
  auto first = store->out_of_sync(1);
  REQUIRE(first.is_ok());
  REQUIRE(first->size() == 1);
  CHECK((*first)[0].length_bytes == 8192);
}

TEST_CASE("out-of-sync ranges are kept in offset order, replaced per offset, and cleared") {
  TempDir tmp;
  auto store = open_rw(tmp.path());
  REQUIRE(store->add_out_of_sync(1 << 20, 4096).is_ok());
  REQUIRE(store->add_out_of_sync(4096, 8192).is_ok());
  REQUIRE(store->add_out_of_sync(1 << 20, 65536).is_ok());  // same offset: replaced
  auto ranges = store->out_of_sync(100);
  REQUIRE(ranges.is_ok());
  REQUIRE(ranges->size() == 2);
  CHECK((*ranges)[0].offset_bytes == 4096);
  CHECK((*ranges)[0].length_bytes == 8192);
  CHECK((*ranges)[1].length_bytes == 65536);
  CHECK(store->out_of_sync_count().value() == 2);
  store.reset();
  auto reopened = open_rw(tmp.path());
  CHECK(reopened->out_of_sync_count().value() == 2);
  REQUIRE(reopened->clear_out_of_sync().is_ok());
  CHECK(reopened->out_of_sync_count().value() == 0);
}
