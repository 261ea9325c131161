// SPDX-License-Identifier: MIT
// The health report backlog and the latest assessment in the state store.
//
// Tables (created here, on first use, with CREATE TABLE IF NOT EXISTS, so a
// store of schema version 1 made before they existed gains them):
//
//   health_reports  id INTEGER PRIMARY KEY AUTOINCREMENT (sqlite never
//                   reuses an AUTOINCREMENT id, also after deletes and
//                   restarts: ids are monotonic), created_unix_ms, summary
//                   (0/1), critical (0/1), bytes BLOB (hwhealth::encode_report).
//   health_latest   one row, id = 1: taken_unix_ms, verdict, text, json.
//   health_baseline one row, id = 1: summary_unix_ms (the last periodic
//                   summary), bytes BLOB (hwhealth::encode_baseline: what
//                   the next poll compares against, also after a restart).
//
// A read-only store (clonectl) whose tables do not exist yet reads as empty.
#include "cloned/store/store_impl.h"

namespace store {
namespace {

constexpr const char* kHealthSchema = R"sql(
CREATE TABLE IF NOT EXISTS health_reports (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  created_unix_ms INTEGER NOT NULL,
  summary INTEGER NOT NULL,
  critical INTEGER NOT NULL,
  bytes BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS health_latest (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  taken_unix_ms INTEGER NOT NULL,
  verdict TEXT NOT NULL,
  text TEXT NOT NULL,
  json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS health_baseline (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  summary_unix_ms INTEGER NOT NULL,
  bytes BLOB NOT NULL
);
)sql";

// One statement prepared for one call: the health paths run once a poll.
class Query {
 public:
  Query(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Query() { sqlite3_finalize(stmt_); }
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;
  bool prepared() const { return rc_ == SQLITE_OK; }
  int rc() const { return rc_; }
  sqlite3_stmt* get() const { return stmt_; }
  int step() { return rc_ = sqlite3_step(stmt_); }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_OK;
};

bool missing_table(sqlite3* db) {
  return std::string_view(sqlite3_errmsg(db)).find("no such table") != std::string_view::npos;
}

std::string column_text(sqlite3_stmt* s, int column) {
  const void* p = sqlite3_column_blob(s, column);
  const int n = sqlite3_column_bytes(s, column);
  return p == nullptr ? std::string() : std::string(static_cast<const char*>(p), static_cast<size_t>(n));
}

// Templates: Store::Impl is private to Store, so it is not named here.
template <class Impl>
base::Status ensure_tables(Impl& impl) {
  return impl.exec(kHealthSchema, "create the health tables");
}

// Deletes one row chosen by `victim_sql` if there are more than `max` rows;
// false when nothing could be deleted.
template <class Impl>
base::Result<bool> drop_one(Impl& impl, size_t max, const char* victim_sql, uint64_t newest_id) {
  Query count(impl.db, "SELECT count(*) FROM health_reports");
  if (!count.prepared() || count.step() != SQLITE_ROW) return impl.fail("count health reports", count.rc());
  if (static_cast<size_t>(sqlite3_column_int64(count.get(), 0)) <= max) return false;
  Query drop(impl.db, victim_sql);
  if (drop.prepared()) sqlite3_bind_int64(drop.get(), 1, static_cast<int64_t>(newest_id));
  if (!drop.prepared() || drop.step() != SQLITE_DONE) return impl.fail("drop an old health report", drop.rc());
  return sqlite3_changes(impl.db) > 0;
}

// Inserts `row` and trims the backlog, inside the caller's transaction.
template <class Impl>
base::Result<uint64_t> append_report(Impl& impl, const HealthReportRow& row, size_t backlog_max, size_t& dropped) {
  uint64_t id = 0;
  {
    Query insert(impl.db,
                 "INSERT INTO health_reports (created_unix_ms, summary, critical, bytes) VALUES (?1, ?2, ?3, ?4)");
    if (insert.prepared()) {
      sqlite3_bind_int64(insert.get(), 1, row.created_unix_ms);
      sqlite3_bind_int(insert.get(), 2, row.summary ? 1 : 0);
      sqlite3_bind_int(insert.get(), 3, row.critical ? 1 : 0);
      sqlite3_bind_blob(insert.get(), 4, row.bytes.data(), static_cast<int>(row.bytes.size()), SQLITE_STATIC);
      insert.step();
    }
    if (insert.rc() != SQLITE_DONE) return impl.fail("store a health report", insert.rc());
    id = static_cast<uint64_t>(sqlite3_last_insert_rowid(impl.db));
  }
  // Oldest summaries first, then the oldest non-critical; never a critical,
  // and never the report just made: its poll's baseline moves on with it, so
  // dropping it would lose what it tells (found in review: with the bound
  // full of critical reports, every new warning deleted itself).
  for (const char* victim :
       {"DELETE FROM health_reports WHERE id = (SELECT min(id) FROM health_reports WHERE summary = 1 AND id < ?1)",
        "DELETE FROM health_reports WHERE id = (SELECT min(id) FROM health_reports WHERE critical = 0 AND id < ?1)"}) {
    for (;;) {
      base::Result<bool> dropped_one = drop_one(impl, backlog_max, victim, id);
      if (!dropped_one) return dropped_one.status();
      if (!*dropped_one) break;
      ++dropped;
    }
  }
  return id;
}

template <class Impl>
base::Status set_latest(Impl& impl, const HealthAssessment& latest) {
  Query q(impl.db,
          "INSERT OR REPLACE INTO health_latest (id, taken_unix_ms, verdict, text, json) VALUES (1, ?1, ?2, ?3, ?4)");
  if (q.prepared()) {
    sqlite3_bind_int64(q.get(), 1, latest.taken_unix_ms);
    sqlite3_bind_text(q.get(), 2, latest.verdict.data(), static_cast<int>(latest.verdict.size()), SQLITE_STATIC);
    sqlite3_bind_text(q.get(), 3, latest.text.data(), static_cast<int>(latest.text.size()), SQLITE_STATIC);
    sqlite3_bind_text(q.get(), 4, latest.json.data(), static_cast<int>(latest.json.size()), SQLITE_STATIC);
    q.step();
  }
  return q.rc() == SQLITE_DONE ? base::Status::ok() : impl.fail("store the latest health assessment", q.rc());
}

template <class Impl>
base::Status set_baseline(Impl& impl, const HealthBaseline& baseline) {
  Query q(impl.db, "INSERT OR REPLACE INTO health_baseline (id, summary_unix_ms, bytes) VALUES (1, ?1, ?2)");
  if (q.prepared()) {
    sqlite3_bind_int64(q.get(), 1, baseline.summary_unix_ms);
    sqlite3_bind_blob(q.get(), 2, baseline.bytes.data(), static_cast<int>(baseline.bytes.size()), SQLITE_STATIC);
    q.step();
  }
  return q.rc() == SQLITE_DONE ? base::Status::ok() : impl.fail("store the health baseline", q.rc());
}

// Runs `body` in one synchronous transaction: all of it or none.
template <class Impl, class Body>
base::Status in_transaction(Impl& impl, const std::string& what, Body body) {
  BASE_TRY(ensure_tables(impl));
  BASE_TRY(impl.exec("BEGIN IMMEDIATE", "begin to " + what));
  base::Status status = body();
  if (status) status = impl.exec("COMMIT", "commit to " + what);
  if (!status) (void)impl.exec("ROLLBACK", "roll back");
  return status;
}

}  // namespace

base::Result<uint64_t> Store::health_append(const HealthReportRow& row, size_t backlog_max, size_t* dropped) {
  Impl& impl = *impl_;
  uint64_t id = 0;
  size_t dropped_count = 0;
  const base::Status status = in_transaction(impl, "store a health report", [&]() -> base::Status {
    base::Result<uint64_t> appended = append_report(impl, row, backlog_max, dropped_count);
    if (!appended) return appended.status();
    id = *appended;
    return base::Status::ok();
  });
  if (!status) return status;
  if (dropped != nullptr) *dropped = dropped_count;
  return id;
}

base::Status Store::health_record_poll(HealthPoll& poll, size_t backlog_max, size_t* dropped) {
  Impl& impl = *impl_;
  size_t dropped_count = 0;
  std::vector<uint64_t> ids;
  const base::Status status = in_transaction(impl, "store a health poll", [&]() -> base::Status {
    for (const HealthReportRow& row : poll.reports) {
      base::Result<uint64_t> appended = append_report(impl, row, backlog_max, dropped_count);
      if (!appended) return appended.status();
      ids.push_back(*appended);
    }
    BASE_TRY(set_latest(impl, poll.latest));
    return set_baseline(impl, poll.baseline);
  });
  if (!status) return status;
  for (size_t i = 0; i < ids.size(); ++i) poll.reports[i].id = ids[i];
  if (dropped != nullptr) *dropped = dropped_count;
  return base::Status::ok();
}

base::Result<std::vector<HealthReportRow>> Store::health_backlog(size_t limit, uint64_t after_id) {
  Impl& impl = *impl_;
  std::vector<HealthReportRow> rows;
  Query q(impl.db,
          "SELECT id, created_unix_ms, summary, critical, bytes FROM health_reports WHERE id > ?2 "
          "ORDER BY id LIMIT ?1");
  if (!q.prepared()) {
    if (missing_table(impl.db)) return rows;
    return impl.fail("read the health backlog", q.rc());
  }
  sqlite3_bind_int64(q.get(), 1, static_cast<sqlite3_int64>(limit));
  sqlite3_bind_int64(q.get(), 2, static_cast<sqlite3_int64>(after_id));
  while (q.step() == SQLITE_ROW) {
    HealthReportRow r;
    r.id = static_cast<uint64_t>(sqlite3_column_int64(q.get(), 0));
    r.created_unix_ms = sqlite3_column_int64(q.get(), 1);
    r.summary = sqlite3_column_int(q.get(), 2) != 0;
    r.critical = sqlite3_column_int(q.get(), 3) != 0;
    r.bytes = column_text(q.get(), 4);
    rows.push_back(std::move(r));
  }
  if (q.rc() != SQLITE_DONE) return impl.fail("read the health backlog", q.rc());
  return rows;
}

base::Status Store::health_acked(uint64_t id) {
  Impl& impl = *impl_;
  BASE_TRY(ensure_tables(impl));
  Query q(impl.db, "DELETE FROM health_reports WHERE id = ?1");
  if (q.prepared()) {
    sqlite3_bind_int64(q.get(), 1, static_cast<sqlite3_int64>(id));
    q.step();
  }
  return q.rc() == SQLITE_DONE ? base::Status::ok() : impl.fail("delete an acknowledged health report", q.rc());
}

base::Result<uint64_t> Store::health_backlog_count() {
  Impl& impl = *impl_;
  Query q(impl.db, "SELECT count(*) FROM health_reports");
  if (!q.prepared()) {
    if (missing_table(impl.db)) return uint64_t{0};
    return impl.fail("count health reports", q.rc());
  }
  if (q.step() != SQLITE_ROW) return impl.fail("count health reports", q.rc());
  return static_cast<uint64_t>(sqlite3_column_int64(q.get(), 0));
}

base::Status Store::health_set_latest(const HealthAssessment& latest) {
  Impl& impl = *impl_;
  BASE_TRY(ensure_tables(impl));
  return set_latest(impl, latest);
}

base::Result<HealthAssessment> Store::health_latest() {
  Impl& impl = *impl_;
  HealthAssessment out;
  Query q(impl.db, "SELECT taken_unix_ms, verdict, text, json FROM health_latest WHERE id = 1");
  if (!q.prepared()) {
    if (missing_table(impl.db)) return out;
    return impl.fail("read the latest health assessment", q.rc());
  }
  const int rc = q.step();
  if (rc == SQLITE_DONE) return out;
  if (rc != SQLITE_ROW) return impl.fail("read the latest health assessment", rc);
  out.taken_unix_ms = sqlite3_column_int64(q.get(), 0);
  out.verdict = column_text(q.get(), 1);
  out.text = column_text(q.get(), 2);
  out.json = column_text(q.get(), 3);
  return out;
}

base::Result<HealthBaseline> Store::health_baseline() {
  Impl& impl = *impl_;
  HealthBaseline out;
  Query q(impl.db, "SELECT summary_unix_ms, bytes FROM health_baseline WHERE id = 1");
  if (!q.prepared()) {
    if (missing_table(impl.db)) return out;
    return impl.fail("read the health baseline", q.rc());
  }
  const int rc = q.step();
  if (rc == SQLITE_DONE) return out;
  if (rc != SQLITE_ROW) return impl.fail("read the health baseline", rc);
  out.summary_unix_ms = sqlite3_column_int64(q.get(), 0);
  out.bytes = column_text(q.get(), 1);
  return out;
}

}  // namespace store
