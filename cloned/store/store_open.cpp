// SPDX-License-Identifier: MIT
// Opening the state store, and its schema.
//
// Schema, version 4 (PRAGMA user_version; a store of a newer version is
// refused rather than misread). A new store is created at version 1 and
// migrated like an old one, so every store takes the same path:
//
//   replica   exactly one row, id = 1: the apply::ReplicaState of store.h.
//             pair_id BLOB (16 bytes), disk_identity TEXT, generation,
//             committed_seq, committed_epoch, reserved_seq INTEGER (uint64
//             stored as their int64 bit pattern), state INTEGER
//             (proto::CloneState), state_reason TEXT, consistent_at_seq,
//             updated_unix_ms INTEGER (wall clock of the last save).
//   events    id INTEGER PRIMARY KEY AUTOINCREMENT, unix_ms, level, kind,
//             message: the event log, at most kMaxEvents rows.
//
// Version 2 adds to replica: resync_generation, resync_target_seq,
// resync_target_epoch, resync_cursor, resync_extent, resync_flags (the
// ResyncProgress), needs_resync, fingerprint BLOB, fingerprint_valid,
// decision TEXT; and the table out_of_sync (offset INTEGER PRIMARY KEY,
// length, found_unix_ms): ranges a verify found different.
//
// Version 3 adds to replica the log's marks (apply::LogMark): mark_name TEXT,
// mark_generation, mark_seq, mark_epoch, and the same four as mark_before_*.
//
// Version 4 adds to replica the staged resync (apply::StageProgress):
// stage_phase, stage_durable_bytes, stage_disk_bytes, stage_consistent_at_seq.
//
// Durability: journal_mode=WAL and synchronous=FULL, so save() returns only
// once its commit is in the fsynced WAL. Events are inserted with
// synchronous=NORMAL (not fsynced); they become durable with the next save,
// whose fsync of the WAL covers every frame before it.
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>

#include "base/bytes.h"
#include "base/file_io.h"
#include "base/units.h"
#include "cloned/store/store_impl.h"

namespace store {
namespace {

using detail::Statement;
using detail::Use;

constexpr int kSchemaVersion = 4;
constexpr int kBusyTimeoutMs = 5000;  // a reader (clonectl) may hold the file briefly

constexpr const char* kSchema = R"sql(
CREATE TABLE replica (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  pair_id BLOB NOT NULL,
  disk_identity TEXT NOT NULL,
  generation INTEGER NOT NULL,
  committed_seq INTEGER NOT NULL,
  committed_epoch INTEGER NOT NULL,
  reserved_seq INTEGER NOT NULL,
  state INTEGER NOT NULL,
  state_reason TEXT NOT NULL,
  consistent_at_seq INTEGER NOT NULL,
  updated_unix_ms INTEGER NOT NULL
);
CREATE TABLE events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  unix_ms INTEGER NOT NULL,
  level TEXT NOT NULL,
  kind TEXT NOT NULL,
  message TEXT NOT NULL
);
PRAGMA user_version = 1;
)sql";

constexpr const char* kMigrateTo2 = R"sql(
ALTER TABLE replica ADD COLUMN resync_generation INTEGER NOT NULL DEFAULT 0;
ALTER TABLE replica ADD COLUMN resync_target_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE replica ADD COLUMN resync_target_epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE replica ADD COLUMN resync_cursor INTEGER NOT NULL DEFAULT 0;
ALTER TABLE replica ADD COLUMN resync_extent INTEGER NOT NULL DEFAULT 0;
ALTER TABLE replica ADD COLUMN resync_flags INTEGER NOT NULL DEFAULT 0;
ALTER TABLE replica ADD COLUMN needs_resync INTEGER NOT NULL DEFAULT 0;
ALTER TABLE replica ADD COLUMN fingerprint BLOB NOT NULL DEFAULT x'';
ALTER TABLE replica ADD COLUMN fingerprint_valid INTEGER NOT NULL DEFAULT 0;
ALTER TABLE replica ADD COLUMN decision TEXT NOT NULL DEFAULT '';
CREATE TABLE out_of_sync (
  offset INTEGER PRIMARY KEY,
  length INTEGER NOT NULL,
  found_unix_ms INTEGER NOT NULL
);
PRAGMA user_version = 2;
)sql";

constexpr const char* kMigrateTo3 = R"sql(
ALTER TABLE replica ADD COLUMN mark_name TEXT NOT NULL DEFAULT '';
ALTER TABLE replica ADD COLUMN mark_generation INTEGER NOT NULL DEFAULT 0;
ALTER TABLE replica ADD COLUMN mark_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE replica ADD COLUMN mark_epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE replica ADD COLUMN mark_before_name TEXT NOT NULL DEFAULT '';
ALTER TABLE replica ADD COLUMN mark_before_generation INTEGER NOT NULL DEFAULT 0;
ALTER TABLE replica ADD COLUMN mark_before_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE replica ADD COLUMN mark_before_epoch INTEGER NOT NULL DEFAULT 0;
PRAGMA user_version = 3;
)sql";

