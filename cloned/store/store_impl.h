// SPDX-License-Identifier: MIT
// The store's connection and prepared statements, shared by store_open.cpp
// (opening, schema) and store.cpp (reads and writes). Internal.
#pragma once

#include <sqlite3.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "cloned/store/sqlite_util.h"
#include "cloned/store/store.h"

namespace store {

// Pruning every insert would cost a second statement each time; every 100th
// insert trims to 100 below the limit, so the count never exceeds kMaxEvents.
inline constexpr size_t kPruneEveryInserts = 100;
static_assert(kPruneEveryInserts < kMaxEvents);

inline constexpr const char* kReplicaColumns =
    "pair_id, disk_identity, generation, committed_seq, committed_epoch, reserved_seq, state, "
    "state_reason, consistent_at_seq, updated_unix_ms, resync_generation, resync_target_seq, "
    "resync_target_epoch, resync_cursor, resync_extent, resync_flags, needs_resync, fingerprint, "
    "fingerprint_valid, decision, mark_name, mark_generation, mark_seq, mark_epoch, mark_before_name, "
    "mark_before_generation, mark_before_seq, mark_before_epoch, stage_phase, stage_durable_bytes, "
    "stage_disk_bytes, stage_consistent_at_seq";

struct Store::Impl {
  std::string dir;
  sqlite3* db = nullptr;
  proto::PairId pair_id{};
  uint32_t commit_delay_ms = 0;
  uint64_t commit_count = 0;
  size_t inserts_since_prune = 0;
  // The last replica state this process saved (save()'s promises compare with it).
  bool saved_once = false;
  uint64_t saved_generation = 0;
  uint64_t saved_committed_seq = 0;
  detail::Statement select_replica, update_replica, insert_event, prune_events, select_events;
  detail::Statement begin, commit, rollback;
  detail::Statement insert_oos, clear_oos, select_oos, count_oos;

  // close_v2: the statements above are finalized after this body runs.
  ~Impl() { sqlite3_close_v2(db); }

  base::Status fail(const std::string& what, int rc) const {
    const char* why = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    return base::Status::error(detail::errno_of(rc),
                               "state store " + dir + ": cannot " + what + ": " + why);
  }
  base::Status exec(const char* sql, const std::string& what) {
    int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
    return rc == SQLITE_OK ? base::Status::ok() : fail(what, rc);
  }
  base::Status run(detail::Statement& statement, const std::string& what) {
    detail::Use use(statement);
    int rc = use.step();
    return rc == SQLITE_DONE ? base::Status::ok() : fail(what, rc);
  }

  base::Status connect(OpenMode mode);
  base::Status read_version(int& version);
  base::Status create_if_new(const proto::PairId& id, const std::string& disk_identity);
  base::Status migrate(int from_version);
  base::Status prepare_all();
  base::Status check_pair(const proto::PairId& expected, bool strict);
  base::Status prune();
  base::Status update(const apply::ReplicaState& state);
};

}  // namespace store