constexpr const char* kMigrateTo4 = R"sql(
ALTER TABLE replica ADD COLUMN stage_phase INTEGER NOT NULL DEFAULT 0;
ALTER TABLE replica ADD COLUMN stage_durable_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE replica ADD COLUMN stage_disk_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE replica ADD COLUMN stage_consistent_at_seq INTEGER NOT NULL DEFAULT 0;
PRAGMA user_version = 4;
)sql";

// The store says what the clone holds and is no one else's business.
constexpr mode_t kStateDirMode = 0700;

}  // namespace

base::Status Store::Impl::connect(OpenMode mode) {
  const std::string path = dir + "/state.sqlite3";
  int flags = SQLITE_OPEN_NOMUTEX |
              (mode == OpenMode::read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) return fail("open " + path, rc);
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  if (mode == OpenMode::read_only) return base::Status::ok();
  BASE_TRY(exec("PRAGMA journal_mode=WAL", "switch to WAL journaling"));
  return exec("PRAGMA synchronous=FULL", "set synchronous=FULL");
}

base::Status Store::Impl::read_version(int& version) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, nullptr);
  if (rc == SQLITE_OK) rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW) version = sqlite3_column_int(stmt, 0);
  sqlite3_finalize(stmt);
  if (rc != SQLITE_ROW) return fail("read the schema version", rc);
  if (version > kSchemaVersion) {
    return base::Status::error(EPROTO, "state store " + dir + " has schema version " + std::to_string(version) +
                                           ", newer than this cloned understands (" + std::to_string(kSchemaVersion) +
                                           "); run the newer cloned that wrote it");
  }
  return base::Status::ok();
}

// Schema and first row in one transaction: a crash leaves no store or a whole one.
base::Status Store::Impl::create_if_new(const proto::PairId& id, const std::string& disk_identity) {
  BASE_TRY(exec("BEGIN IMMEDIATE", "begin creating the store"));
  int version = 0;
  base::Status status = read_version(version);
  if (status && version == 0) status = exec(kSchema, "create the schema");
  if (status && version == 0) {
    sqlite3_stmt* stmt = nullptr;
    const std::string sql =
        "INSERT INTO replica (id, pair_id, disk_identity, generation, committed_seq, committed_epoch, reserved_seq, "
        "state, state_reason, consistent_at_seq, updated_unix_ms) VALUES (1, ?1, ?2, 1, 0, 0, 0, ?3, '', 0, ?4)";
    int rc = sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr);
    if (rc == SQLITE_OK) {
      sqlite3_bind_blob(stmt, 1, id.data(), static_cast<int>(id.size()), SQLITE_STATIC);
      sqlite3_bind_text(stmt, 2, disk_identity.c_str(), -1, SQLITE_STATIC);
      sqlite3_bind_int(stmt, 3, static_cast<int>(proto::CloneState::fresh));
      sqlite3_bind_int64(stmt, 4, base::unix_ms());
      rc = sqlite3_step(stmt);
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) status = fail("create the replica row", rc);
    if (status) version = 1;
  }
  if (status && version < kSchemaVersion) status = migrate(version);
  if (status) status = exec("COMMIT", "commit the new store");
  if (!status) (void)exec("ROLLBACK", "roll back");
  return status;
}

// Runs inside create_if_new's transaction: a crash leaves the old version whole.
base::Status Store::Impl::migrate(int from_version) {
  if (from_version < 2) BASE_TRY(exec(kMigrateTo2, "upgrade the store to schema version 2"));
  if (from_version < 3) BASE_TRY(exec(kMigrateTo3, "upgrade the store to schema version 3"));
  if (from_version < 4) BASE_TRY(exec(kMigrateTo4, "upgrade the store to schema version 4"));
  return base::Status::ok();
}

base::Status Store::Impl::prepare_all() {
  const std::string select = std::string("SELECT ") + kReplicaColumns + " FROM replica WHERE id = 1";
  const struct {
    Statement& statement;
    std::string sql;
  } all[] = {
      {select_replica, select},
      {update_replica,
       "UPDATE replica SET disk_identity = ?1, generation = ?2, committed_seq = ?3, "
       "committed_epoch = ?4, reserved_seq = ?5, state = ?6, state_reason = ?7, "
       "consistent_at_seq = ?8, updated_unix_ms = ?9, resync_generation = ?10, resync_target_seq = ?11, "
       "resync_target_epoch = ?12, resync_cursor = ?13, resync_extent = ?14, resync_flags = ?15, "
       "needs_resync = ?16, fingerprint = ?17, fingerprint_valid = ?18, decision = ?19, mark_name = ?20, "
       "mark_generation = ?21, mark_seq = ?22, mark_epoch = ?23, mark_before_name = ?24, "
       "mark_before_generation = ?25, mark_before_seq = ?26, mark_before_epoch = ?27, stage_phase = ?28, "
       "stage_durable_bytes = ?29, stage_disk_bytes = ?30, stage_consistent_at_seq = ?31 WHERE id = 1"},
      {insert_oos, "INSERT OR REPLACE INTO out_of_sync (offset, length, found_unix_ms) VALUES (?1, ?2, ?3)"},
      {clear_oos, "DELETE FROM out_of_sync"},
      {select_oos, "SELECT offset, length, found_unix_ms FROM out_of_sync ORDER BY offset LIMIT ?1"},
      {count_oos, "SELECT count(*) FROM out_of_sync"},
      {insert_event, "INSERT INTO events (unix_ms, level, kind, message) VALUES (?1, ?2, ?3, ?4)"},
      {prune_events, "DELETE FROM events WHERE id <= (SELECT max(id) FROM events) - ?1"},
      {select_events,
       "SELECT id, unix_ms, level, kind, message FROM "
       "(SELECT * FROM events ORDER BY id DESC LIMIT ?1) ORDER BY id"},
      {begin, "BEGIN IMMEDIATE"},
      {commit, "COMMIT"},
      {rollback, "ROLLBACK"},
  };
  for (const auto& entry : all) {
    int rc = entry.statement.prepare(db, entry.sql);
    if (rc != SQLITE_OK) return fail("prepare \"" + entry.sql + "\"", rc);
  }
  return base::Status::ok();
}

base::Status Store::Impl::check_pair(const proto::PairId& expected, bool strict) {
  Use use(select_replica);
  int rc = use.step();
  if (rc == SQLITE_DONE) {
    return base::Status::error(EIO, "state store " + dir +
                                        " has no replica row: it is damaged; move it away "
                                        "and resync the clone");
  }
  if (rc != SQLITE_ROW) return fail("read the replica row", rc);
  std::string_view blob = use.blob(0);
  if (blob.size() != pair_id.size()) {
    return base::Status::error(EIO, "state store " + dir + " holds a malformed pair id");
  }
  std::copy(blob.begin(), blob.end(), pair_id.begin());
  if (!strict && expected == proto::PairId{}) return base::Status::ok();
  if (pair_id == expected) return base::Status::ok();
  return base::Status::error(EEXIST, "state store " + dir + " belongs to pair " + base::to_hex(pair_id) + ", not " +
                                         base::to_hex(expected) +
                                         ": it was made for another pairing; move it away to start this pairing "
                                         "afresh, or set [state] dir to another directory");
}

base::Result<StateLock> StateLock::take(const std::string& dir, std::chrono::milliseconds wait) {
  BASE_TRY(base::make_dirs(dir, kStateDirMode));
  const std::string path = dir + "/cloned.lock";
  base::UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd.valid()) return base::Status::from_errno("cannot open " + path);
  const base::Status locked = base::lock_exclusive(fd.get(), wait, std::chrono::milliseconds(20));
  if (locked.code() == EWOULDBLOCK)
    return base::Status::error(EWOULDBLOCK, "another program holds " + path + " (cloned running or starting)");
  BASE_TRY(locked.with_context("cannot lock " + path));
  return StateLock(std::move(fd));
}

Store::~Store() { delete impl_; }

base::Result<std::unique_ptr<Store>> Store::open(const std::string& dir, OpenMode mode, const proto::PairId& pair_id,
                                                 const std::string& disk_identity) {
  auto impl = std::make_unique<Impl>();
  impl->dir = dir;
  struct stat st {};
  if (mode == OpenMode::read_only && ::stat((dir + "/state.sqlite3").c_str(), &st) != 0) {
    if (errno != ENOENT) return base::Status::from_errno("cannot open state store " + dir);
    return base::Status::error(ENOENT, "no state store at " + dir + " yet: the daemon has not run");
  }
  if (mode == OpenMode::read_write) BASE_TRY(base::make_dirs(dir, kStateDirMode));
  BASE_TRY(impl->connect(mode));
  if (mode == OpenMode::read_write) {
    BASE_TRY(impl->create_if_new(pair_id, disk_identity));
  } else {
    int version = 0;
    BASE_TRY(impl->read_version(version));
    if (version == 0) {
      return base::Status::error(ENOENT, "state store " + dir + " is not initialised yet: the daemon has not run");
    }
    if (version < kSchemaVersion) {
      return base::Status::error(EPROTO, "state store " + dir + " has schema version " + std::to_string(version) +
                                             "; start cloned once to upgrade it, then ask again");
    }
  }
  BASE_TRY(impl->prepare_all());
  BASE_TRY(impl->check_pair(pair_id, mode == OpenMode::read_write));
  if (mode == OpenMode::read_write) BASE_TRY(impl->prune());
  std::unique_ptr<Store> store(new Store());
  store->impl_ = impl.release();
  return store;
}

}  // namespace store
